//! Hostile and careless clients against `serve smtp`: after each, the server still serves a
//! normal client, and the steps show exactly what the server did.

mod common;

use common::{LIMIT, reply, say};
use protolab::labs::Lab;
use protolab::labs::run::{ServeOptions, serve_with};
use protolab::labs::smtp::Smtp;
use protolab::net::Wire;
use protolab::net::limits::Limits;
use protolab::session::{Step, StepSink};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The SMTP lab's server for `sessions` outside clients: its address, its lab (for the
/// mailbox) and its steps.
async fn serving(sessions: u32) -> (SocketAddr, Arc<Smtp>, mpsc::UnboundedReceiver<Step>) {
    serving_with(sessions, ServeOptions::default()).await
}

async fn serving_with(sessions: u32, opts: ServeOptions) -> (SocketAddr, Arc<Smtp>, mpsc::UnboundedReceiver<Step>) {
    let smtp = Arc::new(Smtp::default());
    let lab: Arc<dyn Lab> = smtp.clone();
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(serve_with(lab, listener, Some(sessions), StepSink::new("smtp", tx), opts));
    (addr, smtp, rx)
}

/// Connects and reads the greeting; the socket and its read buffer.
async fn greeted(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(reply(&mut s, &mut buf).await.code.0, 220);
    (s, buf)
}

/// Connects and opens a transaction up to the 354 that asks for the text.
async fn in_data(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let (mut s, mut buf) = greeted(addr).await;
    for (line, code) in [
        (&b"EHLO client.lab\r\n"[..], 250),
        (b"MAIL FROM:<a@client.lab>\r\n", 250),
        (b"RCPT TO:<bob@protolab.test>\r\n", 250),
        (b"DATA\r\n", 354),
    ] {
        assert_eq!(say(&mut s, &mut buf, line).await.code.0, code, "{}", String::from_utf8_lossy(line));
    }
    (s, buf)
}

/// Reads until the server closes the connection (or `LIMIT`): what came, and how long it took.
async fn until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        match tokio::time::timeout(LIMIT, s.read(&mut chunk)).await.expect("the server closes in time") {
            Ok(0) | Err(_) => return (all, start.elapsed()),
            Ok(n) => all.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A well-behaved client that sends one message; the server's final reply code.
async fn send_one(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(reply(&mut s, &mut buf).await.code.0, 220);
    for (line, code) in [
        (&b"EHLO normal.lab\r\n"[..], 250),
        (b"MAIL FROM:<a@normal.lab>\r\n", 250),
        (b"RCPT TO:<bob@protolab.test>\r\n", 250),
        (b"DATA\r\n", 354),
    ] {
        assert_eq!(say(&mut s, &mut buf, line).await.code.0, code, "{}", String::from_utf8_lossy(line));
    }
    let code = say(&mut s, &mut buf, b"Subject: normal\r\n\r\nhello\r\n.\r\n").await.code.0;
    let _ = say(&mut s, &mut buf, b"QUIT\r\n").await;
    code
}

/// RFC 5321 §4.1.1.4: only CR LF . CR LF ends DATA. A bare LF before the dot must not end it,
/// or what follows runs as commands of a second, forged message (SMTP smuggling).
#[tokio::test]
async fn smuggling_after_a_bare_lf_is_text_refused_whole() {
    let (addr, smtp, mut steps) = serving(2).await;
    let (mut s, mut buf) = in_data(addr).await;
    let payload = b"Subject: first\r\n\r\nhello\n.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<bob@protolab.test>\r\nDATA\r\nSubject: forged\r\n\r\npay now\r\n.\r\n";
    s.write_all(payload).await.unwrap();
    let answer = reply(&mut s, &mut buf).await;
    assert_eq!(answer.code.0, 554, "one answer, for the whole text: {answer}");
    assert_eq!(say(&mut s, &mut buf, b"QUIT\r\n").await.code.0, 221, "no smuggled command answered first");
    drop(s);
    assert!(smtp.mailbox().is_empty(), "nothing queued, forged or not");

    // The steps show exactly that: one text, refused; no MAIL after DATA.
    assert_eq!(send_one(addr).await, 250, "a normal client is served after it");
    let mut one = Vec::new();
    while let Ok(Some(step)) = tokio::time::timeout(LIMIT, steps.recv()).await {
        if step.session == 1 {
            one.push(step);
        }
        if one.last().is_some_and(|s: &Step| s.kind.starts_with("socket.close.second")) {
            break;
        }
    }
    let kinds: Vec<&str> = one.iter().map(|s| s.kind.as_str()).collect();
    let data = kinds.iter().position(|k| *k == "smtp.command.DATA").unwrap();
    assert_eq!(&kinds[data + 1..data + 4], ["smtp.reply.354.DATA", "smtp.data", "smtp.reply.554.text"], "{kinds:?}");
    assert_eq!(one[data + 2].len, payload.len(), "the whole payload is one text");
    assert!(!kinds[data..].contains(&"smtp.command.MAIL"), "{kinds:?}");
    assert_eq!(smtp.mailbox().len(), 1, "the normal client's message only");
}

/// Past the connection limit, a client is greeted with 421 and closed at once, and that is in
/// the steps: nobody waits unseen. Once a slot is free, a normal client is served.
#[tokio::test]
async fn the_client_past_the_limit_gets_421_and_is_closed() {
    let opts = ServeOptions { max_connections: 2, ..ServeOptions::default() };
    let (addr, _smtp, mut steps) = serving_with(4, opts).await;
    let silent = [greeted(addr).await, greeted(addr).await];
    let mut third = TcpStream::connect(addr).await.unwrap();
    let (said, _) = until_closed(&mut third).await;
    let said = String::from_utf8_lossy(&said);
    assert!(said.starts_with("421 ") && said.contains("too many connections"), "{said}");
    drop(silent);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(send_one(addr).await, 250);
    let mut third_steps = Vec::new();
    while let Ok(Some(step)) = tokio::time::timeout(Duration::from_secs(2), steps.recv()).await {
        if step.session == 3 {
            third_steps.push(step.kind);
        }
    }
    assert!(third_steps.iter().any(|k| k.starts_with("smtp.reply.421")), "{third_steps:?}");
}

/// A burst of clients, more than the 128 connections std and tokio let the kernel hold for a
/// listener: every handshake completes at once, before the server accepts any, so none waits
/// a SYN retransmission (1 s, then 3 s). Then a normal client is served.
#[tokio::test]
async fn a_burst_of_200_clients_gets_through_the_handshake_at_once() {
    let (addr, _smtp, _steps) = serving(201).await;
    // Blocking connects: the test holds the runtime's only thread, so the server accepts
    // nothing meanwhile and the kernel alone holds them.
    let burst: Vec<_> = (0..200)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .unwrap_or_else(|e| panic!("client {i} waits on the handshake: {e}"))
        })
        .collect();
    drop(burst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(send_one(addr).await, 250);
}

