//! `protolab serve dns` against real clients: dig (BIND's) over UDP and, for an answer too long
//! for 512 bytes, over TCP; and bad queries sent by hand (a compression loop, a label over 63
//! octets, a message cut short, QDCOUNT 65535 with one question, a silent TCP client): each a
//! malformed step and FORMERR (or no answer, when the id cannot be read), and the server goes on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

fn serve(sessions: u32) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protolab"))
        .env("LANG", "C.UTF-8")
        .env("PROTOLAB_CONFIG", "/nonexistent/protolab.toml")
        .args(["serve", "dns", "--listen", "127.0.0.1:0", "--format", "jsonl", "--sessions"])
        .arg(sessions.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("first stderr line").to_string();
    (child, addr)
}

/// The steps the server printed, once it has ended.
fn steps(mut child: std::process::Child) -> Vec<serde_json::Value> {
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn field<'a>(step: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    step["fields"].as_array()?.iter().find(|f| f["path"] == path).map(|f| &f["value"])
}

fn dig(addr: &str, args: &[&str]) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new("dig")
        .arg(format!("@{host}"))
        .args(["-p", port, "+tries=1", "+time=5"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dig_gets_the_lab_records_over_udp_and_tcp() {
    if Command::new("dig").arg("-v").output().is_err() {
        eprintln!("dig is not installed (.ci/run installs bind9-dnsutils): skipped");
        return;
    }
    // Sessions: the A query, the MX query, the TXT query over UDP, then over TCP.
    let (child, addr) = serve(4);
    assert_eq!(dig(&addr, &["mail.b.lab", "+short"]).trim(), "192.0.2.35");
    let mx = dig(&addr, &["b.lab", "MX"]);
    assert!(mx.contains("status: NOERROR") && mx.contains("flags: qr aa"), "{mx}");
    assert!(mx.contains("MX\t10 mail.b.lab."), "{mx}");
    // Without EDNS, 512 bytes: dig sees TC and asks again over TCP by itself.
    let txt = dig(&addr, &["+noedns", "b.lab", "TXT"]);
    assert!(txt.contains("Truncated, retrying in TCP mode"), "{txt}");
    assert!(txt.contains("v=spf1 mx -all") && txt.contains("ANSWER: 9"), "{txt}");
    let steps = steps(child);
    let kinds: Vec<(&str, &str)> =
        steps.iter().map(|s| (s["proto"].as_str().unwrap(), s["summary"].as_str().unwrap())).collect();
    assert!(kinds.iter().any(|(_, s)| s.contains("TC=1")), "{kinds:?}");
    let tcp: Vec<&serde_json::Value> = steps.iter().filter(|s| s["session"] == 4 && s["proto"] == "DNS").collect();
    assert_eq!(tcp.len(), 2, "the TCP query and answer: {kinds:?}");
    assert!(field(tcp[1], "DNS.tcp_length").unwrap().as_u64().unwrap() > 512);
    // dig's query: RD set, EDNS on, its id copied into the answer.
    let q = steps.iter().find(|s| s["session"] == 2 && s["from"] == "client").unwrap();
    let a = steps.iter().find(|s| s["session"] == 2 && s["from"] == "server").unwrap();
    assert_eq!(field(q, "DNS.rd"), Some(&true.into()));
    assert_eq!(field(q, "DNS.additional.0.type"), Some(&"OPT".into()));
    assert_eq!(field(q, "DNS.id"), field(a, "DNS.id"));
}

/// A query for b.lab A with id 0x4242, to be broken.
fn query() -> Vec<u8> {
    let mut q = vec![0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(&[1, b'b', 3, b'l', b'a', b'b', 0, 0, 1, 0, 1]);
    q
}

#[test]
fn bad_queries_get_formerr_and_the_server_goes_on() {
    // Sessions: six datagrams, two TCP connections.
    let (child, addr) = serve(8);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ask = |bytes: &[u8]| -> Option<Vec<u8>> {
        socket.send_to(bytes, &addr).unwrap();
        let mut buf = [0u8; 1500];
        socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    };
    let rcode = |answer: &[u8]| (u16::from_be_bytes([answer[0], answer[1]]), answer[3] & 0x0f);
    // A name that is a pointer to itself.
    let mut looped = query();
    looped.truncate(12);
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    // A label of 64 octets.
    let mut long = query();
    long.truncate(12);
    long.push(64);
    long.extend_from_slice(&[b'x'; 64]);
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    // 65535 questions announced, one sent.
    let mut many = query();
    many[4..6].copy_from_slice(&[0xff, 0xff]);
    // Cut short inside the question.
    let cut = query()[..15].to_vec();
    for bad in [&looped, &long, &many, &cut] {
        let answer = ask(bad).expect("an answer");
        assert_eq!(rcode(&answer), (0x4242, 1), "FORMERR with the id");
        assert_eq!(&answer[4..6], &[0, 0], "no question sent back");
    }
    // A TCP client that says nothing holds no one up; one that sends half a header neither.
    let silent = TcpStream::connect(&addr).unwrap();
    // Too short to hold an id: no answer at all; then a good query is answered.
    socket.send_to(&[0x42], &addr).unwrap();
    let good = ask(&query()).expect("still serving");
    assert_eq!(rcode(&good), (0x4242, 0));
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(&[0]).unwrap();
    drop(half);
    drop(silent);
    let steps = steps(child);
    let malformed: Vec<&str> = steps.iter().filter_map(|s| s["malformed"].as_str()).collect();
    assert_eq!(malformed.len(), 6, "{malformed:#?}");
    assert_eq!(malformed[0], "compression pointer at byte 12 points to byte 12, not back: a loop");
    assert!(malformed[1].contains("at most 63 octets"), "{}", malformed[1]);
    assert!(malformed[2].starts_with("QDCOUNT says 65535 questions; question 2"), "{}", malformed[2]);
    assert!(malformed[3].contains("cut short"), "{}", malformed[3]);
    assert!(malformed[4].contains("cut short in the header"), "{}", malformed[4]);
    assert_eq!(malformed[5], "the connection closed in the middle of a message");
    let formerr = steps.iter().filter(|s| field(s, "DNS.rcode") == Some(&"FORMERR".into())).count();
    assert_eq!(formerr, 4);
}

/// Our client against a real server: dnsmasq on loopback, with b.lab's records and more TXT
/// than 512 bytes hold. Its answers are decoded; the truncated one is asked again over TCP.
#[test]
fn run_dns_connect_asks_a_real_dnsmasq() {
    if Command::new("dnsmasq").arg("--version").output().is_err() {
        eprintln!("dnsmasq is not installed (.ci/run installs dnsmasq-base): skipped");
        return;
    }
    let port = {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "-d",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--mx-host=b.lab,mail.b.lab,10",
        "--host-record=mail.b.lab,192.0.2.35",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--port={port}"));
    args.push(format!("--pid-file={}", dir.path().join("pid").display()));
    args.extend(
        (1..=9).map(|i| format!("--txt-record=b.lab,token-{i}-site-verification=0123456789abcdef0123456789abcdef")),
    );
    let mut dnsmasq = Command::new("dnsmasq").args(&args).stderr(Stdio::null()).spawn().unwrap();
    // Ready once it answers.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    for _ in 0..50 {
        probe.send_to(&query(), ("127.0.0.1", port)).unwrap();
        if probe.recv(&mut [0u8; 512]).is_ok() {
            break;
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_protolab"))
        .env("PROTOLAB_CONFIG", "/nonexistent/protolab.toml")
        .args(["run", "dns", "--format", "jsonl", "--connect"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    dnsmasq.kill().unwrap();
    dnsmasq.wait().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summaries: Vec<&str> = steps.iter().map(|s| s["summary"].as_str().unwrap()).collect();
    assert!(steps.iter().all(|s| s["malformed"].is_null()), "{summaries:#?}");
    assert!(summaries.iter().any(|s| s.ends_with("mail.b.lab. A: 192.0.2.35 (AA)")), "{summaries:#?}");
    assert!(summaries.iter().any(|s| s.ends_with("b.lab. MX: 10 mail.b.lab. (AA)")), "{summaries:#?}");
    assert!(summaries.iter().any(|s| s.ends_with("b.lab. TXT: TC=1, truncated")), "{summaries:#?}");
    let tcp = steps.iter().find(|s| field(s, "DNS.tcp_length").is_some() && s["from"] == "server").expect("over TCP");
    assert_eq!(field(tcp, "DNS.ancount"), Some(&9.into()));
    let q = &steps[0];
    assert_eq!(field(q, "DNS.rd"), Some(&true.into()), "a stub asks for recursion");
}
