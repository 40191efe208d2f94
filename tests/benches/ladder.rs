//! Drawing the ladder must not cost more as the session grows: 100, 10 000 and 1 000 000 steps
//! at 200x60, the cursor on the newest step (what a presenter sees); with two lifelines, and
//! with five (a traceroute: arrows between every pair of neighbours).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use protolab::session::{Session, Step};
use protolab::tui::app::Connections;
use protolab::tui::widgets::ladder::Ladder;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;
use std::time::Instant;

const TWO: [&str; 2] = ["client", "server"];
const FIVE: [&str; 5] = ["client", "r1", "r2", "r3", "server"];

fn step(seq: u64, lifelines: &[&'static str]) -> Step {
    // Back and forth between neighbours, along the whole line.
    let hop = (seq as usize) % (2 * (lifelines.len() - 1));
    let (a, b) =
        if hop < lifelines.len() - 1 { (hop, hop + 1) } else { (hop - lifelines.len() + 2, hop - lifelines.len() + 1) };
    let (from, to) = (lifelines[a], lifelines[b]);
    Step {
        seq,
        t_us: seq * 1000,
        lab: "smtp".into(),
        proto: "SMTP".into(),
        from: from.into(),
        to: to.into(),
        summary: format!("250 OK message {seq}"),
        len: 20,
        bytes: b"250 OK message 00000".to_vec(),
        kind: "smtp.reply.250".into(),
        ..Step::default()
    }
}

fn ladder(c: &mut Criterion) {
    frames(c, "ladder_frame", &TWO);
    frames(c, "ladder_frame_5", &FIVE);
}

fn frames(c: &mut Criterion, name: &str, lifelines: &[&'static str]) {
    let mut group = c.benchmark_group(name);
    let area = Rect::new(0, 0, 200, 60);
    for n in [100usize, 10_000, 1_000_000] {
        let mut session = Session::with_bounds(n, usize::MAX);
        for i in 1..=n as u64 {
            session.push(step(i, lifelines));
        }
        let rows = area.height as usize - 1;
        let conns = Connections::default();
        group.bench_with_input(BenchmarkId::from_parameter(n), &session, |b, session| {
            let mut buf = Buffer::empty(area);
            b.iter(|| {
                Ladder {
                    session,
                    endpoints: lifelines,
                    shown: n,
                    cursor: n - 1,
                    scroll: n.saturating_sub(rows),
                    flight: None,
                    now: Instant::now(),
                    waiting: None,
                    footer: None,
                    states: Vec::new(),
                    layers: Default::default(),
                    conns: &conns,
                    clock: "lab clock",
                    main_conn: None,
                    conn: None,
                    lang: Default::default(),
                    gap: 0,
                    pointer: None,
                }
                .render(area, &mut buf);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, ladder);
criterion_main!(benches);
