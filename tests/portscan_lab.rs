//! The port scan lab end to end: the ARP sweep finds web, mail and the gateway r1 on the LAN, the
//! ping sweep finds vault behind r1, and both scans agree: web has 22, 80 and 443 open, mail 25,
//! everything else on the LAN is closed (RST), and behind r1's firewall only 443 is open, 22 is
//! refused with ICMP type 3 code 13, the rest gets no answer. tshark reads every frame.

mod pcap;

use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::net::sim::Faults;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::sync::mpsc;

async fn portscan(faults: Faults) -> Vec<Step> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = run::RunOptions { faults, ..run::RunOptions::free(Wire::Sim) };
    let exchange = run::exchange(labs::find("portscan").unwrap(), opts, StepSink::new("portscan", tx));
    tokio::time::timeout(Duration::from_secs(60), exchange).await.expect("never hangs").unwrap();
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn text(step: &Step, path: &str) -> String {
    step.fields.iter().find(|f| f.path == path).map(|f| f.display_value()).unwrap_or_default()
}

fn scanner(step: &Step) -> &str {
    step.states.iter().find(|(who, _)| who == "scanner").map(|(_, s)| s.as_str()).unwrap_or_default()
}

/// The scanner's fullest word on `ip` in `scan`: its table once the last answer came (a reset
/// its stack sent earlier may follow it, with the table as it stood then).
fn table(steps: &[Step], scan: &str, ip: &str) -> String {
    let head = format!("{scan} of {ip}: open");
    steps
        .iter()
        .map(scanner)
        .filter(|s| s.starts_with(&head))
        .max_by_key(|s| s.chars().filter(char::is_ascii_digit).count())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn discovery_then_both_scans_find_open_closed_and_filtered() {
    let steps = portscan(Faults::default()).await;
    assert!(steps.iter().all(|s| s.malformed.is_none()));
    // The ARP sweep: one broadcast request per address of 192.0.2.0/29 but the scanner's own,
    // a copy to each end of the switch; three owners answer.
    let asked: Vec<String> = steps
        .iter()
        .filter(|s| s.from == "scanner" && s.proto == "ARP" && s.to == "web")
        .map(|s| text(s, "ARP.target_ip"))
        .collect();
    assert_eq!(asked, ["192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"]);
    let answered: Vec<&str> =
        steps.iter().filter(|s| s.proto == "ARP" && s.to == "scanner").map(|s| s.from.as_str()).collect();
    assert_eq!(answered, ["web", "mail", "r1"]);
    // The ping sweep beyond r1: six echo requests, one answer (vault's), carried back by r1.
    let pinged: Vec<String> = steps
        .iter()
        .filter(|s| s.summary.starts_with("echo request") && s.from == "scanner")
        .map(|s| text(s, "IPv4.dst"))
        .collect();
    assert_eq!(pinged.len(), 6);
    assert_eq!(pinged[0], "203.0.113.1");
    let replies: Vec<&Step> =
        steps.iter().filter(|s| s.summary.starts_with("echo reply") && s.to == "scanner").collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(text(replies[0], "IPv4.src"), "203.0.113.5");
    // Both scans, host by host: the tables the scanner's state shows.
    for scan in ["connect scan", "SYN scan"] {
        assert_eq!(
            table(&steps, scan, "192.0.2.2"),
            format!("{scan} of 192.0.2.2: open 22 80 443 · closed 25 3306 50000 · filtered –")
        );
        assert_eq!(
            table(&steps, scan, "192.0.2.3"),
            format!("{scan} of 192.0.2.3: open 25 · closed 22 80 443 3306 50000 · filtered –")
        );
    }
    assert_eq!(
        table(&steps, "connect scan", "203.0.113.5"),
        "connect scan of 203.0.113.5: open 443 · closed – · filtered 22 25 80 3306 50000"
    );
    assert_eq!(table(&steps, "SYN scan", "203.0.113.5"), "SYN scan of 203.0.113.5: open 443 · closed – · filtered 22");
    // The gateway is not scanned; nothing from the scanner reaches r1's own address.
    assert!(!steps.iter().any(|s| s.proto == "TCP" && text(s, "IPv4.dst") == "192.0.2.6"));
    // r1 refuses port 22 with type 3 code 13, quoting the probe.
    let refusals: Vec<&Step> = steps.iter().filter(|s| s.summary.starts_with("destination unreachable")).collect();
    assert_eq!(refusals.len(), 2, "one a scan");
    for r in &refusals {
        assert_eq!((r.from.as_str(), text(r, "ICMP.type"), text(r, "ICMP.code")), ("r1", "3".into(), "13".into()));
        assert_eq!(text(r, "ICMP.quoted.dst_port"), "22");
    }
    // The silent ports were asked twice in the SYN scan, with the same sequence number.
    let retried: Vec<&Step> = steps.iter().filter(|s| s.again && s.summary.starts_with("SYN ")).collect();
    let ports: Vec<String> = retried.iter().map(|s| text(s, "TCP.dst_port")).collect();
    assert_eq!(ports, ["25", "80", "3306", "50000"]);
    // A connect scan completes the handshake and resets; a SYN scan's stack resets the SYN-ACK.
    let to_web_22 =
        |s: &&Step| s.proto == "TCP" && text(s, "IPv4.dst") == "192.0.2.2" && text(s, "TCP.dst_port") == "22";
    let flags: Vec<String> = steps.iter().filter(to_web_22).map(|s| text(s, "TCP.flags")).collect();
    assert_eq!(flags, ["SYN", "ACK", "ACK,RST", "SYN", "RST"]);
    // No SYN ever reached vault on a port the firewall keeps closed.
    let reached: Vec<String> = steps
        .iter()
        .filter(|s| s.to == "vault" && s.summary.starts_with("SYN "))
        .map(|s| text(s, "TCP.dst_port"))
        .collect();
    assert_eq!(reached, ["443", "443"]);
}

#[tokio::test]
async fn a_lost_probe_looks_filtered_and_a_lost_arp_reply_hides_a_host() {
    // Frame 16 is web's ARP reply: web is never found, so never scanned.
    let steps = portscan(Faults { drop: vec![16], ..Faults::default() }).await;
    assert!(!steps.iter().any(|s| s.proto == "TCP" && text(s, "IPv4.dst") == "192.0.2.2"));
    assert_eq!(
        table(&steps, "SYN scan", "192.0.2.3"),
        "SYN scan of 192.0.2.3: open 25 · closed 22 80 443 3306 50000 · filtered –"
    );
}

#[test]
fn tshark_reads_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = pcap::run("portscan", dir.path(), &[]) else { return };
    let read = |filter: &str, fields: &[&str]| {
        let mut args = vec!["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-Y", filter];
        args.extend(["-T", "fields", "-E", "occurrence=f"]);
        for f in fields {
            args.extend(["-e", f]);
        }
        pcap::tshark(&path, &args)
    };
    let bad = read("_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0", &["frame.number"]);
    assert_eq!(bad, "");
    // The refusals: ICMP type 3 code 13 from r1, quoting a SYN to vault's port 22.
    let refused = read("icmp.type == 3", &["ip.src", "icmp.code", "tcp.dstport"]);
    assert_eq!(refused, "192.0.2.6\t13\t22\n192.0.2.6\t13\t22\n");
    // The SYN scan's probes: window 1024.
    let probes = read("tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.window_size_value == 1024", &["ip.dst"]);
    assert!(probes.lines().count() >= 18, "{probes}");
}
