//! The ping lab end to end on the lab network: four echoes across r1, each a step on both
//! cables with its TTL one less past the router, timed by the client as the reply reaches it;
//! the identifier is this run's; a lost reply leaves its sequence number unanswered.

use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::net::sim::Faults;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::sync::mpsc;

async fn ping(faults: Faults) -> (Vec<Step>, color_eyre::Result<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = run::RunOptions { faults, ..run::RunOptions::free(Wire::Sim) };
    let exchange = run::exchange(labs::find("ping").unwrap(), opts, StepSink::new("ping", tx));
    let result = tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("never hangs");
    (std::iter::from_fn(|| rx.try_recv().ok()).collect(), result)
}

fn field(step: &Step, path: &str) -> u64 {
    step.number(path).unwrap_or_else(|| panic!("{path} in {}", step.summary))
}

#[tokio::test]
async fn four_echoes_cross_the_router_and_come_back() {
    let (steps, result) = ping(Faults::default()).await;
    result.unwrap();
    let echoes = |kind: &str, from: &str, to: &str| -> Vec<&Step> {
        steps.iter().filter(|s| s.kind.starts_with(kind) && s.from == from && s.to == to).collect()
    };
    let requests = echoes("icmp.echo-request", "client", "r1");
    let forwarded = echoes("icmp.echo-request", "r1", "server");
    let replies = echoes("icmp.echo-reply", "server", "r1");
    let back = echoes("icmp.echo-reply", "r1", "client");
    for hop in [&requests, &forwarded, &replies, &back] {
        assert_eq!(hop.iter().map(|s| field(s, "ICMP.seq")).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }
    assert!(requests.iter().all(|s| field(s, "IPv4.ttl") == 64));
    assert!(forwarded.iter().all(|s| field(s, "IPv4.ttl") == 63 && s.forwarded));
    assert!(back.iter().all(|s| field(s, "IPv4.ttl") == 63));
    // One identifier for the run, the same in every echo.
    let ident = field(requests[0], "ICMP.id");
    assert!(steps.iter().filter(|s| s.proto == "ICMP").all(|s| field(s, "ICMP.id") == ident));
    // The client timed each reply as it arrived, and says so with the reply's step.
    for reply in &back {
        let state = &reply.states[0];
        assert_eq!(state.0, "client");
        let seq = field(reply, "ICMP.seq");
        assert!(state.1.starts_with(&format!("icmp_seq={seq} ttl=63 time=")), "{state:?}");
        assert!(reply.notes[0].starts_with("forwarded by r1: TTL 64 → 63"), "{:?}", reply.notes);
    }
    // Each side asked its cable's other end for a MAC once: the client its gateway, r1 the server.
    let arps: Vec<(&str, &str)> =
        steps.iter().filter(|s| s.proto == "ARP").map(|s| (s.from.as_str(), s.to.as_str())).collect();
    assert_eq!(arps, [("client", "r1"), ("r1", "client"), ("r1", "server"), ("server", "r1")]);
    // The steps are in time order, a second apart per request on the lab clock.
    let t: Vec<u64> = requests.iter().map(|s| s.t_us).collect();
    assert!(t.windows(2).all(|w| w[1] - w[0] >= 900_000), "{t:?}");

    let (again, _) = ping(Faults::default()).await;
    let other = again.iter().find(|s| s.proto == "ICMP").map(|s| field(s, "ICMP.id"));
    // Random each run (one chance in 65536 of a false alarm).
    assert_ne!(other, Some(ident), "the identifier is picked at random");
}

#[tokio::test]
async fn a_lost_reply_leaves_its_sequence_number_unanswered() {
    // Frames: 1-2 ARP, 3 request, 4-5 ARP, 6 forwarded request, 7 reply, 8 forwarded reply.
    let (steps, result) = ping(Faults { drop: vec![8], ..Faults::default() }).await;
    result.unwrap();
    let lost = steps.iter().find(|s| s.seq == 8).unwrap();
    assert_eq!((lost.kind.as_str(), lost.from.as_str(), lost.to.as_str()), ("icmp.echo-reply", "r1", "client"));
    assert!(lost.fate.lost());
    let answered: Vec<u64> = steps
        .iter()
        .filter(|s| s.kind == "icmp.echo-reply" && s.to == "client" && !s.fate.lost())
        .map(|s| field(s, "ICMP.seq"))
        .collect();
    assert_eq!(answered, [2, 3, 4], "no reply for 1, and none sent again");
    let next = steps.iter().find(|s| s.kind == "icmp.echo-request" && field(s, "ICMP.seq") == 2).unwrap();
    assert_eq!(next.states[0].1, "icmp_seq=2 sent; icmp_seq=1 got no reply");
}

#[tokio::test]
async fn no_reply_at_all_fails_with_a_reason() {
    // Every request lost on the first cable: frames 3, 4, 5, 6 (the ARP is done once).
    let (_, result) = ping(Faults { drop: vec![3, 4, 5, 6], ..Faults::default() }).await;
    assert_eq!(result.unwrap_err().to_string(), "no echo reply: 4 requests, none answered");
}

/// tshark reads every frame of the run's pcap as what it is, with good checksums and nothing
/// malformed; the forwarded copy of each packet has a TTL one less. A flipped byte is caught
/// by tshark too (so the check can fail), and r1, which checks only the IPv4 header, passes
/// the damaged echo on for the server to throw away.
#[test]
fn tshark_reads_every_frame_of_the_pcap() {
    if std::process::Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("tshark is not installed (.ci/run installs it): skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = |faults: &[&str]| -> Vec<String> {
        let path = dir.path().join("ping.pcap");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_protolab"))
            .args(["run", "ping", "--pcap"])
            .arg(&path)
            .args(faults)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let all = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args([
                "-o",
                "ip.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "ip.ttl",
                "-e",
                "icmp.seq",
            ])
            .output()
            .unwrap();
        let rows = String::from_utf8(all.stdout).unwrap();
        // 20 frames; 18 when the first request is damaged and never answered.
        assert!(rows.lines().count() >= 18, "every frame: {rows}");
        assert!(rows.contains("\t64\t1\n") && rows.contains("\t63\t1\n"), "{rows}");
        let filter =
            "_ws.malformed || _ws.expert.severity >= 6291456 || ip.checksum.status == 0 || icmp.checksum.status == 0";
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-o", "ip.check_checksum:TRUE", "-Y", filter, "-T", "fields", "-e", "frame.number"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    };
    assert_eq!(bad(&[]), Vec::<String>::new());
    assert_eq!(bad(&["--corrupt", "3"]), ["3", "6"]);
}

/// r1's first ARP request for the server is lost: the request waits at r1, which asks again
/// with the next packet a second later, and both go; the first reply comes a second late.
#[tokio::test]
async fn a_lost_arp_request_at_the_router_is_asked_again() {
    let (steps, result) = ping(Faults { drop: vec![4], ..Faults::default() }).await;
    result.unwrap();
    let asks = steps.iter().filter(|s| s.kind == "arp.request" && s.from == "r1").count();
    assert_eq!(asks, 2, "asked again");
    let back: Vec<u64> = steps
        .iter()
        .filter(|s| s.kind == "icmp.echo-reply" && s.to == "client")
        .map(|s| field(s, "ICMP.seq"))
        .collect();
    assert_eq!(back, [1, 2, 3, 4], "every echo answered in the end");
    let first = steps.iter().find(|s| s.kind == "icmp.echo-reply" && s.to == "client").unwrap();
    let time: f64 = first.states[0].1.split("time=").nth(1).unwrap().trim_end_matches(" ms").parse().unwrap();
    assert!(time >= 1000.0, "held at r1 for a second: {time} ms");
}

/// ping on the host wire: the kernel's own echo replies from 127.0.0.1, each matched to its
/// request by identifier and sequence number. Root here has CAP_NET_RAW, which the default
/// ping_group_range ("1 0") makes the way in: a raw socket; a user without either is told
/// how to allow it (exit 1).
#[test]
fn on_the_host_wire_the_kernel_answers() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protolab"))
        .args(["run", "ping", "--wire", "host", "--format", "jsonl"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(err.contains("net.ipv4.ping_group_range"), "{err}");
        eprintln!("no ICMP socket for this user here: {err}");
        return;
    }
    let steps: Vec<Step> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| Step { summary: v["summary"].as_str().unwrap().into(), ..step_from(&v) })
        .collect();
    let requests: Vec<&Step> = steps.iter().filter(|s| s.from == "client").collect();
    let replies: Vec<&Step> = steps.iter().filter(|s| s.from == "server").collect();
    assert_eq!(requests.iter().map(|s| field(s, "ICMP.seq")).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(replies.iter().map(|s| field(s, "ICMP.seq")).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let ident = field(requests[0], "ICMP.id");
    assert!(steps.iter().all(|s| field(s, "ICMP.id") == ident));
    assert!(replies.iter().all(|s| s.states[0].1.contains(" time=")), "timed");
}

/// In a network namespace whose ping_group_range admits every group, the datagram socket is
/// used; with the default range, a user without
/// CAP_NET_RAW gets the reason and the way to allow it.
#[test]
fn an_icmp_datagram_socket_where_allowed_and_a_clear_refusal_where_not() {
    if !nix_root() {
        eprintln!("needs root for a network namespace: skipped");
        return;
    }
    let ns = format!("protolab-ping-{}", std::process::id());
    let sh = |cmd: &str| std::process::Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    if !sh(&format!("ip netns add {ns} && ip netns exec {ns} ip link set lo up")).status.success() {
        eprintln!("ip netns is not available here: skipped");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_protolab");
    sh(&format!("ip netns exec {ns} sysctl -qw net.ipv4.ping_group_range='0 2147483647'"));
    let allowed = sh(&format!("ip netns exec {ns} {bin} run ping --wire host --format jsonl"));
    sh(&format!("ip netns exec {ns} sysctl -qw net.ipv4.ping_group_range='1 0'"));
    let refused = sh(&format!(
        "ip netns exec {ns} setpriv --reuid 65534 --regid 65534 --clear-groups {bin} run ping --wire host"
    ));
    sh(&format!("ip netns del {ns}"));
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    // A datagram socket hands over the ICMP message alone, without its IPv4 header: the TTL
    // comes beside it (IP_RECVTTL), as on a raw socket, where it is read from the header.
    let out = String::from_utf8(allowed.stdout).unwrap();
    let replies: Vec<&str> = out.lines().filter(|l| l.contains("\"echo reply ")).collect();
    assert_eq!(replies.len(), 4, "{out}");
    assert!(replies.iter().all(|l| l.contains(" ttl=64 time=")), "{out}");
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8(refused.stderr).unwrap();
    assert!(
        err.contains("net.ipv4.ping_group_range (now 1 0)") && err.contains("sysctl -w"),
        "one line that says why and how: {err}"
    );
}

fn nix_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A step from its JSONL line (the fields and states a test reads).
fn step_from(v: &serde_json::Value) -> Step {
    let mut step =
        Step { from: v["from"].as_str().unwrap().into(), to: v["to"].as_str().unwrap().into(), ..Step::default() };
    for f in v["fields"].as_array().unwrap() {
        step.fields.push(protolab::session::Field::new(f["path"].as_str().unwrap(), f["value"].clone(), 0..0));
    }
    if let Some(states) = v["states"].as_object() {
        step.states = states.iter().map(|(k, s)| (k.clone(), s.as_str().unwrap().to_string())).collect();
    }
    step
}
