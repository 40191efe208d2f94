//! What the tap costs: 256 MiB of WebSocket binary frames (1 MiB each) over loopback, written
//! through a plain socket and through a TapStream whose recorder decodes every frame and keeps
//! the first 64 KiB of each. The ratio script wants the tapped throughput at 0.9x or better.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protolab::labs;
use protolab::labs::ws::frame::{self, Opcode};
use protolab::net::{Dir, Gate, Recorder, TapStream};
use protolab::session::StepSink;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const TOTAL: usize = 256 * 1024 * 1024;
const FRAME: usize = 1024 * 1024;

const REQUEST: &str = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A connected pair; the reader drains everything and counts it.
async fn pair() -> (TcpStream, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        loop {
            match s.read(&mut buf).await.unwrap() {
                0 => return n,
                k => n += k,
            }
        }
    });
    (TcpStream::connect(addr).await.unwrap(), reader)
}

async fn send(mut w: impl AsyncWrite + Unpin, frame: &[u8]) {
    for _ in 0..TOTAL / FRAME {
        w.write_all(frame).await.unwrap();
    }
    w.shutdown().await.unwrap();
}

fn tap(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let frame = frame::emit(true, Opcode::Binary, Some([1, 2, 3, 4]), &vec![0x5a; FRAME]);
    let mut group = c.benchmark_group("loopback_256MiB");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("untapped", |b| {
        b.to_async(&rt).iter(|| async {
            let (s, reader) = pair().await;
            send(s, &frame).await;
            assert!(reader.await.unwrap() >= TOTAL);
        })
    });
    group.bench_function("tapped", |b| {
        b.to_async(&rt).iter(|| async {
            let (s, reader) = pair().await;
            let (tx, mut rx) = mpsc::unbounded_channel::<protolab::session::Step>();
            let drain = tokio::spawn(async move {
                let mut kept = 0;
                while let Some(step) = rx.recv().await {
                    kept += step.bytes.len();
                }
                kept
            });
            let lab = labs::find("ws").unwrap();
            let rec = Recorder::new(StepSink::new("ws", tx), ["client", "server"], lab.decoders(false));
            rec.feed(Dir::ClientToServer, REQUEST.as_bytes());
            rec.feed(Dir::ServerToClient, RESPONSE.as_bytes());
            let tapped = TapStream::new(s, rec, Dir::ClientToServer, false, Gate::free());
            send(tapped, &frame).await;
            assert!(reader.await.unwrap() >= TOTAL);
            let kept = drain.await.unwrap();
            assert!(kept <= (TOTAL / FRAME) * 64 * 1024 + 1024, "the tap keeps at most 64 KiB a message");
        })
    });
    group.finish();
}

criterion_group!(benches, tap);
criterion_main!(benches);
