//! The DNS lab end to end on the lab network: the resolver walks root → lab. → b.lab. by
//! referrals with glue, gets A and MX answers with authority, a truncated TXT answer asked again
//! over TCP, and NXDOMAIN; every query has its own random id, matched by its answer; a lost
//! query is asked again; tshark reads every frame of the pcap as DNS without a fault.

mod pcap;

use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::net::sim::Faults;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::sync::mpsc;

async fn dns(faults: Faults) -> (Vec<Step>, color_eyre::Result<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = run::RunOptions { faults, ..run::RunOptions::free(Wire::Sim) };
    let exchange = run::exchange(labs::find("dns").unwrap(), opts, StepSink::new("dns", tx));
    let result = tokio::time::timeout(Duration::from_secs(60), exchange).await.expect("never hangs");
    (std::iter::from_fn(|| rx.try_recv().ok()).collect(), result)
}

fn text(step: &Step, path: &str) -> String {
    let f = step.fields.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} in {}", step.summary));
    f.display_value()
}

#[tokio::test]
async fn mail_b_lab_is_resolved_from_the_root_down() {
    let (steps, result) = dns(Faults::default()).await;
    result.unwrap();
    let msgs: Vec<&Step> = steps.iter().filter(|s| s.proto == "DNS").collect();
    let dns = &msgs;
    assert!(dns.iter().all(|s| s.malformed.is_none()), "every DNS message reads");
    let story: Vec<(&str, &str, &str)> =
        dns.iter().map(|s| (s.from.as_str(), s.to.as_str(), s.kind.as_str())).collect();
    assert_eq!(
        story,
        [
            ("client", "root", "dns.query"),
            ("root", "client", "dns.response.referral"),
            ("client", "ns.lab", "dns.query"),
            ("ns.lab", "client", "dns.response.referral"),
            ("client", "ns.b.lab", "dns.query"),
            ("ns.b.lab", "client", "dns.response.answer"),
            ("client", "ns.b.lab", "dns.query"),
            ("ns.b.lab", "client", "dns.response.answer"),
            ("client", "ns.b.lab", "dns.query"),
            ("ns.b.lab", "client", "dns.response.truncated"),
            ("client", "ns.b.lab", "dns.query.tcp"),
            ("ns.b.lab", "client", "dns.response.answer.tcp"),
            ("client", "ns.b.lab", "dns.query"),
            ("ns.b.lab", "client", "dns.response.nxdomain"),
        ]
    );
    // Each answer carries its query's id, and each query has an id of its own.
    let ids: Vec<String> = dns.iter().map(|s| text(s, "DNS.id")).collect();
    for pair in ids.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    let mut queries: Vec<&String> = ids.iter().step_by(2).collect();
    queries.sort();
    queries.dedup();
    assert!(queries.len() >= 6, "fresh ids: {ids:?}");
    // The referrals carry the glue; the answers come with authority.
    assert_eq!(text(dns[1], "DNS.authority.0.data"), "ns.lab.");
    assert_eq!(text(dns[1], "DNS.additional.0.data"), "192.0.2.20");
    assert_eq!(text(dns[1], "DNS.aa"), "false");
    assert_eq!(text(dns[3], "DNS.additional.0.data"), "192.0.2.30");
    assert_eq!(text(dns[5], "DNS.answer.0.data"), "192.0.2.35");
    assert_eq!(text(dns[5], "DNS.aa"), "true");
    assert_eq!(text(dns[7], "DNS.answer.0.data"), "10 mail.b.lab.");
    assert_eq!(text(dns[7], "DNS.additional.0.name"), "mail.b.lab.");
    // The TXT answer: cut over UDP, whole over TCP, longer than 512 bytes.
    assert_eq!(text(dns[9], "DNS.tc"), "true");
    assert_eq!(text(dns[9], "DNS.ancount"), "0");
    assert!(text(dns[11], "DNS.tcp_length").parse::<usize>().unwrap() > 512);
    assert_eq!(text(dns[11], "DNS.ancount"), "9");
    assert_eq!(text(dns[13], "DNS.rcode"), "NXDOMAIN");
    assert_eq!(text(dns[13], "DNS.authority.0.type"), "SOA");
    // The resolver's state says what each answer taught it.
    let client = |s: &Step| s.states.iter().find(|(who, _)| who == "client").map(|(_, st)| st.clone()).unwrap();
    assert_eq!(client(dns[1]), "referred to lab.: ns.lab. 192.0.2.20");
    assert_eq!(client(dns[5]), "answer: mail.b.lab. A 192.0.2.35");
    assert_eq!(client(dns[13]), "nosuch.b.lab.: no such name (NXDOMAIN)");
    // The switch floods each ARP request to every host; only the owner answers.
    let ignored = steps.iter().filter(|s| s.kind == "arp.request.ignored").count();
    let asked = steps.iter().filter(|s| s.kind == "arp.request").count();
    assert_eq!((asked, ignored), (3, 6));
    // The TCP connection opens and closes.
    assert!(steps.iter().any(|s| s.summary.starts_with("SYN ")));
    assert!(steps.iter().filter(|s| s.summary.starts_with("FIN")).count() >= 2);

    let (again, _) = self::dns(Faults::default()).await;
    let first = again.iter().find(|s| s.proto == "DNS").map(|s| text(s, "DNS.id"));
    assert_ne!(first.as_ref(), Some(&ids[0]), "the id is picked at random (1 in 65536 of a false alarm)");
}

