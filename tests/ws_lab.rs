//! The WebSocket lab end to end over real loopback sockets.

use protolab::labs::run::{self, RunOptions};
use protolab::labs::ws::frame::{self, Opcode};
use protolab::labs::{self, Lab};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(20);

async fn run_ws() -> Vec<Step> {
    let lab = labs::find("ws").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = RunOptions::free(Wire::Host);
    tokio::time::timeout(LIMIT, run::exchange(lab, opts, StepSink::new("ws", tx))).await.unwrap().unwrap();
    let mut steps = Vec::new();
    while let Some(s) = rx.recv().await {
        steps.push(s);
    }
    // The socket API's view of the handshake comes first; the messages follow.
    assert_eq!(steps[0].kind, "socket.connect", "{:?}", steps[0]);
    steps.remove(0);
    steps
}

#[tokio::test]
async fn upgrade_echo_ping_close_in_order() {
    let steps = run_ws().await;
    let kinds: Vec<_> = steps.iter().map(|s| (s.from.as_str(), s.kind.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("client", "ws.handshake.request"),
            ("server", "ws.handshake.response"),
            ("client", "ws.frame.text.masked"),
            ("server", "ws.frame.text"),
            ("client", "ws.frame.binary.masked"),
            ("server", "ws.frame.binary"),
            ("client", "ws.frame.ping.masked"),
            ("server", "ws.frame.pong"),
            ("client", "ws.frame.close.masked"),
            ("server", "ws.frame.close"),
            ("server", "socket.close.first"),
            ("client", "socket.close.second"),
        ]
    );
    assert!(steps.iter().all(|s| s.malformed.is_none()), "{steps:#?}");
    let seqs: Vec<u64> = steps.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (2..=steps.len() as u64 + 1).collect::<Vec<_>>());
    assert!(steps.windows(2).all(|w| w[0].t_us <= w[1].t_us));

    // Each end's WebSocket state (RFC 6455): connecting until the 101, open, closing from the
    // first close frame.
    let states: Vec<_> = steps.iter().map(|s| (s.state("client"), s.state("server"))).collect();
    assert_eq!(states[0], (Some("CONNECTING"), Some("CONNECTING")));
    assert!(states[1..8].iter().all(|s| *s == (Some("OPEN"), Some("OPEN"))), "{states:?}");
    assert_eq!(states[8..10], [(Some("CLOSING"), Some("CLOSING")); 2]);

    // The accept value is derived from the key that really went out.
    let key = steps[0].value("HTTP.header.Sec-WebSocket-Key").unwrap();
    let accept = steps[1].value("HTTP.header.Sec-WebSocket-Accept").unwrap();
    assert_eq!(accept, frame::accept_key(&key));
    assert_eq!(steps[1].value("HTTP.status").as_deref(), Some("101"));

    // Client frames are masked, server frames are not; the payload decodes.
    assert_eq!(steps[2].value("WebSocket.masked").as_deref(), Some("true"));
    assert!(steps[2].field("WebSocket.masking_key").is_some());
    assert_eq!(steps[3].value("WebSocket.masked").as_deref(), Some("false"));
    assert_eq!(steps[2].value("WebSocket.payload"), steps[3].value("WebSocket.payload"));
    assert_eq!(steps[4].value("WebSocket.payload_len").as_deref(), Some("300"));
    assert_eq!(steps[4].bytes[1] & 0x7f, 126, "300 bytes take the 16-bit length form");
    assert_eq!(steps[8].value("WebSocket.close_code").as_deref(), Some("1000"));
    assert_eq!(steps[9].value("WebSocket.opcode").as_deref(), Some("close"));

    // Byte ranges point at the bytes they describe.
    for s in &steps {
        for f in &s.fields {
            assert!(f.range[0] <= f.range[1] && f.range[1] <= s.bytes.len(), "{} in {}", f.path, s.summary);
        }
        assert_eq!(s.len, s.bytes.len());
    }
}

#[tokio::test]
async fn key_differs_between_runs() {
    let a = run_ws().await;
    let b = run_ws().await;
    let key = |s: &[Step]| s[0].value("HTTP.header.Sec-WebSocket-Key").unwrap();
    assert_ne!(key(&a), key(&b));
}

/// Starts the embedded server for outside clients; returns its address and its steps.
async fn serve_ws() -> (String, mpsc::UnboundedReceiver<Step>, tokio::task::JoinHandle<()>) {
    let lab: std::sync::Arc<dyn Lab> = labs::find("ws").unwrap();
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        run::serve(lab, listener, Some(1), StepSink::new("ws", tx)).await.unwrap();
    });
    (addr, rx, task)
}

const UPGRADE: &str = "GET /lab HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut out)).await.unwrap().unwrap();
    out
}

