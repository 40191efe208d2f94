//! The TUI drawn on a TestBackend at fixed sizes, and driven by its keys.
//!
//! The pictures use real steps: the WebSocket lab's decoders fed fixed bytes, and real headless
//! runs of the DHCP, TCP and SMTP labs on the lab network, with what changes from run to run
//! (times, sequence numbers, ports, xids, checksums, the date and message id) made fixed.

use protolab::labs::ws::frame::{self, Opcode};
use protolab::labs::{self, run};
use protolab::net::{Dir, Gate, GateEvent, Recorder, Wire};
use protolab::session::{Moved, Step, StepSink};
use protolab::tui::app::{App, LabEvent, LabEventKind, RunState};
use protolab::tui::keys::Action;
use protolab::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

fn ws_steps() -> Vec<Step> {
    let lab = labs::find("ws").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rec = Recorder::new(StepSink::new("ws", tx), ["client", "server"], lab.decoders(false));
    rec.feed(Dir::ClientToServer, REQUEST.as_bytes());
    rec.feed(Dir::ServerToClient, RESPONSE.as_bytes());
    rec.feed(Dir::ClientToServer, &frame::emit(true, Opcode::Text, Some(MASK), b"Hello"));
    rec.feed(Dir::ServerToClient, &frame::emit(true, Opcode::Text, None, b"Hello"));
    rec.feed(Dir::ClientToServer, &frame::emit(true, Opcode::Binary, Some(MASK), &[0xab; 300]));
    rec.feed(Dir::ClientToServer, &frame::emit(true, Opcode::Text, None, b"not masked"));
    rec.feed(Dir::ClientToServer, &frame::emit(true, Opcode::Close, Some(MASK), &[0x03, 0xe8, b'b', b'y', b'e']));
    rec.closed(Dir::ServerToClient);
    drop(rec);
    let mut steps = Vec::new();
    while let Ok(mut s) = rx.try_recv() {
        s.t_us = s.seq * 1250;
        steps.push(s);
    }
    steps
}

/// A real headless run of `lab` on the lab network.
async fn real_steps(lab: &str) -> Vec<Step> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    run::exchange(labs::find(lab).unwrap(), run::RunOptions::free(Wire::Sim), StepSink::new(lab, tx)).await.unwrap();
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    steps
}

/// What a real run chose at random, made the same on every run, in the fields, their bytes,
/// the summaries and the notes: sequence numbers (counted from fixed ISNs), the client's port,
/// DHCP xids, checksums, the message's date and id. Times become 1 ms a step, on top of the
/// quarter second the step fell in (so the DHCP lease clock keeps its shape).
fn normalize(steps: &mut [Step]) {
    // An ephemeral port, or one a NAT router handed out (40000 and up), that a SYN came from (a
    // server's port 50000 is neither).
    let syn_from: HashSet<u64> = steps
        .iter()
        .filter(|s| s.value("TCP.flags").as_deref() == Some("SYN"))
        .filter_map(|s| s.number("TCP.src_port"))
        .collect();
    let client_port = |s: &Step| {
        [s.number("TCP.src_port"), s.number("TCP.dst_port")]
            .into_iter()
            .flatten()
            .find(|&p| p >= 40000 && syn_from.contains(&p))
    };
    // Which side sent it: the one whose port is the client's.
    let from_client = |s: &Step, port: u64| s.number("TCP.src_port") == Some(port);
    // The server's end of a segment's connection (a SYN scan sends from one port to many).
    let server_end = |s: &Step, from_client: bool| {
        let (ip, port) = if from_client { ("IPv4.dst", "TCP.dst_port") } else { ("IPv4.src", "TCP.src_port") };
        (s.value(ip), s.number(port))
    };
    // Each side's ISN, per connection (the client's port and the server's end name it).
    let mut isn = HashMap::new();
    for s in steps.iter() {
        if s.value("TCP.flags").is_some_and(|f| f.split(',').any(|f| f == "SYN"))
            && let (Some(port), Some(seq)) = (client_port(s), s.number("TCP.seq"))
        {
            let mine = from_client(s, port);
            isn.entry((port, server_end(s, mine), mine)).or_insert(seq as u32);
        }
    }
    let ports: Vec<u64> = {
        let mut p: Vec<u64> = steps.iter().filter_map(client_port).filter(|&p| p >= 49152).collect();
        p.dedup();
        p
    };
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut bytes: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut xids = Vec::new();
    let mut dns_ids: Vec<u64> = Vec::new();
    for s in steps.iter_mut() {
        s.t_us = s.t_us / 250_000 * 250_000 + s.seq * 1000;
        if let Some(port) = client_port(s) {
            let from_client = from_client(s, port);
            for (path, own) in [("TCP.seq", from_client), ("TCP.ack", !from_client)] {
                let key = (port, server_end(s, from_client), own);
                let (Some(v), Some(&base)) = (s.number(path), isn.get(&key)) else { continue };
                if v == 0 && path == "TCP.ack" {
                    continue;
                }
                let fixed = (v as u32).wrapping_sub(base).wrapping_add(if own { 1_000_000 } else { 5_000_000 });
                let name = path.trim_start_matches("TCP.");
                set(s, path, fixed.into(), &fixed.to_be_bytes());
                s.summary = s.summary.replace(&format!("{name}={v} "), &format!("{name}={fixed} "));
                s.summary = s.summary.replace(&format!("{name}={v}"), &format!("{name}={fixed}"));
            }
            // Ephemeral ports are random; a NAT's are handed out in order, the same each run.
            let fixed = if port >= 49152 {
                49152 + ports.iter().position(|&p| p == port).unwrap_or(0) as u16
            } else {
                port as u16
            };
            for path in ["TCP.src_port", "TCP.dst_port"] {
                if s.number(path) == Some(port) {
                    set(s, path, fixed.into(), &fixed.to_be_bytes());
                }
            }
        }
        if let Some(xid) = s.value("DHCP.xid") {
            let n = xids.iter().position(|x| *x == xid).unwrap_or_else(|| {
                xids.push(xid.clone());
                xids.len() - 1
            });
            let fixed = 0x0000_a001u32 + n as u32;
            let text = format!("0x{fixed:08x}");
            set(s, "DHCP.xid", text.clone().into(), &fixed.to_be_bytes());
            s.summary = s.summary.replace(&xid, &text);
        }
        if let Some(id) = s.number("DNS.id") {
            // Each query's id, and its answer's, by order of appearance.
            let n = dns_ids.iter().position(|&x| x == id).unwrap_or_else(|| {
                dns_ids.push(id);
                dns_ids.len() - 1
            });
            let fixed = 4660 + n as u16;
            set(s, "DNS.id", fixed.into(), &fixed.to_be_bytes());
            s.summary = s.summary.replace(&format!(" {id} "), &format!(" {fixed} "));
        }
        for path in ["UDP.src_port", "UDP.dst_port", "ICMP.quoted.src_port"] {
            if let Some(port) = s.number(path).filter(|&p| p >= 49152 && s.proto != "DHCP") {
                set(s, path, 49152.into(), &49152u16.to_be_bytes());
                s.summary = s.summary.replace(&format!("{port}"), "49152");
            }
        }
        // The quoted UDP header's checksum covers the port.
        if let Some(f) = s.fields.iter().find(|f| f.path == "ICMP.quoted.dst_port") {
            let sum = f.range[1] + 2..f.range[1] + 4;
            if sum.end <= s.bytes.len() {
                s.bytes[sum].fill(0);
            }
        }
        if let Some(id) = s.number("ICMP.id") {
            set(s, "ICMP.id", 4660.into(), &4660u16.to_be_bytes());
            s.summary = s.summary.replace(&format!("id={id} "), "id=4660 ");
        }
        // ping's round trips, on the clock of this run.
        for (_, state) in &mut s.states {
            if let Some((head, tail)) = state.split_once(" time=") {
                let rest = tail.split_once(" ms").map_or("", |(_, r)| r);
                *state = format!("{head} time=0.25 ms{rest}");
            }
            // traceroute's hop lines: every time the same.
            if state.starts_with("hop ") {
                let words: Vec<String> = state
                    .split("  ")
                    .map(|w| if w.ends_with(" ms") { "0.25 ms".to_string() } else { w.to_string() })
                    .collect();
                *state = words.join("  ");
            }
        }
        let checksums: Vec<String> =
            s.fields.iter().filter(|f| f.path.ends_with(".checksum")).map(|f| f.path.clone()).collect();
        for path in checksums {
            if let Some(old) = s.value(&path) {
                // As the notes say it: "checksums ok: IPv4 header 0xb6cc, TCP 0xf92b".
                texts.push((format!(" {old}"), " 0x0000".into()));
            }
            set(s, &path, "0x0000".into(), &[0, 0]);
        }
        for (path, fixed) in [
            ("SMTP.header.Date", "Sun, 01 Nov 2026 12:00:00 +0000".to_string()),
            ("IMAP.header.Date", "Sun, 01 Nov 2026 12:00:00 +0000".to_string()),
            ("POP3.header.Date", "Sun, 01 Nov 2026 12:00:00 +0000".to_string()),
            ("SMTP.header.Message-ID", "<0123456789abcdef@client.lab>".to_string()),
        ] {
            if let Some(old) = s.value(path)
                && old.len() == fixed.len()
            {
                texts.push((old.clone(), fixed.clone()));
                bytes.push((old.into_bytes(), fixed.into_bytes()));
            }
        }
    }
    // The date and the message id ride in the frames that carried the text, too.
    for s in steps.iter_mut() {
        for (old, new) in &bytes {
            let mut at = 0;
            while let Some(i) = s.bytes[at..].windows(old.len()).position(|w| w == &old[..]) {
                s.bytes[at + i..at + i + old.len()].copy_from_slice(new);
                at += i + old.len();
            }
        }
        for (old, new) in &texts {
            s.summary = s.summary.replace(old, new);
            for note in &mut s.notes {
                *note = note.replace(old, new);
            }
            for f in &mut s.fields {
                if let serde_json::Value::String(v) = &mut f.value {
                    *v = v.replace(old, new);
                }
            }
        }
    }
}

