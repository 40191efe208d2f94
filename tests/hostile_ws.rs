//! Hostile and careless clients against `serve ws`: each gets the protocol's own answer, and a
//! normal client is served after it.

use protolab::labs::run::{self, serve};
use protolab::labs::{self, Lab};
use protolab::net::Wire;
use protolab::session::StepSink;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(30);

async fn serving(sessions: u32) -> SocketAddr {
    let lab: Arc<dyn Lab> = labs::find("ws").unwrap();
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(serve(lab, listener, Some(sessions), StepSink::new("ws", tx)));
    addr
}

/// Sends `request`, reads until the server closes; what it answered.
async fn answer(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut out)).await.expect("the server answers and closes").unwrap();
    String::from_utf8_lossy(&out).into_owned()
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
