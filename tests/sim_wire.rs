//! The stream labs (WebSocket, SMTP) on the lab network: their application steps come from
//! the reassembled stream and name the TCP segments that carried them.

use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::session::{Step, StepSink, hex};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

async fn run_on_sim(name: &str) -> Vec<Step> {
    let lab = labs::find(name).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let exchange = run::exchange(lab, run::RunOptions::free(Wire::Sim), StepSink::new(name, tx));
    tokio::time::timeout(Duration::from_secs(60), exchange).await.expect("never hangs").expect("completes");
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    steps
}

fn check_carriage(steps: &[Step]) {
    let by_seq: HashMap<u64, &Step> = steps.iter().map(|s| (s.seq, s)).collect();
    let apps: Vec<&Step> = steps.iter().filter(|s| !s.frame).collect();
    assert!(apps.len() >= 8, "{} application steps", apps.len());
    for app in apps {
        assert!(!app.carried_by.is_empty(), "{} names no carrier", app.summary);
        let mut payloads = String::new();
        for seq in &app.carried_by {
            let carrier = by_seq[seq];
            assert!(carrier.frame && carrier.proto == "TCP", "{} is carried by a TCP segment", app.summary);
            assert!(carrier.seq < app.seq, "the segment comes first");
            assert_eq!(carrier.from, app.from);
            let len: usize = carrier.value("TCP.payload_len").unwrap().parse().unwrap();
            payloads.push_str(&hex(&carrier.bytes[carrier.bytes.len() - len..]));
        }
        // The message's bytes are inside what its segments carried.
        assert!(payloads.contains(&hex(&app.bytes)), "{}: its bytes are in its segments", app.summary);
    }
}

#[tokio::test]
async fn smtp_on_the_lab_network_links_each_message_to_its_segments() {
    let steps = run_on_sim("smtp").await;
    check_carriage(&steps);
    assert!(steps.iter().any(|s| s.kind == "smtp.data"));
}

#[tokio::test]
async fn websocket_on_the_lab_network_links_each_frame_to_its_segments() {
    let steps = run_on_sim("ws").await;
    check_carriage(&steps);
    assert!(steps.iter().any(|s| s.kind == "ws.handshake.response"));
}

/// Deep in a long transfer the segments keep their headers only, yet each still says how many
/// bytes it carried, and so is still data, not an ACK.
#[tokio::test]
async fn segments_deep_in_a_long_transfer_are_still_data() {
    use protolab::net::sim::{Faults, SimNet};
    use protolab::net::{Gate, Net};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TOTAL: usize = 512 * 1024;
    let (tx, mut rx) = mpsc::unbounded_channel();
    {
        let net = Net::Sim(SimNet::new(StepSink::new("bulk", tx), Gate::free(), Faults::default()));
        let addr = net.server_addr(9);
        let listener = net.listen(&addr).await.unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all.len()
        });
        let mut s = net.connect(&addr).await.unwrap();
        s.write_all(&vec![0x5a; TOTAL]).await.unwrap();
        s.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), TOTAL);
    }
    let steps: Vec<Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let len = |s: &Step| s.number("TCP.payload_len").unwrap_or(0) as usize;
    let odd: Vec<_> =
        steps.iter().filter(|s| len(s) > 0 && s.kind != "tcp.data").map(|s| (&s.kind, &s.malformed)).collect();
    assert!(odd.iter().all(|(k, _)| k.ends_with(".data")), "segments with bytes are data: {odd:?}");
    let data: Vec<&Step> = steps.iter().filter(|s| s.from == "client" && s.kind == "tcp.data").collect();
    let carried: usize = steps.iter().filter(|s| s.from == "client" && !s.again).map(len).sum();
    assert_eq!(carried, TOTAL, "every data segment is data, with its length");
    assert!(data.iter().any(|s| s.truncated), "the deep ones keep their headers only");
}

/// The cable's second copy of a segment carries nothing the receiver keeps: no message names
/// it as a carrier, under a copy of any frame.
#[tokio::test]
async fn a_copy_of_a_segment_carries_nothing() {
    use protolab::net::sim::{Fate, Faults};
    for n in 4..=14 {
        let lab = labs::find("ws").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let faults = Faults { duplicate: vec![n], ..Faults::default() };
        let opts = run::RunOptions { faults, ..run::RunOptions::free(Wire::Sim) };
        let exchange = run::exchange(lab, opts, StepSink::new("ws", tx));
        tokio::time::timeout(Duration::from_secs(60), exchange).await.expect("never hangs").expect("completes");
        let steps: Vec<Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let copies: Vec<u64> = steps.iter().filter(|s| s.fate == Fate::Duplicate).map(|s| s.seq).collect();
        for app in steps.iter().filter(|s| !s.frame) {
            assert!(
                app.carried_by.iter().all(|c| !copies.contains(c)),
                "copy of frame {n}: {} names a copy among {:?}",
                app.summary,
                app.carried_by
            );
        }
        check_carriage(&steps);
    }
}