/// Sets a field's value and the bytes under it.
fn set(step: &mut Step, path: &str, value: serde_json::Value, raw: &[u8]) {
    let Some(f) = step.fields.iter_mut().find(|f| f.path == path) else { return };
    f.value = value;
    let [a, b] = f.range;
    if b - a == raw.len() && b <= step.bytes.len() {
        step.bytes[a..b].copy_from_slice(raw);
    }
}

/// The app on `lab`'s tab, holding `steps`, all shown, the cursor on `cursor`.
fn app_on(lab: &str, steps: Vec<Step>, cursor: usize) -> App {
    let mut app = App::new(labs::registry(), None);
    app.active = app.tabs.iter().position(|t| t.lab.info().name == lab).unwrap();
    let tab = app.tab_mut();
    tab.wire = tab.lab.info().default_wire();
    let n = steps.len();
    for s in steps {
        tab.push(s);
    }
    tab.revealed = n;
    tab.select(cursor);
    tab.state = RunState::Running;
    app
}

fn app_with(steps: Vec<Step>, cursor: usize, field: usize) -> App {
    let mut app = app_on("ws", steps, cursor);
    app.tab_mut().field = field;
    app
}

/// The app on its WebSocket tab, with no steps.
fn ws_app() -> App {
    app_on("ws", Vec::new(), 0)
}

fn render(app: &mut App, w: u16, h: u16) -> Buffer {
    ui::settle(app, Rect::new(0, 0, w, h));
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| ui::draw(f, app, Instant::now())).unwrap();
    terminal.backend().buffer().clone()
}

fn draw(app: &mut App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    ui::settle(app, Rect::new(0, 0, w, h));
    terminal.draw(|f| ui::draw(f, app, Instant::now())).unwrap();
    format!("{}", terminal.backend())
}

fn events() -> mpsc::Sender<LabEvent> {
    mpsc::channel(16).0
}

// --- The screen at three sizes, for every lab -------------------------------------------------

/// DHCP: the renewal at T1, with the lease timeline; the NAK's long summary in the ladder.
#[tokio::test]
async fn dhcp_at_three_sizes() {
    let mut steps = real_steps("dhcp").await;
    normalize(&mut steps);
    let renew = steps.iter().position(|s| s.summary.contains("renew")).unwrap();
    let mut app = app_on("dhcp", steps, renew);
    for (w, h) in SIZES {
        let screen = draw(&mut app, w, h);
        assert!(screen.contains("renewing"), "the lease timeline at {w}x{h}:\n{screen}");
        insta::assert_snapshot!(format!("dhcp_{w}x{h}"), screen);
    }
}

/// ping: three lifelines (client, r1, server), the first reply back at the client with its
/// round trip, the forwarding in the details.
#[tokio::test]
async fn ping_at_three_sizes() {
    let mut steps = real_steps("ping").await;
    normalize(&mut steps);
    let back = steps.iter().position(|s| s.kind == "icmp.echo-reply" && s.to == "client").unwrap();
    let mut app = app_on("ping", steps, back);
    for (w, h) in SIZES {
        let screen = draw(&mut app, w, h);
        assert!(screen.contains("r1"), "the router's lifeline at {w}x{h}:\n{screen}");
        insta::assert_snapshot!(format!("ping_{w}x{h}"), screen);
    }
}

/// traceroute: five lifelines; r2's Time Exceeded selected, its label too long for its arrow at
/// 80x24, so the details say it whole.
#[tokio::test]
async fn traceroute_with_five_lifelines() {
    let mut steps = real_steps("traceroute").await;
    normalize(&mut steps);
    let r2 = steps.iter().position(|s| s.kind == "icmp.time-exceeded" && s.from == "r2").unwrap();
    let summary = steps[r2].summary.clone();
    let mut app = app_on("traceroute", steps, r2);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        for name in ["client", "r1", "r2", "r3", "server"] {
            assert!(screen.contains(name), "{name} at {w}x{h}:\n{screen}");
        }
        // Whole, if perhaps wrapped.
        let (head, tail) = summary.split_once(" about ").unwrap();
        let port = tail.rsplit_once(':').unwrap().1;
        assert!(
            screen.contains(head) && screen.contains(&format!("203.0.113.5:{port}")),
            "{summary} at {w}x{h}:\n{screen}"
        );
        insta::assert_snapshot!(format!("traceroute_{w}x{h}"), screen);
    }
}

/// dns: four lifelines on one LAN; the root's referral selected, its glue in the details.
#[tokio::test]
async fn dns_with_four_lifelines() {
    let mut steps = real_steps("dns").await;
    normalize(&mut steps);
    let referral = steps.iter().position(|s| s.kind == "dns.response.referral").unwrap();
    let mut app = app_on("dns", steps, referral);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        for name in ["client", "root", "ns.lab", "ns.b.lab"] {
            assert!(screen.contains(name), "{name} at {w}x{h}:\n{screen}");
        }
        insta::assert_snapshot!(format!("dns_{w}x{h}"), screen);
    }
}

/// mail: alice, mail.a.lab, dns, mail.b.lab, bob, mallory (six lifelines); mail.b.lab's 550
/// 5.7.1 to mallory selected, the DNS questions of the checks before it on the ladder.
#[tokio::test]
async fn mail_with_six_lifelines() {
    protolab::tls::set_ca_dir(std::env::temp_dir().join(format!("protolab-tui-ca-{}", std::process::id())));
    let mut steps = real_steps("mail").await;
    normalize(&mut steps);
    let refused = steps.iter().position(|s| s.kind == "smtp.reply.550.text").unwrap();
    let mut app = app_on("mail", steps, refused);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        for name in ["alice", "mail.a.lab", "dns", "mail.b.lab", "bob", "mallory"] {
            assert!(screen.contains(name), "{name} at {w}x{h}:\n{screen}");
        }
        assert!(screen.contains("550 5.7.1"), "the refusal at {w}x{h}:\n{screen}");
        insta::assert_snapshot!(format!("mail_{w}x{h}"), screen);
    }
}

