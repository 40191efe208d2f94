//! The embedded SMTP server against outside clients: Python's smtplib, raw sockets, a client that
//! vanishes mid-message and one that says nothing.

use protolab::labs::Lab;
use protolab::labs::run::serve;
use protolab::labs::smtp::{Config, Smtp};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;
use common::{LIMIT, reply, say};

#[tokio::test]
async fn smtplib_and_a_raw_socket_against_serve() {
    let smtp = Arc::new(Smtp::default());
    let lab: Arc<dyn Lab> = smtp.clone();
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(serve(lab, listener, Some(2), StepSink::new("smtp", tx)));

    // Session 1: Python's smtplib.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_send.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LIMIT, run).await.expect("smtplib finished in time").expect("python3 runs");
    assert!(
        out.status.success(),
        "smtplib failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Session 2: garbage, an over-long line, then a polite QUIT.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(reply(&mut s, &mut buf).await.code.0, 220);
    let r = say(&mut s, &mut buf, b"GARBAGE\r\n").await;
    assert!(r.to_string().starts_with("500"), "{r}");
    let long = format!("NOOP {}\r\n", "x".repeat(2000));
    assert_eq!(say(&mut s, &mut buf, long.as_bytes()).await.code.0, 500);
    assert_eq!(say(&mut s, &mut buf, b"NOOP\r\n").await.code.0, 250, "the session goes on");
    assert_eq!(say(&mut s, &mut buf, b"QUIT\r\n").await.code.0, 221);
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut rest)).await.expect("the server closes").unwrap();
    assert!(rest.is_empty());
    drop(s);

    tokio::time::timeout(LIMIT, server).await.expect("serve ends after two sessions").unwrap().unwrap();
    let mut steps: Vec<Step> = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }

    // smtplib's message is in the mailbox, dot-stuffing undone.
    let mail = smtp.mailbox().latest().expect("smtplib's message arrived");
    assert_eq!(mail.header("Subject").as_deref(), Some("Hi from smtplib"));
    assert_eq!(mail.client_domain, "python.lab");
    assert!(mail.content.windows(7).any(|w| w == b"\r\n.This"));
    assert_eq!(smtp.mailbox().len(), 1, "the relay attempt delivered nothing");

    // Both directions of the outside session were recorded.
    let one: Vec<&Step> = steps.iter().filter(|s| s.session == 1).collect();
    let kinds: Vec<&str> = one.iter().map(|s| s.kind.as_str()).collect();
    for kind in ["smtp.reply.220", "smtp.command.EHLO", "smtp.command.MAIL", "smtp.reply.354.DATA", "smtp.data"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert!(kinds.contains(&"smtp.reply.550.RCPT"), "the refused relay: {kinds:?}");
    let data = one.iter().find(|s| s.kind == "smtp.data").unwrap();
    assert_eq!(data.value("SMTP.header.Subject").as_deref(), Some("Hi from smtplib"));
    assert!(data.malformed.is_none());
    let ehlo = one.iter().find(|s| s.kind == "smtp.command.EHLO").unwrap();
    assert_eq!(ehlo.value("SMTP.domain").as_deref(), Some("python.lab"));

    let two: Vec<&Step> = steps.iter().filter(|s| s.session == 2).collect();
    let garbage = two.iter().find(|s| s.summary == "GARBAGE").expect("a step for GARBAGE");
    assert_eq!(garbage.malformed.as_deref(), Some("unknown command \"GARBAGE\""));
    assert_eq!(garbage.kind, "smtp.command.unknown");
    assert!(two.iter().any(|s| s.kind == "smtp.reply.500"));
    assert!(two.iter().any(|s| s.malformed.as_deref().is_some_and(|m| m.contains("over the limit of 512"))));
    let mut last: Vec<&str> = two.iter().rev().take(2).map(|s| s.kind.as_str()).collect();
    last.sort();
    assert_eq!(last, ["socket.close.first", "socket.close.second"], "both sides closed");
}

/// Accepts one connection and serves it with `smtp`; returns the client socket and the server task.
async fn one_session(smtp: &Smtp) -> (TcpStream, tokio::task::JoinHandle<color_eyre::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (s, peer) = listener.accept().await.unwrap();
    (client, tokio::spawn(smtp.serve(Box::new(s), peer)))
}

#[tokio::test]
async fn a_client_vanishing_mid_data_ends_the_server_with_an_error() {
    let smtp = Smtp::default();
    let (mut s, server) = one_session(&smtp).await;
    let mut buf = Vec::new();
    assert_eq!(reply(&mut s, &mut buf).await.code.0, 220);
    assert_eq!(say(&mut s, &mut buf, b"EHLO gone.lab\r\n").await.lines.len(), 6);
    assert_eq!(say(&mut s, &mut buf, b"MAIL FROM:<a@gone.lab>\r\n").await.code.0, 250);
    assert_eq!(say(&mut s, &mut buf, b"RCPT TO:<bob@protolab.test>\r\n").await.code.0, 250);
    assert_eq!(say(&mut s, &mut buf, b"DATA\r\n").await.code.0, 354);
    s.write_all(b"Subject: half\r\n\r\nthen noth").await.unwrap();
    drop(s);
    let result = tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server did not hang").unwrap();
    let err = result.expect_err("a vanished client is an error").to_string();
    assert!(err.contains("without QUIT") && err.contains("DATA"), "{err}");
    assert!(!err.contains('\n'));
    assert!(smtp.mailbox().is_empty());
}

#[tokio::test]
async fn an_idle_client_is_told_421_and_dropped() {
    let smtp = Smtp::with_config(Config { idle_timeout: Duration::from_millis(300), ..Config::default() });
    let (mut s, server) = one_session(&smtp).await;
    let mut buf = Vec::new();
    assert_eq!(reply(&mut s, &mut buf).await.code.0, 220);
    let bye = reply(&mut s, &mut buf).await;
    assert_eq!(bye.code.0, 421, "{bye}");
    let result = tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server did not hang").unwrap();
    let err = result.expect_err("idling is an error").to_string();
    assert!(err.contains("421"), "{err}");
}
