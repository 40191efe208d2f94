//! The traceroute lab end to end: probes with TTL 1, 2, 3, 4, three each; r1 and r2 answer
//! Time Exceeded from their own addresses, quoting the very probe they answer; r3 stays silent
//! (`* * *`); the server answers Port Unreachable and the trace ends there.

use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::sync::mpsc;

fn n(step: &Step, path: &str) -> u64 {
    step.number(path).unwrap_or_else(|| panic!("{path} in {}", step.summary))
}

#[tokio::test]
async fn each_router_names_itself_and_the_server_ends_the_trace() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let exchange =
        run::exchange(labs::find("traceroute").unwrap(), run::RunOptions::free(Wire::Sim), StepSink::new("t", tx));
    tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("never hangs").expect("completes");
    let steps: Vec<Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(steps.iter().all(|s| s.malformed.is_none()));

    // The probes as the client sent them: TTL 1, 1, 1, 2, 2, 2, … each to the next port.
    let probes: Vec<&Step> = steps.iter().filter(|s| s.kind == "udp" && s.from == "client").collect();
    let ttls: Vec<u64> = probes.iter().map(|s| n(s, "IPv4.ttl")).collect();
    assert_eq!(ttls, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    let ports: Vec<u64> = probes.iter().map(|s| n(s, "UDP.dst_port")).collect();
    assert_eq!(ports, (33434..33446).collect::<Vec<u64>>());

    // What reached the client, by probe: who answered, and what.
    let answers: Vec<&Step> = steps.iter().filter(|s| s.proto == "ICMP" && s.to == "client").collect();
    let mut by_hop: Vec<(u64, String, String)> = Vec::new();
    for a in &answers {
        let probe =
            probes.iter().find(|p| n(p, "UDP.dst_port") == n(a, "ICMP.quoted.dst_port")).expect("quotes a probe");
        // The quote is the probe as the answering node got it: same ports, its TTL run down.
        assert_eq!(n(a, "ICMP.quoted.src_port"), n(probe, "UDP.src_port"));
        assert_eq!(a.value("ICMP.quoted.dst").as_deref(), Some("203.0.113.5"));
        let expected_ttl = if a.kind == "icmp.time-exceeded" { 1 } else { n(probe, "IPv4.ttl") - 3 };
        assert_eq!(n(a, "ICMP.quoted.ttl"), expected_ttl, "{}", a.summary);
        by_hop.push((n(probe, "IPv4.ttl"), a.value("IPv4.src").unwrap(), a.kind.clone()));
    }
    let hop = |ttl: u64| -> Vec<(String, String)> {
        by_hop.iter().filter(|(t, _, _)| *t == ttl).map(|(_, src, kind)| (src.clone(), kind.clone())).collect()
    };
    let exceeded = |src: &str| vec![(src.to_string(), "icmp.time-exceeded".to_string()); 3];
    assert_eq!(hop(1), exceeded("192.0.2.254"), "r1 answers from the interface the probe came in by");
    assert_eq!(hop(2), exceeded("198.51.100.2"));
    assert_eq!(hop(3), [], "r3 stays silent: * * *");
    assert_eq!(hop(4), vec![("203.0.113.5".to_string(), "icmp.dest-unreachable".to_string()); 3]);
    assert!(!steps.iter().any(|s| s.from == "r3" && s.kind == "icmp.time-exceeded" && !s.forwarded));

    // The client's state after the last answer is traceroute's line for the last hop.
    let last = answers.last().unwrap();
    assert!(last.states[0].1.starts_with("hop 4:  203.0.113.5  "), "{:?}", last.states);
    let silent = probes.iter().find(|p| n(p, "UDP.dst_port") == 33442).unwrap();
    assert_eq!(silent.states[0].1, "hop 3:  *  *", "two stars before the third probe");
}

/// traceroute -I (`--icmp`): echo requests as probes, numbered by their sequence number; each
/// router's Time Exceeded quotes the echo request it answers, r3 stays silent, and the
/// server's own echo reply ends the trace.
#[test]
fn icmp_probes_end_with_the_servers_echo_reply() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protolab"))
        .args(["run", "traceroute", "--icmp", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let field = |s: &serde_json::Value, path: &str| {
        s["fields"].as_array().unwrap().iter().find(|f| f["path"] == path).map(|f| f["value"].clone())
    };
    let probes: Vec<&serde_json::Value> =
        steps.iter().filter(|s| s["from"] == "client" && field(s, "ICMP.type") == Some(8.into())).collect();
    assert_eq!(probes.len(), 12, "three a hop, four hops");
    assert_eq!(field(probes[0], "ICMP.seq"), Some(33434.into()));
    assert_eq!(field(probes[0], "IPv4.ttl"), Some(1.into()));
    let exceeded: Vec<&serde_json::Value> =
        steps.iter().filter(|s| s["to"] == "client" && field(s, "ICMP.type") == Some(11.into())).collect();
    assert_eq!(exceeded.len(), 6, "r1 and r2 answer, r3 does not");
    for e in &exceeded {
        let seq = field(e, "ICMP.quoted.seq").unwrap();
        assert!(probes.iter().any(|p| field(p, "ICMP.seq") == Some(seq.clone())), "quotes a probe: {seq}");
        assert_eq!(field(e, "ICMP.quoted.id"), field(probes[0], "ICMP.id"));
    }
    let last = steps.last().unwrap();
    assert_eq!(field(last, "ICMP.type"), Some(0.into()), "the server's echo reply ends it");
    assert_eq!(last["states"]["client"].as_str().map(|s| s.starts_with("hop 4:  203.0.113.5")), Some(true));
    assert!(steps.iter().any(|s| s["states"]["client"].as_str().is_some_and(|st| st.starts_with("hop 3:  *  *"))));
}