/// nat: remote, r1, web, pc; the port-forwarded SYN selected, its rewrite in the details and
/// the crossed link (r1's inside LAN) on the map.
#[tokio::test]
async fn nat_with_a_rewritten_syn() {
    let mut steps = real_steps("nat").await;
    normalize(&mut steps);
    let forwarded = steps.iter().position(|s| s.summary.starts_with("SYN ") && s.from == "r1").unwrap();
    let mut app = app_on("nat", steps, forwarded);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        for name in ["remote", "r1", "web", "pc"] {
            assert!(screen.contains(name), "{name} at {w}x{h}:\n{screen}");
        }
        insta::assert_snapshot!(format!("nat_{w}x{h}"), screen);
    }
}

/// portscan: scanner, web, mail, r1, vault; r1's firewall refusing the connect scan's SYN to
/// vault's port 22, then vault's 443 answering through it, selected; at 80 columns the tab bar
/// scrolls to show the ninth tab.
#[tokio::test]
async fn portscan_with_a_refused_probe() {
    let mut steps = real_steps("portscan").await;
    normalize(&mut steps);
    // The connect scan's SYN-ACK from vault, passed on by r1, just after the refusal of 22.
    let open = steps.iter().position(|s| s.summary.starts_with("SYN,ACK") && s.from == "r1").unwrap();
    let mut app = app_on("portscan", steps, open);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        for name in ["scanner", "web", "mail", "r1", "vault", "9 port scan"] {
            assert!(screen.contains(name), "{name} at {w}x{h}:\n{screen}");
        }
        insta::assert_snapshot!(format!("portscan_{w}x{h}"), screen);
    }
    // The bar scrolled: `‹` stands for the tabs left out, and a click still finds its tab.
    let screen = draw(&mut app, 80, 24);
    assert!(screen.lines().next().unwrap().starts_with("\"‹ "), "{screen}");
    let areas = ui::layout(Rect::new(0, 0, 80, 24), &app);
    let first = screen.lines().next().unwrap().trim_start_matches('"');
    let at = first.chars().position(|c| c == '9').unwrap() as u16;
    assert_eq!(ui::tab_at(&app, &areas, at), Some(8));
    let at = first.chars().position(|c| c == '8').unwrap() as u16;
    assert_eq!(ui::tab_at(&app, &areas, at), Some(7));
}

/// nat's connections: each row of them gets its letter (the two sides of r1's rewrite are
/// connections of their own: other addresses), `f` narrows the ladder to the selected step's
/// connection (the others' rows, and ARP, go), Esc brings all back.
#[tokio::test]
async fn f_follows_one_connection() {
    let mut steps = real_steps("nat").await;
    normalize(&mut steps);
    let total = steps.len();
    let second = steps.iter().position(|s| s.summary.starts_with("SYN ") && s.from == "pc").unwrap();
    let pc_syn = steps[second].summary.clone();
    let mut app = app_on("nat", steps, second);
    let row_of = |screen: &str, text: &str| screen.lines().find(|l| l.contains(text)).map(str::to_string);
    let screen = draw(&mut app, 120, 40);
    let pc_row = row_of(&screen, &pc_syn).unwrap();
    // Between the time and the first lifeline: remote → r1 is a, r1 → web b, pc → r1 c; ARP
    // has none.
    assert_eq!(pc_row.chars().nth(14), Some('c'), "{pc_row}");
    let arp_rows: Vec<&str> = screen.lines().filter(|l| l.contains("who has")).collect();
    assert!(!arp_rows.is_empty() && arp_rows.iter().all(|l| l.chars().nth(14) == Some(' ')), "{screen}");
    app.act(Action::Follow, 10, &events(), Instant::now());
    let narrowed = app.tab().rows_from(0).count();
    assert!(narrowed > 4 && narrowed < total / 2, "{narrowed} of {total}");
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("only 192.0.2.20:"), "{screen}");
    assert!(!screen.contains("who has"), "ARP is no connection's:\n{screen}");
    let tags: Vec<char> = screen.lines().filter(|l| l.contains("0.0")).filter_map(|l| l.chars().nth(14)).collect();
    assert!(!tags.is_empty() && tags.iter().all(|&t| t == 'c'), "only pc's connection:\n{screen}");
    assert_eq!(app.tab().selected().map(|s| s.summary.clone()), Some(pc_syn));
    app.act(Action::Back, 10, &events(), Instant::now());
    assert_eq!(app.tab().rows_from(0).count(), total);
    // ARP belongs to no connection: f says so and changes nothing.
    app.tab_mut().select(0);
    app.act(Action::Follow, 10, &events(), Instant::now());
    assert!(app.note.as_deref().unwrap_or_default().contains("no connection"));
    assert_eq!(app.tab().rows_from(0).count(), total);
}

/// TCP: the server's ACK of the client's FIN, while the server's FIN,ACK waits at the gate.
#[tokio::test]
async fn tcp_at_three_sizes() {
    let mut steps = real_steps("tcp").await;
    normalize(&mut steps);
    let fin = steps.iter().position(|s| s.from == "client" && s.summary.starts_with("FIN,ACK")).unwrap();
    // What a presenter sees when the server has just acknowledged the FIN: its own FIN,ACK was
    // made at once and waits at the gate (a free run holds nothing, so this is set by hand).
    steps.truncate(fin + 2);
    let ack = steps.last_mut().unwrap();
    assert_eq!(ack.from, "server");
    ack.states = vec![("client".into(), "FIN-WAIT-2".into()), ("server".into(), "CLOSE-WAIT".into())];
    ack.moved = vec![Moved {
        who: "server".into(),
        from: "CLOSE-WAIT".into(),
        to: "LAST-ACK".into(),
        waiting: "FIN,ACK".into(),
    }];
    let last = steps.len() - 1;
    let mut app = app_on("tcp", steps, last);
    app.tab_mut().waiting = Some("server".into());
    for (w, h) in SIZES {
        let screen = draw(&mut app, w, h);
        assert!(screen.contains("CLOSE-WAIT → LAST-ACK"), "{w}x{h}:\n{screen}");
        assert!(screen.contains("SYN,ACK seq=5000000"), "the longest summary at {w}x{h}:\n{screen}");
        insta::assert_snapshot!(format!("tcp_{w}x{h}"), screen);
    }
}

/// WebSocket: the 101 with its accept check (on kernel sockets: messages only, wall clock).
#[test]
fn ws_at_three_sizes() {
    let mut app = app_with(ws_steps(), 1, 0);
    app.tab_mut().wire = Wire::Host;
    for (w, h) in SIZES {
        let screen = draw(&mut app, w, h);
        insta::assert_snapshot!(format!("ws_{w}x{h}"), screen);
    }
}

/// SMTP: the EHLO reply, many lines long, between its TCP segments.
#[tokio::test]
async fn smtp_at_three_sizes() {
    let mut steps = real_steps("smtp").await;
    normalize(&mut steps);
    let reply = steps.iter().position(|s| s.summary.contains("greets client.lab (+")).unwrap();
    let mut app = app_on("smtp", steps, reply);
    app.tab_mut().wire = Wire::Sim;
    for (w, h) in SIZES {
        let screen = draw(&mut app, w, h);
        insta::assert_snapshot!(format!("smtp_{w}x{h}"), screen);
    }
}

/// In Korean (`--lang ko`): the DHCP renewal and the TCP close at 80x24 and 200x60. Hangul
/// takes two columns: nothing is cut in the middle of a syllable or runs past its pane, and
/// the narration is the Korean text.
#[tokio::test]
async fn korean_at_the_smallest_and_largest_sizes() {
    let mut dhcp = real_steps("dhcp").await;
    normalize(&mut dhcp);
    let renew = dhcp.iter().position(|s| s.summary.contains("renew")).unwrap();
    let mut tcp = real_steps("tcp").await;
    normalize(&mut tcp);
    let fin = tcp.iter().position(|s| s.kind == "tcp.fin.first").unwrap();
    for (lab, steps, at) in [("dhcp", dhcp, renew), ("tcp", tcp, fin)] {
        let mut app = app_on(lab, steps, at);
        app.set_lang(protolab::locale::Lang::Ko);
        for (w, h) in [(80, 24), (200, 60)] {
            let buf = render(&mut app, w, h);
            let screen = draw(&mut app, w, h);
            assert!(screen.contains("클라이언트"), "{lab} {w}x{h}:\n{screen}");
            assert!(!screen.contains("has no narration"), "{lab} {w}x{h}:\n{screen}");
            assert_whole_wide_characters(&buf);
            insta::assert_snapshot!(format!("ko_{lab}_{w}x{h}"), screen);
        }
    }
}

