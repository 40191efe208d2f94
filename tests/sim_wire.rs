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