/// A client that pipelines commands and never reads the replies: the server's writes stall,
/// and the session ends after the write limit instead of holding its slot forever.
#[tokio::test]
async fn a_client_that_never_reads_loses_its_session() {
    let limits = Limits { write_stall: Duration::from_secs(1), ..Limits::default() };
    let opts = ServeOptions { max_connections: 1, limits };
    let (addr, _smtp, mut steps) = serving_with(2, opts).await;
    // A small window, as a client that stopped reading soon shows: the server's replies pile up.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let writer = tokio::spawn(async move {
        let noops = b"EHLO never.reads\r\n".repeat(1024);
        let start = Instant::now();
        while s.write_all(&noops).await.is_ok() && start.elapsed() < LIMIT {}
        start.elapsed()
    });
    let took = tokio::time::timeout(LIMIT, writer).await.expect("the server gave up in time").unwrap();
    assert!(took < Duration::from_secs(20), "the session ended after {took:?}");
    assert_eq!(send_one(addr).await, 250, "its slot is free again");
    assert_eq!(ending(&mut steps), ["server socket.limit", "server socket.close.first"]);
}

/// How the first session ended, as its steps say: who did what on the socket.
fn ending(steps: &mut mpsc::UnboundedReceiver<Step>) -> Vec<String> {
    std::iter::from_fn(|| steps.try_recv().ok())
        .filter(|s| s.session == 1 && s.kind.starts_with("socket."))
        .map(|s| format!("{} {}", s.from, s.kind))
        .collect()
}

/// A byte every 50 ms keeps any idle timer happy; the session's whole length is capped.
#[tokio::test]
async fn a_slowloris_client_is_cut_at_the_session_limit() {
    let limits = Limits { session: Duration::from_secs(1), ..Limits::default() };
    let opts = ServeOptions { max_connections: 1, limits };
    let (addr, _smtp, mut steps) = serving_with(2, opts).await;
    let (mut s, _) = greeted(addr).await;
    let start = Instant::now();
    for b in b"EHLO slow.lab".iter().cycle() {
        if s.write_all(&[*b]).await.is_err() || start.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut peek = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), s.peek(&mut peek)).await {
            break;
        }
    }
    let lasted = start.elapsed();
    assert!(lasted < Duration::from_secs(10), "served for {lasted:?}");
    assert_eq!(send_one(addr).await, 250);
    assert_eq!(ending(&mut steps), ["server socket.limit", "server socket.close.first"]);
}

/// What passed before, kept passing: an over-long line, binary garbage, a NUL in an address, a
/// 12 MiB message, a client that half-closes mid-DATA; after each, a normal client is served.
#[tokio::test]
async fn old_abuse_still_gets_the_protocols_answers() {
    let (addr, smtp, _steps) = serving(6).await;
    let (mut s, mut buf) = greeted(addr).await;
    let long = [b"EHLO ".as_slice(), &vec![b'x'; 2000], b"\r\n"].concat();
    assert_eq!(say(&mut s, &mut buf, &long).await.code.0, 500);
    assert_eq!(say(&mut s, &mut buf, b"\x00\xff\xfe garbage\r\n").await.code.0, 500);
    assert_eq!(say(&mut s, &mut buf, b"EHLO x\r\n").await.code.0, 250);
    assert_eq!(say(&mut s, &mut buf, b"MAIL FROM:<a\x00@b.c>\r\n").await.code.0, 501);
    drop(s);

    // 12 MiB of text: read to its end, then refused as too big; nothing kept.
    let (mut s, mut buf) = in_data(addr).await;
    let line = [vec![b'a'; 998], b"\r\n".to_vec()].concat();
    let chunk = line.repeat(1024);
    for _ in 0..12 {
        s.write_all(&chunk).await.unwrap();
    }
    assert_eq!(say(&mut s, &mut buf, b".\r\n").await.code.0, 552);
    drop(s);

    // Half-close in the middle of the text: the session ends, nothing is queued.
    let (mut s, _) = in_data(addr).await;
    s.write_all(b"Subject: cut\r\n\r\nhalf a mess").await.unwrap();
    s.shutdown().await.unwrap();
    until_closed(&mut s).await;
    assert!(smtp.mailbox().is_empty());
    assert_eq!(send_one(addr).await, 250);
    assert_eq!(smtp.mailbox().len(), 1);
}