/// A two-column character owns the cell to its right: nothing else may be drawn there (it
/// would overlap on a real terminal), and it never starts in the last column.
fn assert_whole_wide_characters(buf: &Buffer) {
    let (w, h) = (buf.area.width, buf.area.height);
    for y in 0..h {
        for x in 0..w {
            if protolab::tui::text::width(buf[(x, y)].symbol()) == 2 {
                assert!(x + 1 < w, "a wide character cut at the right edge, row {y}");
                assert_eq!(buf[(x + 1, y)].symbol(), " ", "drawn over half of a wide character at {x},{y}");
            }
        }
    }
}

/// The DHCP lesson in Korean at 80x24 and 120x40: the question about the OFFER's address
/// field open, its card in Korean, no wide character cut.
#[tokio::test]
async fn a_korean_lesson_at_80x24_and_120x40() {
    use crossterm::event::KeyCode;
    let mut steps = real_steps("dhcp").await;
    normalize(&mut steps);
    let offer = steps.iter().position(|s| s.kind.starts_with("dhcp.offer")).unwrap();
    steps.truncate(offer + 1);
    let mut app = app_on("dhcp", Vec::new(), 0);
    app.set_lang(protolab::locale::Lang::Ko);
    let lesson = protolab::lesson::find("dhcp").unwrap();
    app.tab_mut().lesson = Some(protolab::tui::lesson::TabLesson::new(lesson, protolab::locale::Lang::Ko, 1));
    let now = Instant::now();
    for answer in ['a', 'a'] {
        assert!(app.lesson_key(key(KeyCode::Char(answer))));
        assert!(app.lesson_key(key(KeyCode::Enter)));
        let step = steps.remove(0);
        app.tab_mut().on_event(LabEventKind::Step(Box::new(step)), now);
    }
    app.tab_mut().revealed = app.tab().session.len();
    app.tab_mut().flight = None;
    app.tab_mut().select(1);
    let open = app.tab().lesson.as_ref().and_then(|l| l.open()).map(|a| a.number);
    assert_eq!(open, Some(3), "the field question about the OFFER");
    for (w, h) in [(80, 24), (120, 40)] {
        let buf = render(&mut app, w, h);
        let screen = draw(&mut app, w, h);
        assert!(screen.contains("필드를 고르세요"), "{w}x{h}:\n{screen}");
        assert_whole_wide_characters(&buf);
        insta::assert_snapshot!(format!("ko_lesson_dhcp_{w}x{h}"), screen);
    }
}

/// In Korean, the details pane says a step's notes and its malformed reason in Korean, while
/// the step keeps them in English: a real DHCP OFFER's checks and lease times, and the frame a
/// WebSocket client sent unmasked.
#[tokio::test]
async fn notes_and_malformed_reasons_read_in_korean() {
    let mut dhcp = real_steps("dhcp").await;
    normalize(&mut dhcp);
    let offer = dhcp.iter().position(|s| s.kind.starts_with("dhcp.offer")).unwrap();
    let t1 = "T1 60 s = 50.0 % of the lease: the client renews with this server";
    assert!(dhcp[offer].notes.iter().any(|n| n == t1), "{:?}", dhcp[offer].notes);
    let mut app = app_on("dhcp", dhcp, offer);
    app.set_lang(protolab::locale::Lang::Ko);
    let screen = draw(&mut app, 200, 60);
    for korean in
        ["체크섬 정상: IPv4 헤더 0x0000, UDP 0x0000", "T1 60초 = 임대 시간의 50.0 %", "T2 105초 = 임대 시간의 87.5 %"]
    {
        assert!(screen.contains(korean), "{korean}:\n{screen}");
    }
    assert!(!screen.contains("of the lease") && !screen.contains("checksums ok"), "{screen}");

    let steps = ws_steps();
    let reason = "a client's frame must be masked (RFC 6455 §5.1)";
    let unmasked = steps.iter().position(|s| s.malformed.as_deref() == Some(reason)).unwrap();
    let mut app = app_with(steps, unmasked, 0);
    app.set_lang(protolab::locale::Lang::Ko);
    let screen = draw(&mut app, 200, 60);
    assert!(screen.contains("클라이언트의 프레임은 마스킹되어야 함(RFC 6455 §5.1)"), "{screen}");
    assert!(!screen.contains("must be masked"), "{screen}");
}

/// A run that failed for real says why in the ladder's footer, in Korean as it is on screen
/// (the OS's own words kept), and in English word for word.
#[tokio::test]
async fn a_failed_run_says_why_in_korean() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let opts = run::RunOptions { connect: Some(closed.to_string()), ..run::RunOptions::free(Wire::Host) };
    let error = run::exchange(labs::find("tcp").unwrap(), opts, StepSink::new("tcp", tx)).await.unwrap_err();
    let chain: Vec<String> = error.chain().map(|c| c.to_string()).collect();
    let mut app = app_on("tcp", Vec::new(), 0);
    app.tab_mut().state = RunState::Failed(chain.clone());
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains(&format!("✗ cannot connect to {closed}: {}", chain[1])), "{screen}");
    app.set_lang(protolab::locale::Lang::Ko);
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains(&format!("✗ {closed}에 연결할 수 없음: {}", chain[1])), "{screen}");
}

/// At 80x24 the accept check is one key away: `z` gives details and narration the screen.
#[test]
fn zoom_shows_the_whole_accept_check_at_80x24() {
    let mut app = app_with(ws_steps(), 1, 0);
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("z shows all"), "the pane says more is there:\n{screen}");
    app.act(Action::Zoom, 10, &events(), Instant::now());
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("= s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{screen}");
    assert!(screen.contains("matches Sec-WebSocket-Accept"), "{screen}");
    insta::assert_snapshot!("ws_zoom_80x24", screen);
    app.act(Action::Back, 10, &events(), Instant::now());
    assert!(!app.zoom, "Esc leaves zoom");
}

#[test]
fn ladder_under_no_color_marks_the_selection() {
    let mut app = app_with(ws_steps(), 2, 2);
    app.theme = protolab::tui::theme::Theme::NoColor;
    let buf = render(&mut app, 80, 24);
    assert!(buf.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset), "no colour at all");
    // The selected row: its marker, in reverse video.
    let marked = (0..24).find(|&y| buf[(1, y)].symbol() == "▶").expect("a marker on the selected row");
    assert!(buf[(2, marked)].modifier.contains(Modifier::REVERSED));
    // The selected field: its marker, in reverse video.
    let field = (0..24)
        .flat_map(|y| (0..80).map(move |x| (x, y)))
        .find(|&(x, y)| buf[(x, y)].symbol() == "▸" && x < 40)
        .expect("a marker on the selected field");
    assert!(buf[(field.0 + 1, field.1)].modifier.contains(Modifier::REVERSED));
    let mut app = app_with(ws_steps(), 2, 2);
    app.theme = protolab::tui::theme::Theme::NoColor;
    insta::assert_snapshot!("no_color_80x24", draw(&mut app, 80, 24));
}

#[test]
fn malformed_step_shows_its_reason() {
    let steps = ws_steps();
    let bad = steps.iter().position(|s| s.malformed.is_some()).expect("the unmasked frame");
    let mut app = app_with(steps, bad, 0);
    let screen = draw(&mut app, 160, 48);
    assert!(screen.contains("malformed: a client's frame must be masked"), "{screen}");
    assert!(screen.contains("!! text \"not masked\""), "{screen}");
}

