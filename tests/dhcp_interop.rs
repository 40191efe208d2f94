//! DHCP with real peers on a real (virtual) link: two network namespaces this test creates,
//! joined by a veth pair. busybox's udhcpc gets a lease from `protolab serve dhcp`, and
//! `protolab run dhcp --wire host` gets one from dnsmasq. Needs root (for the namespaces) and
//! the two programs, which .ci/run installs; without them the tests say why and pass.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn protolab() -> String {
    env!("CARGO_BIN_EXE_protolab").to_string()
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Two namespaces and a veth pair between them; everything is removed on drop.
struct Link {
    server_ns: String,
    client_ns: String,
    server_if: String,
    client_if: String,
}

impl Link {
    /// `None` (with the reason printed) where the machine cannot do it.
    fn new(tag: &str) -> Option<Link> {
        let id = std::process::id() % 100_000;
        let link = Link {
            server_ns: format!("pl-{tag}-s-{id}"),
            client_ns: format!("pl-{tag}-c-{id}"),
            server_if: format!("pl{tag}s{id}"),
            client_if: format!("pl{tag}c{id}"),
        };
        let steps: [&[&str]; 8] = [
            &["ip", "netns", "add", &link.server_ns],
            &["ip", "netns", "add", &link.client_ns],
            &["ip", "link", "add", &link.server_if, "type", "veth", "peer", "name", &link.client_if],
            &["ip", "link", "set", &link.server_if, "netns", &link.server_ns],
            &["ip", "link", "set", &link.client_if, "netns", &link.client_ns],
            &["ip", "-n", &link.server_ns, "addr", "add", "192.0.2.2/24", "dev", &link.server_if],
            &["ip", "-n", &link.server_ns, "link", "set", &link.server_if, "up"],
            &["ip", "-n", &link.client_ns, "link", "set", &link.client_if, "up"],
        ];
        for step in steps {
            if !sh(step) {
                eprintln!("skipped: cannot {} (needs root and iproute2)", step.join(" "));
                return None;
            }
        }
        Some(link)
    }

    fn in_ns(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting the namespaces removes the veth pair with them.
        sh(&["ip", "netns", "del", &self.server_ns]);
        sh(&["ip", "netns", "del", &self.client_ns]);
    }
}

/// Kills a child on the way out.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "did not end within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn udhcpc_gets_a_lease_from_serve_dhcp() {
    if !sh(&["busybox", "udhcpc", "--help"]) && !sh(&["which", "busybox"]) {
        eprintln!("skipped: busybox (udhcpc) is not installed");
        return;
    }
    let Some(link) = Link::new("u") else { return };
    let mut server = Reap(
        link.in_ns(
            &link.server_ns,
            &[&protolab(), "serve", "dhcp", "--interface", &link.server_if, "--sessions", "1", "--format", "jsonl"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = link
        .in_ns(
            &link.client_ns,
            &["busybox", "udhcpc", "-i", &link.client_if, "-n", "-q", "-f", "-t", "5", "-s", "/bin/true"],
        )
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "udhcpc: {said}");
    assert!(said.contains("lease of 192.0.2.10 obtained from 192.0.2.2"), "{said}");
    assert!(wait(&mut server.0, Duration::from_secs(20)).success(), "serve ends after its session");
    let steps = std::io::read_to_string(server.0.stdout.take().unwrap()).unwrap();
    let types: Vec<String> = steps
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|s| {
            s["fields"]
                .as_array()?
                .iter()
                .find(|f| f["path"] == "DHCP.message_type")
                .map(|f| f["value"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(types, ["DISCOVER", "OFFER", "REQUEST", "ACK"], "{steps}");
}

#[test]
fn run_dhcp_on_a_real_link_gets_a_lease_from_dnsmasq() {
    if !sh(&["which", "dnsmasq"]) {
        eprintln!("skipped: dnsmasq is not installed");
        return;
    }
    let Some(link) = Link::new("d") else { return };
    let dir = tempfile::tempdir().unwrap();
    let leases = dir.path().join("leases");
    let pid = dir.path().join("pid");
    let _dnsmasq = Reap(
        link.in_ns(&link.server_ns, &["dnsmasq", "--no-daemon", "--port=0", "--no-ping", "--bind-interfaces"])
            .arg(format!("--interface={}", link.server_if))
            .arg("--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,2m")
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .arg(format!("--pid-file={}", pid.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(700));
    let out = link
        .in_ns(
            &link.client_ns,
            &[&protolab(), "run", "dhcp", "--wire", "host", "--interface", &link.client_if, "--format", "jsonl"],
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("lease: 192.0.2.5") || err.contains("lease: 192.0.2.6"), "{err}");
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let field = |s: &serde_json::Value, p: &str| {
        s["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .map(|f| f["value"].as_str().unwrap_or_default().to_string())
    };
    let types: Vec<String> = steps.iter().filter_map(|s| field(s, "DHCP.message_type")).collect();
    assert_eq!(types, ["DISCOVER", "OFFER", "REQUEST", "ACK", "RELEASE"]);
    let xid = field(&steps[0], "DHCP.xid").unwrap();
    assert!(steps[..4].iter().all(|s| field(s, "DHCP.xid").as_deref() == Some(&xid)));
    assert!(steps.iter().all(|s| s["malformed"].is_null()), "offloaded checksums are notes, not faults");
}
