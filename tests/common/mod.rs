//! What the tests that talk to `serve` as raw clients share: reading SMTP replies off a socket.
#![allow(dead_code)]

use protolab::labs::smtp::wire::{Reply, ReplyError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any one wait may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Reads one whole (maybe multi-line) reply from a raw socket.
pub async fn reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> Reply {
    loop {
        match Reply::parse(buf) {
            Ok((reply, len)) => {
                buf.drain(..len);
                return reply;
            }
            Err(ReplyError::Incomplete) => {}
            Err(e) => panic!("not a reply: {e:?}"),
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(LIMIT, s.read(&mut chunk)).await.expect("a reply in time").unwrap();
        assert!(n > 0, "the server closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends a line and returns the reply to it.
pub async fn say(s: &mut TcpStream, buf: &mut Vec<u8>, line: &[u8]) -> Reply {
    s.write_all(line).await.unwrap();
    reply(s, buf).await
}