#[test]
fn accept_check_is_shown_for_the_101() {
    let mut app = app_with(ws_steps(), 1, 0);
    let screen = draw(&mut app, 160, 48);
    assert!(screen.contains("= s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{screen}");
    assert!(screen.contains("matches Sec-WebSocket-Accept"), "{screen}");
}

#[test]
fn empty_tab_invites_the_first_press() {
    let mut app = ws_app();
    app.tab_mut().waiting = Some("client".into());
    insta::assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn help_lists_every_key() {
    let mut app = app_with(ws_steps(), 0, 0);
    app.capture_off = Some(protolab::net::capture::HINT.into());
    app.act(Action::Help, 10, &events(), Instant::now());
    let screen = draw(&mut app, 100, 50);
    for (label, help) in protolab::tui::keys::help_rows() {
        assert!(screen.contains(label.as_str()), "help lacks {label:?}:\n{screen}");
        let start: String = help.chars().take(30).collect();
        assert!(screen.contains(&start), "help lacks {help:?}:\n{screen}");
    }
    for key in ["h", "j", "k", "l", "g", "G", "Esc", "Ctrl-C", "mouse"] {
        assert!(screen.contains(key), "help lacks {key}");
    }
    assert!(screen.contains("setcap cap_net_raw"), "the capture hint stays reachable:\n{screen}");
    // At 80x24 help opens on the capture hint, and scrolls to its end.
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("setcap") && screen.contains("more: j"), "{screen}");
    for _ in 0..40 {
        app.act(Action::FieldDown, 10, &events(), Instant::now());
    }
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("quit (press it twice)") && screen.contains("wall clock"), "{screen}");
    assert!(app.help, "scrolling keeps help open");
}

#[test]
fn too_small_terminal_says_so() {
    let mut app = app_with(ws_steps(), 0, 0);
    let screen = draw(&mut app, 40, 10);
    assert!(screen.contains("terminal too small: 40x10"), "{screen}");
}

#[test]
fn long_sessions_scroll_to_the_cursor() {
    let mut steps = Vec::new();
    for round in 0..50 {
        for mut s in ws_steps() {
            s.seq += round * 100;
            steps.push(s);
        }
    }
    let n = steps.len();
    let mut app = app_with(steps, n - 1, 0);
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains(&format!("step {n}/{n}")), "{screen}");
    assert!(screen.contains("FIN"), "the last step is in view: {screen}");
}

// --- Layout ---------------------------------------------------------------------------------

/// More columns never show less of the ladder: up to the width its widest summary needs, it
/// takes every column; past it, it keeps that width and the panes go beside it.
#[tokio::test]
async fn more_columns_never_show_less_ladder() {
    let mut steps = real_steps("tcp").await;
    normalize(&mut steps);
    // The SYN,ACK's summary, the widest, with the time column, the lifelines and the borders.
    let want = steps.iter().map(|s| s.summary.chars().count()).max().unwrap() as u16 + 27;
    let app = app_on("tcp", steps, 0);
    let mut before = 0;
    for w in 80..=240 {
        let areas = ui::layout(Rect::new(0, 0, w, 40), &app);
        let useful = areas.ladder.width.min(want);
        assert!(useful >= before, "at {w} columns the ladder shows less ({useful} < {before})");
        before = useful;
        assert!(areas.ladder.width >= want.min(w), "at {w} the SYN,ACK is cut");
    }
}

#[test]
fn at_80x24_the_ladder_shows_more_than_six_rows() {
    let app = app_with(ws_steps(), 0, 0);
    let areas = ui::layout(Rect::new(0, 0, 80, 24), &app);
    assert!(areas.ladder_rows() >= 8, "{areas:?}");
    let app = app_on("dhcp", Vec::new(), 0);
    let areas = ui::layout(Rect::new(0, 0, 80, 24), &app);
    assert!(areas.ladder_rows() >= 7 && areas.timeline_rows >= 2, "{areas:?}");
}

#[test]
fn the_status_line_fits_80_columns_with_help_and_quit() {
    let mut app = app_with(ws_steps(), 0, 0);
    app.note = Some(protolab::net::capture::HINT.into());
    let buf = render(&mut app, 80, 24);
    let status: String = (0..80).map(|x| buf[(x, 23)].symbol().to_string()).collect();
    assert!(status.contains("? help") && status.contains("q quit"), "{status}");
    assert!(status.contains("packet capture is off"), "{status}");
}

/// The gate's prompt goes between the lifelines, never over them.
#[test]
fn the_gate_prompt_leaves_the_lifelines_alone() {
    let mut app = app_with(ws_steps().into_iter().take(2).collect(), 1, 0);
    app.tab_mut().waiting = Some("server".into());
    for (w, h) in SIZES {
        let buf = render(&mut app, w, h);
        let row = (0..h)
            .find(|&y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>().contains("has a message ready"))
            .unwrap_or_else(|| panic!("no prompt at {w}x{h}"));
        let lifelines: Vec<u16> = (0..w).filter(|&x| buf[(x, row - 1)].symbol() == "│").collect();
        for x in lifelines.iter().filter(|&&x| x > 1 && x < w - 1) {
            assert_eq!(buf[(*x, row)].symbol(), "│", "the prompt covers a lifeline at {x} ({w}x{h})");
        }
    }
}

/// The hex dump keeps the selected field's whole range in view (TCP.seq: all four bytes).
#[tokio::test]
async fn the_hex_dump_shows_the_whole_selected_field() {
    let mut steps = real_steps("tcp").await;
    normalize(&mut steps);
    let syn = steps.iter().position(|s| s.value("TCP.flags").as_deref() == Some("SYN")).unwrap();
    let mut app = app_on("tcp", steps, syn);
    let tab = app.tab_mut();
    tab.field = tab.selected().unwrap().fields.iter().position(|f| f.path == "TCP.seq").unwrap();
    let buf = render(&mut app, 80, 24);
    let lit = buf.content.iter().filter(|c| c.bg == Color::Yellow).count();
    assert_eq!(lit, 4 * 2 + 4, "four bytes lit, in hex and in ASCII");
}

// --- What the screen says is true -------------------------------------------------------------

#[tokio::test]
async fn the_lease_timeline_ends_with_release_and_nak() {
    let steps = real_steps("dhcp").await;
    let of = |t: &str| steps.iter().position(|s| s.value("DHCP.message_type").as_deref() == Some(t)).unwrap();
    let (release, nak) = (of("RELEASE"), of("NAK"));
    let (release_seq, nak_seq) = (steps[release].seq, steps[nak].seq);
    let mut app = app_on("dhcp", steps, release);
    for (w, h) in SIZES {
        let screen = draw(&mut app, w, h);
        assert!(screen.contains(&format!("no lease: released at #{release_seq}")), "{w}x{h}:\n{screen}");
        assert!(!screen.contains("into the lease") && !screen.contains("bound"), "{screen}");
    }
    app.tab_mut().select(nak);
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains(&format!("no lease: NAK at #{nak_seq}")), "{screen}");
    app.tab_mut().select(0);
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("no lease yet"), "{screen}");
    // The server's view follows the RELEASE.
    app.tab_mut().select(release);
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("192.0.2.10 FREE"), "{screen}");
}

/// A lease granted by an ACK the cable lost was never granted: the client has none until the
/// ACK it gets when the REQUEST is sent again.
#[tokio::test]
async fn a_lost_ack_grants_no_lease() {
    let clean = real_steps("dhcp").await;
    let is_ack = |s: &Step| s.value("DHCP.message_type").as_deref() == Some("ACK");
    let first_ack = clean.iter().filter(|s| s.frame).position(is_ack).unwrap() as u64 + 1;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let faults = protolab::net::sim::Faults { drop: vec![first_ack], ..Default::default() };
    let opts = run::RunOptions { faults, ..run::RunOptions::free(Wire::Sim) };
    run::exchange(labs::find("dhcp").unwrap(), opts, StepSink::new("dhcp", tx)).await.unwrap();
    let steps: Vec<Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let lost = steps.iter().position(|s| is_ack(s) && s.fate.lost()).expect("the first ACK is lost");
    let granted = lost + 1 + steps[lost + 1..].iter().position(is_ack).unwrap();
    let mut app = app_on("dhcp", steps.clone(), lost);
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("no lease yet"), "{screen}");
    app.tab_mut().select(granted);
    let screen = draw(&mut app, 120, 40);
    let addr = steps[granted].value("DHCP.yiaddr").unwrap();
    assert!(screen.contains(&format!("lease of {addr} from #{}", steps[granted].seq)), "{screen}");
}

