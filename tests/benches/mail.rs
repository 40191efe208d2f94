//! What recording costs in the mail labs. TLS: 64 MiB of WebSocket frames (1 MiB each) inside
//! TLS 1.3 over loopback, from our rustls client to our rustls server, plain and through a
//! TapStream whose recorder names every record, opens it with the logged secrets and decodes the
//! frames inside. IMAP: `FETCH 1:* (BODY[])` of 10 000 small messages from the lab's server,
//! read plain and through a tap that makes a step of every response. The ratio script wants
//! the tapped TLS transfer at 0.8x or better, and the tapped FETCH at 0.5x or better.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protolab::labs::smtp::{Mail, Mailbox};
use protolab::labs::ws::frame::{self, Opcode};
use protolab::net::{Dir, Gate, Recorder, Stream, TapStream};
use protolab::session::StepSink;
use protolab::wire::tls::Switch;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const TLS_TOTAL: usize = 64 * 1024 * 1024;
const FRAME: usize = 1024 * 1024;
const MESSAGES: usize = 10_000;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// Steps go here and are counted, as a reader that keeps up would.
fn sink() -> (StepSink, tokio::task::JoinHandle<usize>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<protolab::session::Step>();
    let drain = tokio::spawn(async move {
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    (StepSink::new("bench", tx), drain)
}

/// A TLS server that answers the WebSocket upgrade, then reads everything and counts it.
async fn tls_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut s = protolab::tls::accept(Box::new(s)).await.unwrap();
        let mut request = vec![0u8; REQUEST.len()];
        s.read_exact(&mut request).await.unwrap();
        s.write_all(RESPONSE).await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return n,
                Ok(k) => n += k,
            }
        }
    });
    (addr, reader)
}

async fn send_tls(io: Stream, frame: &[u8]) {
    let name = protolab::tls::server_name("", true).unwrap();
    let mut tls = protolab::tls::connect(io, name, None).await.unwrap();
    tls.write_all(REQUEST).await.unwrap();
    let mut response = vec![0u8; RESPONSE.len()];
    tls.read_exact(&mut response).await.unwrap();
    for _ in 0..TLS_TOTAL / FRAME {
        tls.write_all(frame).await.unwrap();
    }
    tls.shutdown().await.unwrap();
}

fn tls(c: &mut Criterion) {
    protolab::tls::set_ca_dir(std::env::temp_dir().join("protolab-bench-ca"));
    let rt = Runtime::new().unwrap();
    let frame = frame::emit(true, Opcode::Binary, Some([1, 2, 3, 4]), &vec![0x5a; FRAME]);
    let mut group = c.benchmark_group("tls_loopback_64MiB");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Bytes(TLS_TOTAL as u64));
    group.bench_function("untapped", |b| {
        b.to_async(&rt).iter(|| async {
            let (addr, reader) = tls_server().await;
            send_tls(Box::new(TcpStream::connect(addr).await.unwrap()), &frame).await;
            assert!(reader.await.unwrap() >= TLS_TOTAL);
        })
    });
    group.bench_function("tapped", |b| {
        b.to_async(&rt).iter(|| async {
            let (addr, reader) = tls_server().await;
            let (sink, drain) = sink();
            // WebSocket frames inside TLS records: the ws lab's decoders after its upgrade.
            let ws = protolab::labs::find("ws").unwrap().decoders(false);
            let decoders = protolab::wire::tls::decoders(ws, Switch::on(), protolab::tls::secrets());
            let rec = Recorder::new(sink, ["client", "server"], decoders);
            let s = TcpStream::connect(addr).await.unwrap();
            let tapped = TapStream::new(s, rec.clone(), Dir::ClientToServer, true, Gate::free());
            send_tls(Box::new(tapped), &frame).await;
            assert!(reader.await.unwrap() >= TLS_TOTAL);
            drop(rec);
            assert!(drain.await.unwrap() > TLS_TOTAL / (16 * 1024), "a step per record at least");
        })
    });
    group.finish();
}

/// The lab's IMAP server on loopback, bob's INBOX holding `MESSAGES` small messages.
async fn imap_server(mailbox: Mailbox) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let _ = protolab::labs::imap::server::serve(
            Box::new(s),
            mailbox,
            Duration::from_secs(60),
            protolab::tls::Mode::Plain,
        )
        .await;
    });
    addr
}

fn filled() -> Mailbox {
    let mailbox = Mailbox::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let content = format!(
            "From: alice@client.lab\r\nTo: bob@protolab.test\r\nSubject: message {i}\r\nMessage-ID: <{i}@client.lab>\r\n\r\nhello {i}\r\n"
        );
        mailbox.deliver(Mail {
            id: mailbox.next_id(),
            reverse_path: "alice@client.lab".into(),
            forward_paths: vec!["bob@protolab.test".into()],
            client_domain: "client.lab".into(),
            peer: "127.0.0.1:1".parse().unwrap(),
            received: SystemTime::UNIX_EPOCH,
            content: content.into_bytes(),
        });
    }
    mailbox
}

const SCRIPT: &[u8] = b"a1 LOGIN bob lab\r\na2 SELECT INBOX\r\na3 FETCH 1:* (BODY.PEEK[])\r\na4 LOGOUT\r\n";

async fn fetch_all(mut io: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin) -> usize {
    io.write_all(SCRIPT).await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0;
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return n,
            Ok(k) => n += k,
        }
    }
}

fn imap(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mailbox = filled();
    let mut group = c.benchmark_group("imap_fetch_10k");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("untapped", |b| {
        b.to_async(&rt).iter(|| async {
            let addr = imap_server(mailbox.clone()).await;
            let got = fetch_all(TcpStream::connect(addr).await.unwrap()).await;
            assert!(got > MESSAGES * 100, "{got} bytes");
        })
    });
    group.bench_function("tapped", |b| {
        b.to_async(&rt).iter(|| async {
            let addr = imap_server(mailbox.clone()).await;
            let (sink, drain) = sink();
            let rec = Recorder::new(sink, ["client", "server"], protolab::labs::imap::decoder::decoders(false));
            let s = TcpStream::connect(addr).await.unwrap();
            let got = fetch_all(TapStream::new(s, rec.clone(), Dir::ClientToServer, true, Gate::free())).await;
            assert!(got > MESSAGES * 100, "{got} bytes");
            drop(rec);
            assert!(drain.await.unwrap() >= MESSAGES, "a step per FETCH response at least");
        })
    });
    group.finish();
}

criterion_group!(benches, tls, imap);
criterion_main!(benches);
