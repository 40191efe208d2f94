//! The DHCP lab on the lab network: DORA, the lease timers, RELEASE and NAK, as they crossed
//! the cable.

use protolab::labs::dhcp::DEFAULT_SPEEDUP as SPEEDUP;
use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::sync::mpsc;

async fn run_dhcp() -> Vec<Step> {
    let lab = labs::find("dhcp").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let exchange = run::exchange(lab, run::RunOptions::free(Wire::Sim), StepSink::new("dhcp", tx));
    tokio::time::timeout(Duration::from_secs(60), exchange).await.expect("never hangs").expect("completes");
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    steps
}

fn v(s: &Step, path: &str) -> String {
    s.value(path).unwrap_or_else(|| panic!("no {path} in {}", s.summary))
}

fn dhcp(steps: &[Step]) -> Vec<&Step> {
    steps.iter().filter(|s| s.proto == "DHCP").collect()
}

/// Seconds on the lease clock between two steps.
fn lab_secs(a: &Step, b: &Step) -> f64 {
    (b.t_us - a.t_us) as f64 / 1e6 * SPEEDUP as f64
}

#[tokio::test]
async fn the_whole_lease_from_dora_to_nak() {
    let steps = run_dhcp().await;
    assert!(steps.iter().all(|s| s.malformed.is_none()), "{steps:#?}");
    let d = dhcp(&steps);
    let types: Vec<String> = d.iter().map(|s| v(s, "DHCP.message_type")).collect();
    assert_eq!(&types[..4], ["DISCOVER", "OFFER", "REQUEST", "ACK"]);

    // DORA: one xid, a broadcast from nowhere, an address offered and then acknowledged.
    let (discover, offer, request, ack) = (d[0], d[1], d[2], d[3]);
    let xid = v(discover, "DHCP.xid");
    assert!(xid.starts_with("0x") && xid.len() == 10, "{xid}");
    assert!(d[..4].iter().all(|s| v(s, "DHCP.xid") == xid), "the same xid across DORA");
    assert_eq!(v(discover, "IPv4.src"), "0.0.0.0");
    assert_eq!(v(discover, "IPv4.dst"), "255.255.255.255");
    assert_eq!((v(discover, "UDP.src_port"), v(discover, "UDP.dst_port")), ("68".into(), "67".into()));
    assert_eq!(v(discover, "Ethernet.dst"), "ff:ff:ff:ff:ff:ff");
    let addr = v(offer, "DHCP.yiaddr");
    assert_eq!(v(request, "DHCP.requested_ip"), addr);
    assert_eq!(v(request, "DHCP.server_id"), "192.0.2.2");
    assert_eq!(v(ack, "DHCP.yiaddr"), addr);
    assert_eq!(v(ack, "DHCP.lease_time"), "120");
    assert_eq!(v(ack, "DHCP.subnet_mask"), "255.255.255.0");
    assert!(ack.states.iter().any(|(who, st)| who == "client" && st.starts_with("BOUND")), "{:?}", ack.states);

    // T1, half the lease: a unicast REQUEST from the leased address to the server.
    let renew = d.iter().find(|s| s.kind == "dhcp.request.renew").unwrap();
    assert_eq!(v(renew, "IPv4.src"), addr);
    assert_eq!(v(renew, "IPv4.dst"), "192.0.2.2");
    assert_eq!(v(renew, "DHCP.ciaddr"), addr);
    let t1 = lab_secs(ack, renew);
    assert!((59.0..70.0).contains(&t1), "T1 came {t1:.1} s into a 120 s lease");

    // The server answered that renewal; the next went unanswered; at T2 (87.5 %) the client
    // rebinds by broadcast.
    let renewed = d.iter().find(|s| s.kind == "dhcp.ack.renew").unwrap();
    let rebind = d.iter().find(|s| s.kind == "dhcp.request.rebind").unwrap();
    assert_eq!(v(rebind, "IPv4.dst"), "255.255.255.255");
    assert_eq!(v(rebind, "DHCP.ciaddr"), addr);
    let t2 = lab_secs(renewed, rebind);
    assert!((104.0..115.0).contains(&t2), "T2 came {t2:.1} s into a 120 s lease");

    // Then RELEASE, and a NAK for an address outside the pool.
    let release = d.iter().find(|s| v(s, "DHCP.message_type") == "RELEASE").unwrap();
    assert_eq!(v(release, "DHCP.ciaddr"), addr);
    let nak = d.last().unwrap();
    assert_eq!(v(nak, "DHCP.message_type"), "NAK");
    assert!(nak.summary.contains("192.0.2.200 is not in this server's pool"), "{}", nak.summary);

    // Each step shows the server's view once it took the message in: the RELEASE frees the
    // address on its own step; the refused address is not the pool's; the client starts over.
    assert_eq!(release.state("server"), Some("192.0.2.10 FREE"));
    assert_eq!(release.state("client"), Some("INIT"));
    assert_eq!(nak.state("server"), Some("192.0.2.200 not in pool"));
    assert_eq!(nak.state("client"), Some("INIT"));
    assert_eq!(d[0].state("server"), Some("192.0.2.10 OFFERED"), "the DISCOVER reserved an address");
}

#[tokio::test]
async fn every_run_has_a_new_xid() {
    let (a, b) = tokio::join!(run_dhcp(), run_dhcp());
    assert_ne!(v(dhcp(&a)[0], "DHCP.xid"), v(dhcp(&b)[0], "DHCP.xid"));
}

/// (Every step's narration is checked by the walk in tests/narration.rs.)
#[tokio::test]
async fn inform_is_answered_with_settings_and_no_lease() {
    let steps = run_dhcp().await;
    let d = dhcp(&steps);
    let inform = d.iter().position(|s| v(s, "DHCP.message_type") == "INFORM").expect("an INFORM");
    let answer = d[inform + 1];
    assert_eq!(answer.kind, "dhcp.ack.inform");
    assert_eq!(v(answer, "DHCP.xid"), v(d[inform], "DHCP.xid"));
    assert_eq!(v(answer, "DHCP.yiaddr"), "0.0.0.0");
    assert!(answer.field("DHCP.lease_time").is_none());
}