#[tokio::test]
async fn the_dhcp_timeline_places_each_step_on_the_lease() {
    let steps = real_steps("dhcp").await;
    let renew = steps.iter().position(|s| s.summary.contains(" renew ")).unwrap();
    let rebind = steps.iter().position(|s| s.summary.contains(" rebind ")).unwrap();
    let mut app = app_on("dhcp", steps, 3);
    let at_ack = draw(&mut app, 120, 40);
    assert!(at_ack.contains("lease of 192.0.2.10 from #4: 120 s"), "{at_ack}");
    assert!(at_ack.contains("0.0 s into the lease, bound"), "{at_ack}");

    app.tab_mut().select(renew);
    let at_t1 = draw(&mut app, 120, 40);
    assert!(at_t1.contains("s into the lease, renewing"), "{at_t1}");

    app.tab_mut().select(rebind);
    let at_t2 = draw(&mut app, 120, 40);
    assert!(at_t2.contains("s into the lease, rebinding"), "{at_t2}");
    assert!(at_t2.contains("T1 60") && at_t2.contains("T2 105"), "{at_t2}");
    let compact = draw(&mut app, 80, 24);
    assert!(compact.contains("rebinding") && compact.contains("T2 105"), "{compact}");
}

#[test]
fn titles_show_the_real_port_and_where_a_lab_runs() {
    let mut app = App::new(labs::registry(), Some(Wire::Host));
    for tab in app.tabs.iter_mut() {
        tab.wire = tab.lab.info().wire_for(Some(Wire::Host));
    }
    app.active = app.tabs.iter().position(|t| t.lab.info().name == "ws").unwrap();
    let screen = draw(&mut app, 120, 40);
    assert!(!screen.contains("port 80"), "no port is claimed before the server listens:\n{screen}");
    let (tab, run) = (app.active, app.tab().run);
    let addr = "127.0.0.1:43817".parse().unwrap();
    app.on_lab_event(LabEvent { tab, run, kind: LabEventKind::Listening(addr) }, Instant::now());
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("port 43817") && screen.contains("kernel sockets"), "{screen}");
    assert!(screen.contains("wall clock"), "{screen}");

    app.active = app.tabs.iter().position(|t| t.lab.info().name == "dhcp").unwrap();
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("runs on the lab network"), "{screen}");
    assert!(screen.contains("lab clock"), "{screen}");
}

// --- Keys and modes ---------------------------------------------------------------------------

#[test]
fn esc_goes_back_and_never_quits() {
    let mut app = app_with(ws_steps(), 0, 0);
    let now = Instant::now();
    app.act(Action::Help, 10, &events(), now);
    assert!(app.help);
    app.act(Action::Back, 10, &events(), now);
    assert!(!app.help && !app.quit, "Esc closes help");
    app.act(Action::Zoom, 10, &events(), now);
    app.act(Action::Back, 10, &events(), now);
    assert!(!app.zoom && !app.quit, "Esc leaves zoom");
    app.act(Action::Back, 10, &events(), now);
    assert!(!app.quit, "Esc with nothing to close does not quit");
    assert!(app.note.as_deref().unwrap_or_default().contains("q quits"));
}

#[test]
fn q_quits_at_once() {
    let mut app = app_with(ws_steps(), 0, 0);
    app.act(Action::Quit, 10, &events(), Instant::now());
    assert!(app.quit);
}

#[test]
fn ctrl_c_quits_when_pressed_twice() {
    let mut app = app_with(ws_steps(), 0, 0);
    let now = Instant::now();
    app.act(Action::Interrupt, 10, &events(), now);
    assert!(!app.quit);
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("press Ctrl-C again to quit"), "{screen}");
    assert!(app.next_tick(now).is_some(), "the note lapses by itself");
    // Too late: it asks again.
    app.act(Action::Interrupt, 10, &events(), now + Duration::from_secs(3));
    assert!(!app.quit);
    app.act(Action::Interrupt, 10, &events(), now + Duration::from_secs(4));
    assert!(app.quit);
}

/// Feeds what a peer did (its waits at the gate, its steps) to the app.
fn pump(
    app: &mut App,
    gate_rx: &mut mpsc::UnboundedReceiver<GateEvent>,
    steps: &mut mpsc::UnboundedReceiver<Step>,
    now: Instant,
) {
    let (tab, run) = (app.active, app.tab().run);
    loop {
        let kind = if let Ok(step) = steps.try_recv() {
            LabEventKind::Step(Box::new(step))
        } else if let Ok(GateEvent::Waiting { from }) = gate_rx.try_recv() {
            LabEventKind::Waiting(from)
        } else {
            break;
        };
        app.on_lab_event(LabEvent { tab, run, kind }, now);
    }
}

/// A peer that sends `n` of the WebSocket steps, each after a press at the gate, thinking a
/// moment between them.
fn peer(gate: std::sync::Arc<Gate>, n: usize) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<Step>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        for s in ws_steps().into_iter().take(n) {
            gate.clone().pass(s.from.clone()).await;
            let _ = tx.send(s);
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });
    (task, rx)
}

/// Six quick presses, each while an arrow flies, send six messages.
#[tokio::test]
async fn presses_while_an_arrow_flies_each_send_a_message() {
    let mut app = ws_app();
    let (gate_tx, mut gate_rx) = mpsc::unbounded_channel();
    let gate = Gate::stepping(gate_tx);
    app.tab_mut().gate = Some(gate.clone());
    let (task, mut steps) = peer(gate, 6);
    // The first message waits at the gate.
    while app.tab().waiting.is_none() {
        tokio::time::sleep(Duration::from_millis(2)).await;
        pump(&mut app, &mut gate_rx, &mut steps, Instant::now());
    }
    let mut now = Instant::now();
    for press in 0..6 {
        app.act(Action::StepForward, 10, &events(), now);
        tokio::time::sleep(Duration::from_millis(5)).await;
        pump(&mut app, &mut gate_rx, &mut steps, now);
        if press > 0 {
            assert!(app.tab().flight.is_some() || app.tab().queued > 0 || app.tab().session.len() > press);
        }
        // 100 ms apart: each arrow (700 ms) is still in the air at the next press.
        now += Duration::from_millis(100);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !task.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        pump(&mut app, &mut gate_rx, &mut steps, now);
    }
    pump(&mut app, &mut gate_rx, &mut steps, now);
    assert!(task.is_finished(), "the peer still waits: only {} messages went", app.tab().session.len());
    assert_eq!(app.tab().session.len(), 6);
    assert_eq!(app.tab().queued, 0);
}

/// A press while arrows are still to fly catches up (everything received lands, the cursor
/// on the newest) and sends the next message.
#[tokio::test]
async fn a_press_catches_up_and_sends() {
    let mut app = ws_app();
    let (gate_tx, _gate_rx) = mpsc::unbounded_channel();
    let gate = Gate::stepping(gate_tx);
    app.tab_mut().gate = Some(gate.clone());
    let waiter = tokio::spawn(gate.clone().pass("client".into()));
    while gate.waiting().is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (tab, run) = (app.active, app.tab().run);
    let now = Instant::now();
    for step in ws_steps().into_iter().take(3) {
        app.on_lab_event(LabEvent { tab, run, kind: LabEventKind::Step(Box::new(step)) }, now);
    }
    assert!(app.tab().flight.is_some() && app.tab().revealed == 0, "three steps, the first in the air");
    app.act(Action::StepForward, 10, &events(), now);
    assert!(app.tab().flight.is_none() && app.tab().revealed == 3 && app.tab().cursor == 2);
    tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("the press let the message go").unwrap();
    // Back in history, → walks forward and sends nothing.
    app.act(Action::First, 10, &events(), now);
    app.act(Action::StepForward, 10, &events(), now);
    assert_eq!((app.tab().cursor, app.tab().queued), (1, 0));
}

