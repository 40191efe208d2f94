//! The NAT lab end to end: r1's port forward rewrites the destination of what reaches
//! 198.51.100.1:8080 to web 192.0.2.10:80 and the source of web's answers back; its source NAT
//! sends pc's connection out from 198.51.100.1 and a port of its own, and brings the answers
//! back. Every rewritten frame carries good checksums (the decoder checks them), says what
//! changed, and the servers' pages say whom they saw; tshark agrees.

mod pcap;

use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::sync::mpsc;

async fn nat() -> Vec<Step> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let exchange =
        run::exchange(labs::find("nat").unwrap(), run::RunOptions::free(Wire::Sim), StepSink::new("nat", tx));
    tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("never hangs").unwrap();
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn text(step: &Step, path: &str) -> String {
    step.fields.iter().find(|f| f.path == path).map(|f| f.display_value()).unwrap_or_default()
}

fn ends(step: &Step) -> (String, String) {
    (
        format!("{}:{}", text(step, "IPv4.src"), text(step, "TCP.src_port")),
        format!("{}:{}", text(step, "IPv4.dst"), text(step, "TCP.dst_port")),
    )
}

#[tokio::test]
async fn the_port_forward_and_source_nat_rewrite_both_ways() {
    let steps = nat().await;
    assert!(steps.iter().all(|s| s.malformed.is_none()), "every checksum good after each rewrite");
    let syns: Vec<&Step> = steps.iter().filter(|s| s.summary.starts_with("SYN ")).collect();
    assert_eq!(syns.len(), 4);
    // The port forward: remote asks r1's outside address, web gets it on port 80.
    assert_eq!((syns[0].from.as_str(), syns[0].to.as_str()), ("remote", "r1"));
    assert_eq!(ends(syns[0]).1, "198.51.100.1:8080");
    assert_eq!((syns[1].from.as_str(), syns[1].to.as_str()), ("r1", "web"));
    assert_eq!(ends(syns[1]).1, "192.0.2.10:80");
    assert_eq!(ends(syns[1]).0, ends(syns[0]).0, "the source is kept: web sees remote");
    assert!(
        syns[1].nat
            && syns[1].notes[1].starts_with(
                "port forward by r1: destination 198.51.100.1:8080 → 192.0.2.10:80, so the TCP checksum 0x"
            )
    );
    let answer = steps.iter().find(|s| s.summary.starts_with("SYN,ACK") && s.to == "remote").unwrap();
    assert_eq!(ends(answer).0, "198.51.100.1:8080", "web's answer leaves from the public port");
    // Source NAT: pc goes out from r1's address and a port of r1's.
    assert_eq!((syns[2].from.as_str(), syns[2].to.as_str()), ("pc", "r1"));
    assert!(ends(syns[2]).0.starts_with("192.0.2.20:"));
    assert_eq!((syns[3].from.as_str(), syns[3].to.as_str()), ("r1", "remote"));
    let public = ends(syns[3]).0;
    assert!(public.starts_with("198.51.100.1:4"), "{public}");
    assert!(syns[3].notes[1].starts_with("source NAT by r1: source 192.0.2.20:"), "{:?}", syns[3].notes);
    // The pages say whom each server saw.
    let pages: Vec<String> = steps
        .iter()
        .filter(|s| s.summary.contains("HTTP/1.0 200"))
        .map(|s| String::from_utf8_lossy(&s.bytes).to_string())
        .collect();
    assert!(pages.iter().any(|p| p.contains("web 192.0.2.10:80: you came from 198.51.100.7:")), "{pages:?}");
    assert!(pages.iter().any(|p| p.contains(&format!("remote 198.51.100.7:80: you came from {public}"))), "{pages:?}");
    // Each rewritten frame is narrated as the rewrite.
    assert!(steps.iter().filter(|s| s.from == "r1" && s.proto == "TCP").all(|s| s.nat));
}

#[test]
fn tshark_reads_every_rewritten_frame_with_good_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = pcap::run("nat", dir.path(), &[]) else { return };
    let filter =
        "_ws.malformed || _ws.expert.severity >= 6291456 || ip.checksum.status == 0 || tcp.checksum.status == 0";
    let bad = pcap::tshark(
        &path,
        &[
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    assert_eq!(bad, "");
    let rows = pcap::tshark(
        &path,
        &["-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields", "-e", "ip.dst", "-e", "tcp.dstport"],
    );
    assert!(rows.starts_with("198.51.100.1\t8080\n192.0.2.10\t80\n"), "{rows}");
}
