//! Hostile and careless clients against `serve smtp`: after each, the server still serves a
//! normal client, and the steps show exactly what the server did.

mod common;

use common::{LIMIT, reply, say};
use protolab::labs::Lab;
use protolab::labs::run::serve;
use protolab::labs::smtp::Smtp;
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The SMTP lab's server for `sessions` outside clients: its address, its lab (for the
/// mailbox) and its steps.
async fn serving(sessions: u32) -> (SocketAddr, Arc<Smtp>, mpsc::UnboundedReceiver<Step>) {
    let smtp = Arc::new(Smtp::default());
    let lab: Arc<dyn Lab> = smtp.clone();
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(serve(lab, listener, Some(sessions), StepSink::new("smtp", tx)));
    (addr, smtp, rx)
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
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    reply(&mut s, &mut buf).await;
    for line in [&b"EHLO evil.lab\r\n"[..], b"MAIL FROM:<a@evil.lab>\r\n", b"RCPT TO:<bob@protolab.test>\r\n"] {
        say(&mut s, &mut buf, line).await;
    }
    assert_eq!(say(&mut s, &mut buf, b"DATA\r\n").await.code.0, 354);
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