/// Play mode belongs to a tab: starting it on one and switching to another does not make the
/// other play.
#[tokio::test]
async fn play_mode_belongs_to_its_tab() {
    let mut app = App::new(labs::registry(), None);
    let mut gates = Vec::new();
    for tab in app.tabs.iter_mut().take(2) {
        let (tx, rx) = mpsc::unbounded_channel();
        let gate = Gate::stepping(tx);
        tab.gate = Some(gate.clone());
        let waiter = tokio::spawn(gate.clone().pass("client".into()));
        gates.push((gate, waiter, rx));
    }
    while gates.iter().any(|(g, _, _)| g.waiting().is_none()) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let now = Instant::now();
    app.act(Action::TogglePlay, 10, &events(), now);
    app.act(Action::Faster, 10, &events(), now);
    app.act(Action::NextTab, 10, &events(), now);
    assert!(!app.tab().playing, "the other tab does not play");
    assert_eq!(app.tab().speed(), 1.0, "nor does it share the speed");
    app.tick(now + Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(gates[0].1.is_finished(), "the playing tab let its message go");
    assert!(!gates[1].1.is_finished(), "the other tab did not");
    assert!(app.tabs[0].playing && app.tabs[0].speed() == 2.0);
}

#[tokio::test]
async fn v_leaves_a_one_layer_lab_alone_and_says_why() {
    let steps = real_steps("tcp").await;
    let n = steps.len();
    let mut app = app_on("tcp", steps, 3);
    app.act(Action::ToggleLayers, 10, &events(), Instant::now());
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains(&format!("step 4/{n}")), "{screen}");
    assert!(screen.contains("every step here is a frame"), "{screen}");
    assert_eq!(app.tab().layers, protolab::tui::app::Layers::Both);

    let mut app = app_with(ws_steps(), 0, 0);
    app.act(Action::ToggleLayers, 10, &events(), Instant::now());
    assert_eq!(app.tab().layers, protolab::tui::app::Layers::Both);
    assert!(app.note.as_deref().unwrap().contains("every step here is a message"));
}

#[test]
fn lease_clock_keys_step_through_the_table_the_right_way() {
    use protolab::labs::dhcp::{set_speedup, speedup};
    let before = speedup();
    let mut app = app_on("dhcp", Vec::new(), 0);
    let press = |app: &mut App, a| app.act(a, 10, &events(), Instant::now());
    set_speedup(7);
    press(&mut app, Action::LeaseFaster);
    assert_eq!(speedup(), 10);
    set_speedup(7);
    press(&mut app, Action::LeaseSlower);
    assert_eq!(speedup(), 5);
    set_speedup(600);
    press(&mut app, Action::LeaseFaster);
    assert_eq!(speedup(), 600, "nothing in the table is faster");
    press(&mut app, Action::LeaseSlower);
    assert_eq!(speedup(), 120);
    // Elsewhere the keys say what they are for.
    app.active = app.tabs.iter().position(|t| t.lab.info().name == "tcp").unwrap();
    press(&mut app, Action::LeaseFaster);
    assert_eq!(speedup(), 120);
    assert!(app.note.as_deref().unwrap().contains("DHCP tab"));
    set_speedup(before);
}

#[tokio::test]
async fn the_layer_toggle_shows_messages_segments_or_both() {
    let steps = real_steps("smtp").await;
    let mut app = app_on("smtp", steps, 0);
    let rows = ui::layout(Rect::new(0, 0, 160, 48), &app).ladder_rows();

    let both = draw(&mut app, 160, 48);
    assert!(both.contains("SYN seq=") && both.contains("EHLO client.lab"), "{both}");

    app.act(Action::ToggleLayers, rows, &events(), Instant::now());
    let messages = draw(&mut app, 160, 48);
    assert!(messages.contains("messages only"));
    assert!(!messages.contains("SYN seq=") && messages.contains("EHLO client.lab"), "{messages}");
    assert!(!app.tab().selected().unwrap().frame, "the cursor moved to a message");
    assert!(messages.contains("step 1/"), "the count is of the rows shown: {messages}");

    app.act(Action::ToggleLayers, rows, &events(), Instant::now());
    let segments = draw(&mut app, 160, 48);
    assert!(segments.contains("SYN seq=") && !segments.contains("EHLO client.lab  "), "{segments}");
    // Moving forward walks the segments only.
    app.act(Action::StepForward, rows, &events(), Instant::now());
    assert!(app.tab().selected().unwrap().frame);
    app.act(Action::Back, rows, &events(), Instant::now());
    assert_eq!(app.tab().layers, protolab::tui::app::Layers::Both, "Esc shows every layer again");
}

#[test]
fn positions_follow_when_a_full_session_drops_its_oldest_steps() {
    use protolab::session::Session;
    let mut app = ws_app();
    let tab_index = app.active;
    app.tab_mut().session = Session::with_bounds(5, usize::MAX);
    let run = app.tab().run;
    let mut now = Instant::now();
    for step in ws_steps().into_iter().chain(ws_steps()).take(12) {
        app.on_lab_event(LabEvent { tab: tab_index, run, kind: LabEventKind::Step(Box::new(step)) }, now);
        // Let each arrow land.
        now += Duration::from_secs(2);
        app.tick(now);
    }
    let tab = app.tab();
    assert_eq!(tab.session.len(), 5);
    assert!(tab.revealed <= tab.session.len() && tab.cursor < tab.session.len());
    let selected = tab.selected().expect("a step is selected");
    assert_eq!(selected.seq, tab.session.get(tab.session.len() - 1).unwrap().seq, "the newest, as before the drops");
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("step 5/5"), "{screen}");
}

#[test]
fn narration_scrolls_and_says_when_there_is_more() {
    let mut app = app_with(ws_steps(), 1, 0);
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("more: J"), "{screen}");
    for _ in 0..50 {
        app.act(Action::ScrollDown, 10, &events(), Instant::now());
    }
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("↑ K") && !screen.contains("more: J"), "{screen}");
    app.act(Action::ScrollUp, 10, &events(), Instant::now());
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("↑↓ more"), "{screen}");
    // Another step starts at its top.
    app.act(Action::StepForward, 10, &events(), Instant::now());
    assert_eq!(app.tab().narration_scroll, 0);
}

/// `/` finds a step by its summary: typed in the status bar, Enter selects the next match
/// (going round the end), `n` and `N` move between matches, and a miss says so.
#[test]
fn slash_finds_a_step_by_its_summary() {
    use crossterm::event::KeyCode;
    let steps = ws_steps();
    let texts: Vec<usize> =
        steps.iter().enumerate().filter(|(_, s)| s.summary.contains("Hello")).map(|(i, _)| i).collect();
    assert_eq!(texts.len(), 2, "the echo and its answer");
    let mut app = app_with(steps, 0, 0);
    let press = |app: &mut App, action| app.act(action, 10, &events(), Instant::now());
    press(&mut app, Action::Search);
    for c in "hello".chars() {
        app.prompt_key(KeyCode::Char(c));
    }
    assert!(draw(&mut app, 120, 40).contains("/hello"), "the text shows as it is typed");
    app.prompt_key(KeyCode::Enter);
    assert_eq!(app.tab().cursor, texts[0]);
    press(&mut app, Action::SearchNext);
    assert_eq!(app.tab().cursor, texts[1]);
    press(&mut app, Action::SearchNext);
    assert_eq!(app.tab().cursor, texts[0], "round the end");
    press(&mut app, Action::SearchPrev);
    assert_eq!(app.tab().cursor, texts[1]);
    press(&mut app, Action::Search);
    for c in "nothing like it".chars() {
        app.prompt_key(KeyCode::Char(c));
    }
    app.prompt_key(KeyCode::Enter);
    assert_eq!(app.tab().cursor, texts[1], "a miss moves nothing");
    assert!(draw(&mut app, 120, 40).contains("no step matches “nothing like it”"));
}

/// Presenter mode (`P`, `--present`): the ladder takes the screen with its steps spaced out,
/// the narration is a subtitle band that starts with the step's details in one line, and the
/// status bar counts big; `:` goes to a step by number, `b` blanks the screen and any key
/// brings it back.
#[tokio::test]
async fn presenter_mode_for_a_projector() {
    use crossterm::event::KeyCode;
    let mut steps = real_steps("tcp").await;
    normalize(&mut steps);
    let n = steps.len();
    let mut app = app_on("tcp", steps, 4);
    let press = |app: &mut App, action| app.act(action, 10, &events(), Instant::now());
    press(&mut app, Action::Present);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        assert!(!screen.contains("┬ what happens") && !screen.contains(" details "), "no details pane:\n{screen}");
        assert!(screen.contains(&format!(" 5 / {n} · ")), "the big counter:\n{screen}");
        assert!(screen.contains("#5 client → server TCP"), "the details in one line:\n{screen}");
        insta::assert_snapshot!(format!("present_tcp_{w}x{h}"), screen);
    }
    press(&mut app, Action::GoToStep);
    for key in [KeyCode::Char('9'), KeyCode::Char('x'), KeyCode::Backspace, KeyCode::Char('2'), KeyCode::Enter] {
        app.prompt_key(key);
    }
    assert_eq!(app.tab().cursor, 1, "step 2, from what was typed: 9, then 2 (x is no digit)");
    press(&mut app, Action::GoToStep);
    app.prompt_key(KeyCode::Char('0'));
    app.prompt_key(KeyCode::Enter);
    assert!(draw(&mut app, 120, 40).contains(&format!("there is no step 0: 1 to {n}")));
    let bold = render(&mut app, 80, 24);
    assert!(bold[(2, 2)].modifier.contains(ratatui::style::Modifier::BOLD), "presenting is high contrast");
    press(&mut app, Action::Blank);
    let blank = draw(&mut app, 80, 24);
    assert!(!blank.contains("client") && blank.contains("b: back"), "{blank}");
    press(&mut app, Action::Blank);
    press(&mut app, Action::Present);
    assert!(draw(&mut app, 120, 40).contains(" details "), "P again: the usual layout");
}