#[tokio::test]
async fn broken_frame_gets_close_1002_and_a_malformed_step() {
    let (addr, mut steps, task) = serve_ws().await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(UPGRADE.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 129];
    s.read_exact(&mut head).await.unwrap();
    assert!(head.starts_with(b"HTTP/1.1 101"));
    assert!(String::from_utf8_lossy(&head).contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "RFC 6455's example key");
    // A client frame without a mask breaks §5.1.
    s.write_all(&frame::emit(true, Opcode::Text, None, b"unmasked")).await.unwrap();
    let rest = read_to_end(&mut s).await;
    let close = frame::Head::check(&rest).unwrap();
    assert_eq!(close.opcode, Opcode::Close);
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 1002);
    drop(s);
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    let mut all = Vec::new();
    while let Some(step) = steps.recv().await {
        all.push(step);
    }
    let bad = all.iter().find(|s| s.from == "client" && s.malformed.is_some()).expect("a malformed client step");
    assert!(bad.malformed.as_ref().unwrap().contains("masked"), "{bad:?}");
    assert!(all.iter().any(|s| s.value("WebSocket.close_code").as_deref() == Some("1002")));
}

#[tokio::test]
async fn garbage_instead_of_upgrade_gets_400() {
    let (addr, mut steps, task) = serve_ws().await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"HELLO THERE\r\n\r\n").await.unwrap();
    let answer = read_to_end(&mut s).await;
    assert!(answer.starts_with(b"HTTP/1.1 400 Bad Request"), "{}", String::from_utf8_lossy(&answer));
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    let first = steps.recv().await.unwrap();
    assert!(first.malformed.is_some(), "{first:?}");
}

#[tokio::test]
async fn vanishing_client_ends_the_session_without_hanging() {
    let (addr, mut steps, task) = serve_ws().await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(&UPGRADE.as_bytes()[..40]).await.unwrap();
    drop(s);
    tokio::time::timeout(LIMIT, task).await.expect("serve ends").unwrap();
    let mut all = Vec::new();
    while let Some(step) = steps.recv().await {
        all.push(step);
    }
    assert!(
        all.iter().any(|s| s.malformed.as_deref() == Some("the connection closed in the middle of a message")),
        "{all:#?}"
    );
}

#[tokio::test]
async fn serve_goes_on_after_a_bad_session() {
    let lab: std::sync::Arc<dyn Lab> = labs::find("ws").unwrap();
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(run::serve(lab.clone(), listener, Some(2), StepSink::new("ws", tx)));
    // Session 1 sends garbage; session 2 is our whole lab client.
    let mut bad = TcpStream::connect(&addr).await.unwrap();
    bad.write_all(b"\x00\x01\x02 garbage\r\n\r\n").await.unwrap();
    assert!(read_to_end(&mut bad).await.starts_with(b"HTTP/1.1 400"));
    let (ctx, _crx) = mpsc::unbounded_channel();
    let opts = RunOptions { connect: Some(addr), ..RunOptions::free(Wire::Host) };
    tokio::time::timeout(LIMIT, run::exchange(lab, opts, StepSink::new("ws", ctx))).await.unwrap().unwrap();
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
    let mut sessions = std::collections::BTreeMap::<u32, Vec<Step>>::new();
    while let Some(s) = rx.recv().await {
        sessions.entry(s.session).or_default().push(s);
    }
    assert!(sessions[&1][0].malformed.is_some());
    assert_eq!(sessions[&2].len(), 12, "the good session is whole");
    assert!(sessions[&2].iter().all(|s| s.malformed.is_none()));
}

/// (Every step's narration is checked by the walk in tests/narration.rs.)
#[tokio::test]
async fn the_narration_quotes_this_runs_key() {
    let lab = labs::find("ws").unwrap();
    let narration = protolab::narration::Narration::for_lab(protolab::locale::Lang::En, lab.as_ref());
    let steps = run_ws().await;
    let key = steps[0].value("HTTP.header.Sec-WebSocket-Key").unwrap();
    assert!(
        narration.explain(&steps[0], protolab::net::Wire::Host).contains(&key),
        "the narration quotes this run's key"
    );
}

/// A server whose 101 carries the wrong Sec-WebSocket-Accept: the client fails the connection
/// (RFC 6455 §4.1), so the step is malformed and the client's state CLOSED, while the server,
/// which sent it, thinks the connection OPEN.
#[tokio::test]
async fn a_wrong_accept_fails_the_connection_on_the_clients_side() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if s.read(&mut b).await.unwrap() == 0 {
                return;
            }
            head.push(b[0]);
        }
        let wrong = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        s.write_all(wrong.as_bytes()).await.unwrap();
        let _ = read_to_end(&mut s).await;
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = RunOptions { connect: Some(addr), ..RunOptions::free(Wire::Host) };
    let result = tokio::time::timeout(LIMIT, run::exchange(labs::find("ws").unwrap(), opts, StepSink::new("ws", tx)))
        .await
        .unwrap();
    assert!(result.is_err(), "the run ends with the reason");
    let steps: Vec<Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let response = steps.iter().find(|s| s.kind == "ws.handshake.response").expect("the 101 is a step");
    assert!(response.malformed.as_deref().is_some_and(|m| m.contains("Accept")), "{response:?}");
    assert_eq!(response.state("client"), Some("CLOSED"), "{response:?}");
    assert_eq!(response.state("server"), Some("OPEN"), "{response:?}");
    server.abort();
}