#[tokio::test]
async fn a_lost_query_is_asked_again_with_a_new_id() {
    // Frames: 1-3 the ARP request flooded, 4 the reply, 5 the first query.
    let (steps, result) = dns(Faults { drop: vec![5], ..Faults::default() }).await;
    result.unwrap();
    let to_root: Vec<&Step> = steps.iter().filter(|s| s.proto == "DNS" && s.to == "root").collect();
    assert_eq!(to_root.len(), 2);
    assert!(to_root[0].fate.lost() && !to_root[1].fate.lost());
    assert_ne!(text(to_root[0], "DNS.id"), text(to_root[1], "DNS.id"));
    assert!(to_root[1].t_us - to_root[0].t_us >= 1_900_000, "asked again after the wait");
}

#[test]
fn tshark_reads_every_frame_as_dns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = pcap::run("dns", dir.path(), &[]) else { return };
    let tshark = |args: &[&str]| pcap::tshark(&path, args);
    let rows = tshark(&[
        "-Y",
        "dns",
        "-T",
        "fields",
        "-e",
        "dns.flags.rcode",
        "-e",
        "dns.flags.truncated",
        "-e",
        "dns.qry.name",
    ]);
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), 14, "{rows:?}");
    assert!(rows.contains(&"3\t0\tnosuch.b.lab"), "{rows:?}");
    assert!(rows.contains(&"0\t1\tb.lab"), "{rows:?}");
    let bad = tshark(&["-Y", "_ws.malformed || _ws.expert.severity >= 6291456", "-T", "fields", "-e", "frame.number"]);
    assert_eq!(bad, "");
}

/// On kernel sockets: the same questions, as a stub asks (RD=1), of the lab's server on
/// loopback; the truncated answer asked again over a TCP connection.
#[tokio::test]
async fn on_the_host_wire_a_stub_asks_the_lab_server_on_loopback() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let exchange =
        run::exchange(labs::find("dns").unwrap(), run::RunOptions::free(Wire::Host), StepSink::new("dns", tx));
    tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("never hangs").unwrap();
    let steps: Vec<Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let kinds: Vec<&str> = steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "dns.query",
            "dns.response.answer",
            "dns.query",
            "dns.response.answer",
            "dns.query",
            "dns.response.truncated",
            "dns.query.tcp",
            "dns.response.answer.tcp",
            "dns.query",
            "dns.response.nxdomain"
        ]
    );
    assert!(steps.iter().filter(|s| s.from == "client").all(|s| text(s, "DNS.rd") == "true"));
}