// --- Lessons ---------------------------------------------------------------------------------

/// A key press, as the terminal sends it.
fn key(code: crossterm::event::KeyCode) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(code, crossterm::event::KeyModifiers::NONE)
}

/// The TCP lesson in its tab: the question about the SYN-ACK is open (the exchange waits),
/// typed answers go to it, → is refused until it is answered, and the grade comes from the
/// step that then crosses.
#[tokio::test]
async fn a_lesson_asks_before_the_step_and_grades_by_it() {
    use crossterm::event::KeyCode;
    let mut steps = real_steps("tcp").await;
    normalize(&mut steps);
    let syn = steps.iter().position(|s| s.kind == "tcp.syn").unwrap();
    let rest = steps.split_off(syn + 1);
    let mut app = app_on("tcp", Vec::new(), 0);
    let lesson = protolab::lesson::find("tcp").unwrap();
    app.tab_mut().lesson = Some(protolab::tui::lesson::TabLesson::new(lesson, protolab::locale::Lang::En, 1));
    // Question 1 (the first segment's flags) is open before anything crossed.
    assert!(app.tab().holding());
    assert!(app.lesson_key(key(KeyCode::Char('a'))));
    assert!(app.lesson_key(key(KeyCode::Enter)));
    let now = Instant::now();
    for s in steps {
        app.tab_mut().on_event(LabEventKind::Step(Box::new(s)), now);
    }
    app.tab_mut().revealed = app.tab().session.len();
    // The SYN crossed: question 2 asks what the SYN-ACK will acknowledge, and holds the gate.
    assert!(app.tab().holding());
    assert_eq!(app.tab_mut().step_forward().as_deref(), Some("answer the question first (Esc skips it)"));
    for c in "5000".chars() {
        assert!(app.lesson_key(key(KeyCode::Char(c))));
    }
    assert!(!app.lesson_key(key(KeyCode::Char('J'))), "J still scrolls: it is no digit");
    for (w, h) in [(80, 24), (120, 40)] {
        let screen = draw(&mut app, w, h);
        assert!(screen.contains("> 5000"), "the answer being typed at {w}x{h}:\n{screen}");
        insta::assert_snapshot!(format!("lesson_tcp_{w}x{h}"), screen);
    }
    assert!(app.lesson_key(key(KeyCode::Char('1'))));
    assert!(app.lesson_key(key(KeyCode::Enter)));
    assert!(!app.tab().holding(), "answered: the exchange may go on");
    let syn_ack = rest.iter().find(|s| s.kind == "tcp.syn-ack").unwrap().clone();
    let ack = syn_ack.number("TCP.ack").unwrap();
    app.tab_mut().on_event(LabEventKind::Step(Box::new(syn_ack)), now);
    let play = &app.tab().lesson.as_ref().unwrap().play;
    let graded = play.outcomes.iter().find(|o| o.number == 2).unwrap();
    assert_eq!(graded.expected, ack.to_string());
    assert_eq!(graded.right, Some(ack == 50001), "the normalized ISN is 5000000: 50001 is wrong");
}

/// Takes the labs' events for `ms` milliseconds.
async fn take_events(app: &mut App, rx: &mut mpsc::Receiver<LabEvent>, ms: u64) {
    let end = tokio::time::Instant::now() + Duration::from_millis(ms);
    while let Ok(Some(event)) = tokio::time::timeout_at(end, rx.recv()).await {
        app.on_lab_event(event, Instant::now());
    }
}

/// `R` runs the lab again up to the selected step: the same moment of the story (the SYN),
/// with this run's new numbers, and nothing past it; `m` points at a step apart from the
/// selection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_to_a_step_stops_at_the_same_moment_with_new_numbers() {
    let (tx, mut rx) = mpsc::channel(1024);
    let mut app = App::new(labs::registry(), None);
    app.active = app.tabs.iter().position(|t| t.lab.info().name == "tcp").unwrap();
    let i = app.active;
    app.tabs[i].start(i, Wire::Sim, tx.clone());
    take_events(&mut app, &mut rx, 300).await;
    for _ in 0..5 {
        app.act(Action::StepForward, 20, &tx, Instant::now());
        take_events(&mut app, &mut rx, 300).await;
    }
    let syn = app.tab().session.iter().position(|s| s.kind == "tcp.syn").expect("the SYN crossed");
    let old_isn = app.tab().session.get(syn).unwrap().number("TCP.seq");
    app.tab_mut().select(syn);
    app.act(Action::Point, 20, &tx, Instant::now());
    assert_eq!(app.tab().pointer, Some(app.tab().session.get(syn).unwrap().seq));
    app.tab_mut().select(0);
    let screen = render(&mut app, 100, 30);
    let row = (0..30).find(|&y| screen[(1, y)].symbol() == "»").expect("the pointer's mark");
    assert_eq!(screen[(20, row)].bg, Color::Yellow, "the pointed row is highlighted");
    app.tab_mut().select(syn);
    app.act(Action::RerunTo, 20, &tx, Instant::now());
    take_events(&mut app, &mut rx, 1500).await;
    let tab = app.tab();
    assert_eq!(
        tab.session.len(),
        syn + 1,
        "nothing past the SYN crossed: {:?}",
        tab.session.iter().map(|s| &s.kind).collect::<Vec<_>>()
    );
    let new = tab.session.get(syn).unwrap();
    assert_eq!(new.kind, "tcp.syn");
    assert_eq!(tab.cursor, syn, "the moment is selected");
    assert_ne!(new.number("TCP.seq"), old_isn, "a new run: a new ISN");
    assert!(tab.waiting.is_some(), "and the next message waits at the gate");
    app.shutdown();
}

/// pop3: the wrong password's -ERR selected (the state AUTHORIZATION in its details); at 80
/// columns the tab bar scrolls to the tenth tab.
#[tokio::test]
async fn pop3_with_a_wrong_password() {
    let mut steps = real_steps("pop3").await;
    normalize(&mut steps);
    let wrong = steps.iter().position(|s| s.kind == "pop3.err.PASS").unwrap();
    let mut app = app_on("pop3", steps, wrong);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        for text in ["10 POP3", "-ERR [AUTH] wrong password", "AUTHORIZATION"] {
            assert!(screen.contains(text), "{text} at {w}x{h}:\n{screen}");
        }
        insta::assert_snapshot!(format!("pop3_{w}x{h}"), screen);
    }
}

/// imap: the partial fetch selected (100 octets of the text, and the \Seen it set); at 80
/// columns the tab bar scrolls to the eleventh tab.
#[tokio::test]
async fn imap_with_a_partial_fetch() {
    let mut steps = real_steps("imap").await;
    normalize(&mut steps);
    let partial =
        steps.iter().position(|s| s.kind == "imap.untagged.FETCH" && s.summary.contains("BODY[TEXT]<0>")).unwrap();
    let mut app = app_on("imap", steps, partial);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = draw(&mut app, w, h);
        for text in ["11 IMAP", "BODY[TEXT]<0> {100}"] {
            assert!(screen.contains(text), "{text} at {w}x{h}:\n{screen}");
        }
        assert!(w < 200 || screen.contains("IMAP.octets"), "{screen}");
        insta::assert_snapshot!(format!("imap_{w}x{h}"), screen);
    }
}
