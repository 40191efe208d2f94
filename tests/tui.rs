//! The TUI drawn on a TestBackend at fixed sizes. The steps come from fixed bytes fed through
//! the WebSocket lab's real decoders (times made fixed), so the pictures are stable.

use protolab::labs;
use protolab::labs::ws::frame::{self, Opcode};
use protolab::net::{Dir, Recorder};
use protolab::session::{Step, StepSink};
use protolab::tui::app::{App, RunState};
use protolab::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;
use tokio::sync::mpsc;

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

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

/// The app on its WebSocket tab.
fn ws_app() -> App {
    let mut app = App::new(labs::registry(), None);
    app.active = app.tabs.iter().position(|t| t.lab.info().name == "ws").unwrap();
    app
}

fn app_with(steps: Vec<Step>, cursor: usize, field: usize) -> App {
    let mut app = ws_app();
    let tab = app.tab_mut();
    let n = steps.len();
    for s in steps {
        tab.session.push(s);
    }
    tab.revealed = n;
    tab.cursor = cursor;
    tab.field = field;
    tab.state = RunState::Running;
    app
}

fn draw(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| ui::draw(f, app, Instant::now())).unwrap();
    format!("{}", terminal.backend())
}

#[test]
fn ladder_and_details_80x24() {
    let app = app_with(ws_steps(), 1, 5);
    insta::assert_snapshot!(draw(&app, 80, 24));
}

#[test]
fn ladder_and_details_160x48() {
    let app = app_with(ws_steps(), 2, 5);
    insta::assert_snapshot!(draw(&app, 160, 48));
}

#[test]
fn malformed_step_shows_its_reason() {
    let steps = ws_steps();
    let bad = steps.iter().position(|s| s.malformed.is_some()).expect("the unmasked frame");
    let app = app_with(steps, bad, 0);
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("malformed: a client's frame must be masked"), "{screen}");
    assert!(screen.contains("!! text \"not masked\""), "{screen}");
}

#[test]
fn accept_check_is_shown_for_the_101() {
    let app = app_with(ws_steps(), 1, 0);
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("= s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{screen}");
    assert!(screen.contains("matches Sec-WebSocket-Accept"), "{screen}");
}

#[test]
fn empty_tab_invites_the_first_press() {
    let mut app = ws_app();
    app.tab_mut().waiting = Some("client".into());
    insta::assert_snapshot!(draw(&app, 80, 24));
}

#[test]
fn help_lists_every_key() {
    let mut app = app_with(ws_steps(), 0, 0);
    app.help = true;
    let screen = draw(&app, 100, 30);
    for b in protolab::tui::keys::BINDINGS.iter().filter(|b| !b.label.is_empty()) {
        assert!(screen.contains(b.help), "help lacks {:?}", b.help);
    }
}

#[test]
fn too_small_terminal_says_so() {
    let app = app_with(ws_steps(), 0, 0);
    let screen = draw(&app, 40, 10);
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
    app.tab_mut().scroll_to_cursor(ui::layout(ratatui::layout::Rect::new(0, 0, 80, 24)).ladder_rows());
    let screen = draw(&app, 80, 24);
    assert!(screen.contains(&format!("step {n}/{n}")), "{screen}");
    assert!(screen.contains("FIN"), "the last step is in view: {screen}");
}

#[tokio::test]
async fn the_layer_toggle_shows_messages_segments_or_both() {
    use protolab::labs::run;
    use protolab::tui::keys::Action;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let lab = labs::find("smtp").unwrap();
    run::exchange(lab, run::RunOptions::free(protolab::net::Wire::Sim), StepSink::new("smtp", tx)).await.unwrap();
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    let mut app = App::new(labs::registry(), None);
    app.active = app.tabs.iter().position(|t| t.lab.info().name == "smtp").unwrap();
    let n = steps.len();
    let tab = app.tab_mut();
    for s in steps {
        tab.session.push(s);
    }
    tab.revealed = n;
    tab.cursor = 0;
    let (events, _) = mpsc::unbounded_channel();
    let rows = ui::layout(ratatui::layout::Rect::new(0, 0, 160, 48)).ladder_rows();

    let both = draw(&app, 160, 48);
    assert!(both.contains("SYN seq=") && both.contains("EHLO client.lab"), "{both}");

    app.act(Action::ToggleLayers, rows, &events, Instant::now());
    let messages = draw(&app, 160, 48);
    assert!(messages.contains("messages only"));
    assert!(!messages.contains("SYN seq=") && messages.contains("EHLO client.lab"), "{messages}");
    assert!(!app.tab().selected().unwrap().frame, "the cursor moved to a message");

    app.act(Action::ToggleLayers, rows, &events, Instant::now());
    let segments = draw(&app, 160, 48);
    assert!(segments.contains("SYN seq=") && !segments.contains("EHLO client.lab  "), "{segments}");
    // Moving forward walks the segments only.
    app.act(Action::StepForward, rows, &events, Instant::now());
    assert!(app.tab().selected().unwrap().frame);
}

#[tokio::test]
async fn the_dhcp_timeline_places_each_step_on_the_lease() {
    use protolab::labs::run;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let lab = labs::find("dhcp").unwrap();
    run::exchange(lab, run::RunOptions::free(protolab::net::Wire::Sim), StepSink::new("dhcp", tx)).await.unwrap();
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    let mut app = App::new(labs::registry(), None);
    app.active = app.tabs.iter().position(|t| t.lab.info().name == "dhcp").unwrap();
    let renew = steps.iter().position(|s| s.kind == "dhcp.request.renew").unwrap();
    let rebind = steps.iter().position(|s| s.kind == "dhcp.request.rebind").unwrap();
    let n = steps.len();
    let tab = app.tab_mut();
    for s in steps {
        tab.session.push(s);
    }
    tab.revealed = n;

    app.tab_mut().cursor = 3;
    let at_ack = draw(&app, 120, 40);
    assert!(at_ack.contains("lease of 192.0.2.10 from #4: 120 s"), "{at_ack}");
    assert!(at_ack.contains("0.0 s into the lease, bound"), "{at_ack}");

    app.tab_mut().cursor = renew;
    let at_t1 = draw(&app, 120, 40);
    assert!(at_t1.contains("s into the lease, renewing"), "{at_t1}");

    app.tab_mut().cursor = rebind;
    let at_t2 = draw(&app, 120, 40);
    assert!(at_t2.contains("s into the lease, rebinding"), "{at_t2}");
    assert!(at_t2.contains("T1 60") && at_t2.contains("T2 105"), "{at_t2}");
}

#[test]
fn positions_follow_when_a_full_session_drops_its_oldest_steps() {
    use protolab::session::Session;
    use protolab::tui::app::{LabEvent, LabEventKind};
    let mut app = ws_app();
    let tab_index = app.active;
    app.tab_mut().session = Session::with_bounds(5, usize::MAX);
    let run = app.tab().run;
    let mut now = Instant::now();
    for step in ws_steps().into_iter().chain(ws_steps()).take(12) {
        app.on_lab_event(LabEvent { tab: tab_index, run, kind: LabEventKind::Step(Box::new(step)) }, now);
        // Let each arrow land.
        now += std::time::Duration::from_secs(2);
        app.tick(now);
    }
    let tab = app.tab();
    assert_eq!(tab.session.len(), 5);
    assert!(tab.revealed <= tab.session.len() && tab.cursor < tab.session.len());
    let selected = tab.selected().expect("a step is selected");
    assert_eq!(selected.seq, tab.session.get(tab.session.len() - 1).unwrap().seq, "the newest, as before the drops");
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("step 5/5"), "{screen}");
}
