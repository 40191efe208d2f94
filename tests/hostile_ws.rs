//! Hostile and careless clients against `serve ws`: each gets the protocol's own answer, and a
//! normal client is served after it.

use protolab::labs::run::{self, ServeOptions, serve_with};
use protolab::labs::ws::frame::{self, Opcode};
use protolab::labs::{self, Lab};
use protolab::net::Wire;
use protolab::net::limits::Limits;
use protolab::session::StepSink;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(30);

async fn serving(sessions: u32) -> SocketAddr {
    serving_with(sessions, ServeOptions::default()).await
}

async fn serving_with(sessions: u32, opts: ServeOptions) -> SocketAddr {
    let lab: Arc<dyn Lab> = labs::find("ws").unwrap();
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(serve_with(lab, listener, Some(sessions), StepSink::new("ws", tx), opts));
    addr
}

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Upgrades, then sends `frames`: the close code the server answers with.
async fn close_code_for(addr: SocketAddr, frames: &[u8]) -> u16 {
    let bytes = answer_bytes(addr, &[UPGRADE, frames].concat()).await;
    let head = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("the 101") + 4;
    let frame = &bytes[head..];
    assert_eq!(frame[0] & 0x0f, 0x8, "a close frame: {frame:?}");
    u16::from_be_bytes([frame[2], frame[3]])
}

/// Sends `request`, reads until the server closes; the bytes it answered.
async fn answer_bytes(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut out)).await.expect("the server answers and closes").unwrap();
    out
}

/// What the server answered, as text.
async fn answer(addr: SocketAddr, request: &[u8]) -> String {
    String::from_utf8_lossy(&answer_bytes(addr, request).await).into_owned()
}

/// Our own lab client against the served address: a normal client is served.
async fn a_normal_client_is_served(addr: SocketAddr) {
    let lab = labs::find("ws").unwrap();
    let opts = run::RunOptions { connect: Some(addr.to_string()), ..run::RunOptions::free(Wire::Host) };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::time::timeout(LIMIT, run::exchange(lab, opts, StepSink::new("ws", tx))).await.unwrap().unwrap();
}

/// RFC 6455 §4.4: a version the server does not speak is refused, naming the one it does.
#[tokio::test]
async fn a_wrong_version_is_refused_with_the_version_spoken() {
    let addr = serving(2).await;
    let got = answer(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 400 "), "{got}");
    assert!(got.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{got}");
    a_normal_client_is_served(addr).await;
}

/// Frames that break RFC 6455 each get the close code that names what they broke, and the
/// server is still there for the next client.
#[tokio::test]
async fn broken_frames_get_their_close_codes() {
    let mask = Some([1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("unmasked from a client", frame::emit(true, Opcode::Text, None, b"hi"), &[1002]),
        (
            "reserved opcode",
            {
                let mut f = frame::emit(true, Opcode::Text, mask, b"hi");
                f[0] = 0x83;
                f
            },
            &[1002],
        ),
        (
            "RSV bit set",
            {
                let mut f = frame::emit(true, Opcode::Text, mask, b"hi");
                f[0] |= 0x40;
                f
            },
            &[1002],
        ),
        ("fragmented ping", frame::emit(false, Opcode::Ping, mask, b"hi"), &[1002]),
        ("ping over 125 bytes", frame::emit(true, Opcode::Ping, mask, &[0; 126]), &[1002]),
        ("text that is not UTF-8", frame::emit(true, Opcode::Text, mask, &[0xff, 0xfe]), &[1007]),
        ("continuation with nothing to continue", frame::emit(true, Opcode::Continuation, mask, b"x"), &[1002]),
    ];
    let addr = serving(cases.len() as u32 + 1).await;
    for (what, bytes, codes) in cases {
        let code = close_code_for(addr, &bytes).await;
        assert!(codes.contains(&code), "{what}: close {code}, expected one of {codes:?}");
    }
    a_normal_client_is_served(addr).await;
}

/// A frame longer than the server takes (16 MiB) is refused by its header, before its bytes.
#[tokio::test]
async fn an_oversized_message_gets_1009() {
    let addr = serving(2).await;
    let mut head = vec![0x82, 0x80 | 127];
    head.extend_from_slice(&(64u64 * 1024 * 1024).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_code_for(addr, &head).await, 1009);
    a_normal_client_is_served(addr).await;
}

/// Past the connection limit, a client gets 503 and is closed at once.
#[tokio::test]
async fn the_client_past_the_limit_gets_503() {
    let opts = ServeOptions { max_connections: 1, ..ServeOptions::default() };
    let addr = serving_with(3, opts).await;
    let first = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got = answer(addr, UPGRADE).await;
    assert!(got.starts_with("HTTP/1.1 503 "), "{got}");
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    a_normal_client_is_served(addr).await;
}

/// A client that sends frames and never reads the echoes loses its session once the server's
/// writes have waited long enough; its slot is free again.
#[tokio::test]
async fn a_client_that_never_reads_loses_its_session() {
    let limits = Limits { write_stall: Duration::from_secs(1), ..Limits::default() };
    let opts = ServeOptions { max_connections: 1, limits };
    let addr = serving_with(2, opts).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(UPGRADE).await.unwrap();
    let big = frame::emit(true, Opcode::Binary, Some([9, 9, 9, 9]), &[7u8; 60_000]);
    let writer = tokio::spawn(async move {
        let start = std::time::Instant::now();
        while s.write_all(&big).await.is_ok() && start.elapsed() < LIMIT {}
        start.elapsed()
    });
    let took = tokio::time::timeout(LIMIT, writer).await.expect("the server gave up in time").unwrap();
    assert!(took < Duration::from_secs(20), "the session ended after {took:?}");
    a_normal_client_is_served(addr).await;
}
