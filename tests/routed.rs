//! The lab network with routers: a TCP exchange between hosts on two networks crosses every
//! cable of the chain, each crossing a step of its own, with the TTL one less per router and
//! every frame whole; a router asks for its next hop by ARP like any host.

use protolab::net::sim::{Faults, SimNet, Topology};
use protolab::net::{Gate, Net};
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// An echo over `routers` routers; the steps of the run.
async fn echo_through(routers: usize) -> Vec<Step> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    {
        let sim = SimNet::with_topology(
            Topology::chain(routers),
            StepSink::new("routed", tx),
            Gate::free(),
            Faults::default(),
        );
        let net = Net::Sim(sim.clone());
        let addr = net.server_addr(7);
        assert_eq!(addr, "203.0.113.5:7");
        let listener = net.listen(&addr).await.unwrap();
        let server = tokio::spawn(async move {
            let (mut s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip().to_string(), "192.0.2.1", "no address is rewritten on the way");
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(&buf[..n]).await.unwrap();
            s.shutdown().await.unwrap();
        });
        let exchange = async {
            let mut s = net.connect(&addr).await.unwrap();
            s.write_all(b"across the routers").await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"across the routers");
            s.shutdown().await.unwrap();
            server.await.unwrap();
            sim.settle().await;
        };
        tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("never hangs");
    }
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn ttl(step: &Step) -> Option<u64> {
    step.number("IPv4.ttl")
}

#[tokio::test]
async fn a_connection_crosses_each_router_a_cable_at_a_time() {
    let steps = echo_through(2).await;
    for s in &steps {
        assert_eq!(s.malformed, None, "#{} {} → {} {}", s.seq, s.from, s.to, s.summary);
    }
    let hops: Vec<(&str, &str)> = ["client", "r1", "r2", "server"].windows(2).map(|w| (w[0], w[1])).collect();
    // The SYN, on each cable in turn, its TTL one less after each router.
    let syns: Vec<&Step> = steps.iter().filter(|s| s.kind == "tcp.syn").collect();
    let path: Vec<(&str, &str)> = syns.iter().map(|s| (s.from.as_str(), s.to.as_str())).collect();
    assert_eq!(path, hops, "{syns:#?}");
    assert_eq!(syns.iter().map(|s| ttl(s)).collect::<Vec<_>>(), [Some(64), Some(63), Some(62)]);
    // The same segment: only TTL and the header checksum differ between two cables.
    let (a, b) = (&syns[0].bytes, &syns[1].bytes);
    assert_eq!(a[34..], b[34..], "the segment itself is untouched");
    assert_ne!(a[24..26], b[24..26], "the header checksum is recomputed");
    // Each sender asked its cable's other end for its MAC first: the client its gateway, each
    // router its next hop.
    for (from, to) in &hops {
        assert!(steps.iter().any(|s| s.proto == "ARP" && s.from == *from && s.to == *to), "ARP from {from} to {to}");
    }
    // The server's answer comes back the same way, in reverse.
    let synacks: Vec<(&str, &str)> =
        steps.iter().filter(|s| s.kind == "tcp.syn-ack").map(|s| (s.from.as_str(), s.to.as_str())).collect();
    let back: Vec<(&str, &str)> = hops.iter().rev().map(|&(a, b)| (b, a)).collect();
    assert_eq!(synacks, back);
}

/// With one router, every frame crosses one of its two cables: nothing goes around it.
#[tokio::test]
async fn one_router_is_enough_and_no_step_skips_it() {
    let steps = echo_through(1).await;
    assert!(steps.iter().all(|s| s.from == "r1" || s.to == "r1"), "every frame crosses a cable of r1");
    assert!(steps.iter().any(|s| s.from == "r1" && s.to == "server" && ttl(s) == Some(63)));
}
