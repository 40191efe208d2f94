//! The lab network under load: a bulk transfer across the sim wire in play mode (no gate),
//! every frame decoded and recorded as a step. Reports throughput, the per-frame cost of
//! decoding a frame into a step, and (once, before the timed runs) what a 1 GiB transfer keeps.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protolab::net::sim::{Faults, SimNet, Topology};
use protolab::net::{Gate, Net};
use protolab::session::{Step, StepSink};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const MIB: usize = 1024 * 1024;

/// Sends `total` bytes from the client host to the server host; returns the steps' count and
/// the bytes they kept.
async fn transfer(total: usize) -> (usize, usize) {
    transfer_on(Topology::pair(), total).await
}

/// The same across the network `topology`.
async fn transfer_on(topology: Topology, total: usize) -> (usize, usize) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Step>();
    let counter = tokio::spawn(async move {
        let (mut steps, mut kept) = (0, 0);
        while let Some(s) = rx.recv().await {
            steps += 1;
            kept += s.bytes.len();
        }
        (steps, kept)
    });
    {
        let net =
            Net::Sim(SimNet::with_topology(topology, StepSink::new("bench", tx), Gate::free(), Faults::default()));
        let addr = net.server_addr(9);
        let listener = net.listen(&addr).await.unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0;
            loop {
                match s.read(&mut buf).await.unwrap() {
                    0 => return n,
                    k => n += k,
                }
            }
        });
        let mut s = net.connect(&addr).await.unwrap();
        let chunk = vec![0x5a; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            s.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        s.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), sent);
    }
    counter.await.unwrap()
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn sim(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();

    // Once: 1 GiB across the wire. Memory must stay bounded: frames deep in the transfer keep
    // their headers only, and the steps are consumed as they come.
    let start = Instant::now();
    let (steps, kept) = rt.block_on(transfer(1024 * MIB));
    let secs = start.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    println!(
        "sim 1 GiB: {steps} frame steps in {secs:.1} s ({:.0} MiB/s), {:.1} MiB of frame bytes kept, peak RSS {rss:.0} MiB",
        1024.0 / secs,
        kept as f64 / MIB as f64
    );
    let summary = serde_json::json!({ "steps": steps, "kept_bytes": kept, "seconds": secs, "peak_rss_mib": rss });
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("sim_1GiB.json"), summary.to_string());

    let mut group = c.benchmark_group("sim_wire");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Bytes(10 * MIB as u64));
    group.bench_function("transfer_10MiB", |b| b.to_async(&rt).iter(|| transfer(10 * MIB)));
    group.finish();

    // Routers: 1 MiB with none in the way, and across three (each frame then crosses four
    // cables, a step on each). The promise: per hop, the cost stays flat (at most 4x).
    // On one thread: what is measured is the network's work per frame, not the allocator's
    // locks between the thread that makes steps and the one that drops them.
    let one = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("routed");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(MIB as u64));
    group.bench_function("direct", |b| b.to_async(&one).iter(|| transfer_on(Topology::pair(), MIB)));
    group.bench_function("three_routers", |b| b.to_async(&one).iter(|| transfer_on(Topology::chain(3), MIB)));
    group.finish();

    // What recording one frame costs: decoding a full-size data segment into a step's fields.
    let (tx, mut rx) = mpsc::unbounded_channel::<Step>();
    rt.block_on(async {
        let net = SimNet::new(StepSink::new("bench", tx), Gate::free(), Faults::default());
        let listener = net.listen(9).unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
        let mut s = net.connect(format!("{}:9", net.server_ip()).parse().unwrap()).await.unwrap();
        s.write_all(&vec![1u8; 4000]).await.unwrap();
        let mut server = accept.await.unwrap().unwrap();
        let mut buf = vec![0u8; 4000];
        server.read_exact(&mut buf).await.unwrap();
    });
    let mut frame = Vec::new();
    while let Ok(step) = rx.try_recv() {
        if step.bytes.len() > frame.len() {
            frame = step.bytes;
        }
    }
    let mut group = c.benchmark_group("record_frame");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_data_segment", |b| {
        b.iter(|| protolab::wire::frame::decode(std::hint::black_box(&frame)))
    });
    group.finish();
}

criterion_group!(benches, sim);
criterion_main!(benches);
