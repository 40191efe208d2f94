//! The command line as outside tools use it: the JSONL contract, exit codes, `serve`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The binary, in English and with the defaults, whatever the locale and configuration of
/// whoever runs the tests.
fn protolab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protolab"));
    command.env_remove("LC_ALL").env_remove("LC_MESSAGES").env("LANG", "C.UTF-8");
    // Nobody's own configuration file: the defaults.
    command.env("PROTOLAB_CONFIG", "/nonexistent/protolab.toml");
    command
}

/// `protolab serve ARGS` with its stdout as given and stderr piped: the child, the address
/// its first stderr line announces, and the rest of its stderr.
fn serve(args: &[&str], stdout: Stdio) -> (std::process::Child, String, BufReader<std::process::ChildStderr>) {
    let mut child = protolab().arg("serve").args(args).stdout(stdout).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("first stderr line").to_string();
    (child, addr, err)
}

/// The contract's keys (DESIGN.md), and those of them that may be left out.
const OPTIONAL: &[&str] = &["conn", "truncated", "carried_by", "states"];
const KEYS: &[&str] = &[
    "seq",
    "t_us",
    "lab",
    "session",
    "conn",
    "layer",
    "proto",
    "from",
    "to",
    "summary",
    "len",
    "hex",
    "truncated",
    "fields",
    "carried_by",
    "states",
    "malformed",
];

#[test]
fn labs_lists_every_lab() {
    let out = protolab().arg("labs").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ws") && text.contains("RFC 6455"));
    assert!(text.contains("smtp") && text.contains("RFC 5321"));
}

#[test]
fn run_ws_jsonl_follows_the_contract() {
    let out = protolab().args(["run", "ws", "--format", "jsonl", "--no-capture"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(steps.len() >= 10);
    for (i, s) in steps.iter().enumerate() {
        let obj = s.as_object().unwrap();
        for k in obj.keys() {
            assert!(KEYS.contains(&k.as_str()), "unexpected key {k}");
        }
        for k in KEYS.iter().filter(|k| !OPTIONAL.contains(k)) {
            assert!(obj.contains_key(*k), "missing {k} in {s}");
        }
        assert_eq!(s["seq"], i as u64 + 1);
        assert_eq!(s["lab"], "ws");
        assert_eq!(s["session"], 1);
        let hex = s["hex"].as_str().unwrap();
        assert_eq!(hex.len(), 2 * s["len"].as_u64().unwrap() as usize);
        assert!(hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        for f in s["fields"].as_array().unwrap() {
            let r = f["range"].as_array().unwrap();
            assert!(r[0].as_u64() <= r[1].as_u64() && r[1].as_u64().unwrap() as usize * 2 <= hex.len());
        }
    }
    let field = |s: &serde_json::Value, path: &str| {
        s["fields"].as_array().unwrap().iter().find(|f| f["path"] == path).map(|f| f["value"].clone())
    };
    // Without a capture, the socket API's view: connect() first, then the messages.
    assert_eq!(
        (steps[0]["layer"].as_str(), steps[0]["proto"].as_str(), steps[0]["len"].as_u64()),
        (Some("transport"), Some("TCP"), Some(0))
    );
    assert!(steps[0]["summary"].as_str().unwrap().starts_with("connect() to 127.0.0.1:"), "{}", steps[0]);
    assert_eq!(steps[1]["layer"], "application");
    assert_eq!(steps[1]["proto"], "HTTP");
    assert_eq!(field(&steps[1], "HTTP.method").unwrap(), "GET");
    assert_eq!(field(&steps[2], "HTTP.status").unwrap(), 101);
    assert_eq!(field(&steps[3], "WebSocket.opcode").unwrap(), "text");
    assert_eq!(field(&steps[3], "WebSocket.masked").unwrap(), true);
    assert_eq!(steps.last().unwrap()["layer"], "transport");
}

#[test]
fn run_text_is_one_line_a_step() {
    let out = protolab().args(["run", "ws", "--no-capture"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let second = text.lines().nth(1).unwrap();
    assert!(
        second.starts_with("[") && second.contains("client → server") && second.contains("HTTP  GET /lab"),
        "{second}"
    );
}

#[test]
fn unknown_lab_and_bad_flags_exit_2() {
    let out = protolab().args(["run", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown lab 'nope'"));
    assert_eq!(protolab().args(["run", "ws", "--format", "xml"]).output().unwrap().status.code(), Some(2));
}

#[test]
fn unreachable_server_exits_1_with_one_line() {
    // Port 1 on loopback: nothing listens there.
    let out = protolab().args(["run", "ws", "--connect", "127.0.0.1:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect to 127.0.0.1:1"), "{err}");
}

#[test]
fn serve_announces_its_address_and_serves_a_session() {
    let (mut child, addr, _err) =
        serve(&["ws", "--listen", "127.0.0.1:0", "--sessions", "1", "--format", "jsonl"], Stdio::piped());
    // Our own lab client, run against the served address.
    let out = protolab().args(["run", "ws", "--connect", &addr, "--format", "jsonl"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = wait(&mut child, Duration::from_secs(20));
    assert!(status.success());
    let served = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert!(served.lines().count() >= 10, "{served}");
    assert!(served.contains("\"Switching Protocols\""));
}

fn wait(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn peer_vanishing_mid_handshake_exits_1_with_the_reason() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        // Accept, take a few bytes of the request, and vanish.
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 16];
        let _ = std::io::Read::read(&mut s, &mut buf);
    });
    let out = protolab().args(["run", "ws", "--connect", &addr]).output().unwrap();
    peer.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the upgrade failed"), "{err}");
    // The steps up to the break were still printed: the request went out.
    assert!(String::from_utf8_lossy(&out.stdout).contains("GET /lab"));
}

#[test]
fn run_tcp_on_the_sim_wire_writes_a_pcap_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcp.pcap");
    let out = protolab().args(["run", "tcp", "--format", "jsonl", "--pcap"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let field = |s: &serde_json::Value, path: &str| {
        s["fields"].as_array().unwrap().iter().find(|f| f["path"] == path).map(|f| f["value"].clone())
    };
    let syn = steps.iter().find(|s| field(s, "TCP.flags") == Some("SYN".into())).expect("a SYN");
    assert_eq!(syn["layer"], "transport");
    assert_eq!(field(syn, "IPv4.src").unwrap(), "192.0.2.1");
    assert!(field(syn, "TCP.seq").unwrap().is_u64());

    let file = std::fs::File::open(&path).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    assert_eq!(reader.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.unwrap().data.into_owned());
    }
    assert_eq!(frames.len(), steps.len(), "one pcap record per frame step");
    for (frame, step) in frames.iter().zip(&steps) {
        assert_eq!(protolab::session::hex(frame), step["hex"].as_str().unwrap());
    }
}

#[test]
fn faults_and_pcap_need_the_sim_wire() {
    let out = protolab().args(["run", "ws", "--drop", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a command line that cannot work is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--wire sim"));
}

#[test]
fn serve_smtp_shows_a_pipelined_client_in_order() {
    use std::io::{Read, Write};
    let (mut child, addr, _err) = serve(&["smtp", "--sessions", "1"], Stdio::piped());
    // Everything at once, text before the 354 arrives: the steps must still make sense.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@protolab.test>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("250 OK queued") && answer.contains("221"), "{answer}");
    drop(s);
    assert!(wait(&mut child, Duration::from_secs(20)).success());
    let steps = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let text = steps.lines().position(|l| l.contains("message text, 24 bytes")).expect(&steps);
    let quit = steps.lines().position(|l| l.contains("client → server   SMTP  QUIT")).expect(&steps);
    assert!(text < quit, "{steps}");
    assert!(!steps.contains("!!"), "nothing malformed: {steps}");
    // Several clients' lines interleave in `serve`: each names its session.
    assert!(steps.lines().all(|l| l.contains("] #1 ")), "{steps}");
}

#[test]
fn a_lab_that_cannot_run_on_a_wire_says_so_before_anything_starts() {
    for args in [
        &["run", "dhcp", "--wire", "host"][..],
        &["run", "dhcp", "--connect", "127.0.0.1:67"],
        &["run", "dhcp", "--wire", "host", "--connect", "127.0.0.1:67"],
        &["serve", "dhcp"],
    ] {
        let out = protolab().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed steps: {}", String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("--interface IF") && err.contains("lab network"), "{args:?}: {err}");
    }
}

/// `--user` logs in to a real POP3 server: a real one needs it, nothing else takes it.
#[test]
fn an_account_goes_with_run_pop3_connect_only() {
    for (args, says) in [
        (&["run", "pop3", "--connect", "127.0.0.1:1"][..], "a real mail server needs an account"),
        (&["run", "smtp", "--user", "bob:lab"], "--user logs in to a real server"),
        (&["run", "pop3", "--user", "bob:lab"], "--user logs in to a real server"),
    ] {
        let out = protolab().args(args).env_remove("PROTOLAB_PASSWORD").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = protolab()
        .args(["run", "pop3", "--connect", "127.0.0.1:1", "--user", "bob"])
        .env_remove("PROTOLAB_PASSWORD")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("PROTOLAB_PASSWORD"));
    // With the password from the environment the command line is right: the connect fails.
    let out = protolab()
        .args(["run", "pop3", "--connect", "127.0.0.1:1", "--user", "bob"])
        .env("PROTOLAB_PASSWORD", "lab")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn labs_says_what_each_lab_shows_and_where_it_runs() {
    let out = protolab().arg("labs").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let dhcp = text.lines().find(|l| l.starts_with("dhcp")).unwrap();
    assert!(dhcp.contains("INFORM") && dhcp.contains(" sim "), "{dhcp}");
    let tcp = text.lines().find(|l| l.starts_with("tcp")).unwrap();
    assert!(tcp.contains("sim,host") && tcp.contains("TIME-WAIT"), "{tcp}");
    // Each lab's network, in the ladder's order.
    let networks = text.split_once("THE LAB NETWORK OF EACH LAB").unwrap().1;
    let line = |lab: &str| networks.lines().find(|l| l.starts_with(&format!("{lab} "))).unwrap().to_string();
    assert!(line("traceroute").ends_with(
        "client 192.0.2.1 ─ r1 (192.0.2.254, 198.51.100.1) ─ r2 (198.51.100.2, 198.51.100.5) \
         ─ r3 (198.51.100.6, 203.0.113.254; sends no ICMP errors) ─ server 203.0.113.5"
    ));
    assert!(line("ping").ends_with("client 192.0.2.1 ─ r1 (192.0.2.254, 203.0.113.254) ─ server 203.0.113.5"));
    // A LAN among cables, in brackets.
    assert!(line("portscan").ends_with(
        "[scanner 192.0.2.1 · web 192.0.2.2 · mail 192.0.2.3 · r1 (192.0.2.6, 203.0.113.254)] ─ vault 203.0.113.5"
    ));
    assert!(line("dhcp").ends_with("client (no address yet: DHCP) ─ server 192.0.2.2"));
}

#[test]
fn host_wire_shows_the_kernels_segments_or_says_how_to() {
    let out = protolab().args(["run", "ws", "--format", "jsonl"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let field = |s: &serde_json::Value, path: &str| {
        s["fields"].as_array().unwrap().iter().find(|f| f["path"] == path).map(|f| f["value"].clone())
    };
    if err.contains("CAP_NET_RAW") {
        // No privileges: one line says what is missing and how to grant it; the lab still runs.
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("setcap cap_net_raw+ep"), "{err}");
        assert!(steps[0]["summary"].as_str().unwrap().starts_with("connect() to "), "{}", steps[0]);
        assert_eq!(steps[1]["proto"], "HTTP");
        return;
    }
    // Captured: the kernel's own handshake comes first, with ack = peer's seq + 1.
    let flags: Vec<String> =
        steps.iter().take(3).map(|s| field(s, "TCP.flags").unwrap().as_str().unwrap().to_string()).collect();
    assert_eq!(flags, ["SYN", "SYN,ACK", "ACK"], "{steps:#?}");
    let seq = |s: &serde_json::Value| field(s, "TCP.seq").unwrap().as_u64().unwrap();
    let ack = |s: &serde_json::Value| field(s, "TCP.ack").unwrap().as_u64().unwrap();
    assert_eq!(ack(&steps[1]), (seq(&steps[0]) + 1) % (1 << 32));
    assert_eq!(ack(&steps[2]), (seq(&steps[1]) + 1) % (1 << 32));
    assert_eq!((steps[0]["from"].as_str(), steps[1]["from"].as_str()), (Some("client"), Some("server")));
    assert!(steps.iter().any(|s| field(s, "TCP.flags").is_some_and(|f| f.as_str().unwrap().contains("FIN"))));
    // Real FIN segments replace the zero-byte FIN steps.
    assert!(steps.iter().all(|s| s["len"].as_u64().unwrap() > 0), "no zero-byte steps when captured");
}

#[test]
fn the_lease_clock_is_adjustable() {
    // At ×60 a 120 s lease renews at T1 after 1 s of network time (3 s at the default ×20).
    let out = protolab().args(["run", "dhcp", "--lease-speedup", "60", "--format", "jsonl"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kind_of = |s: &serde_json::Value| s["summary"].as_str().unwrap().to_string();
    let ack = steps.iter().find(|s| kind_of(s).starts_with("ACK")).unwrap();
    let renew = steps.iter().find(|s| kind_of(s).contains(" renew ")).unwrap();
    let secs = (renew["t_us"].as_u64().unwrap() - ack["t_us"].as_u64().unwrap()) as f64 / 1e6;
    assert!((0.9..1.8).contains(&secs), "T1 came {secs:.2} s after the ACK");
    assert_eq!(protolab().args(["run", "dhcp", "--lease-speedup", "0"]).output().unwrap().status.code(), Some(2));
}

/// The capability each thread of a process holds in its effective set, read from /proc.
fn effective_caps(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim();
            u64::from_str_radix(hex, 16).unwrap()
        })
        .collect()
}

/// Started with CAP_NET_RAW (as root here), the process keeps the capture socket but gives the
/// capability up in every thread, the runtime's included; a lab on a real interface keeps it.
#[test]
fn no_thread_keeps_cap_net_raw_once_the_capture_socket_is_made() {
    const CAP_NET_RAW: u64 = 1 << 13;
    if effective_caps(std::process::id()).iter().all(|caps| caps & CAP_NET_RAW == 0) {
        eprintln!("skipped: this test process has no CAP_NET_RAW to give up");
        return;
    }
    let (mut child, _addr, _err) = serve(&["ws", "--listen", "127.0.0.1:0", "--sessions", "1"], Stdio::null());
    let caps = effective_caps(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(caps.len() > 1, "the runtime's threads are running: {caps:x?}");
    assert!(caps.iter().all(|c| c & CAP_NET_RAW == 0), "{caps:x?}");
}

/// A session that ends badly is told on stderr when it ends, not when the next client comes.
#[test]
fn serve_tells_a_session_that_ended_at_once() {
    use std::io::Read;
    let (mut child, addr, mut err) = serve(&["smtp", "--listen", "127.0.0.1:0"], Stdio::null());
    let mut client = std::net::TcpStream::connect(&addr).unwrap();
    let mut greeting = [0u8; 64];
    let _ = client.read(&mut greeting).unwrap();
    // Gone in the middle of the dialogue, without QUIT.
    drop(client);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = err.read_line(&mut line);
        let _ = tx.send(line);
    });
    let told = rx.recv_timeout(Duration::from_secs(5));
    child.kill().unwrap();
    child.wait().unwrap();
    let told = told.expect("the session's end was not told");
    assert!(told.starts_with("session 1 ("), "{told}");
}

/// `serve smtp | (sleep 600)`: a stdout nobody reads stops no client, and SIGINT still ends
/// the process at once, saying on stderr how many steps it could not write.
#[test]
fn serve_with_a_stdout_nobody_reads_serves_on_and_obeys_sigint() {
    use std::io::{Read, Write};
    let (mut child, addr, err) = serve(&["smtp", "--listen", "127.0.0.1:0", "--format", "jsonl"], Stdio::piped());
    let _unread = child.stdout.take().unwrap();
    // Far more output than a pipe holds (64 KiB): each client's session is a few KiB of JSON.
    for i in 0..40 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"EHLO unread.lab\r\n").unwrap();
        for _ in 0..20 {
            s.write_all(b"NOOP\r\n").unwrap();
        }
        s.write_all(b"QUIT\r\n").unwrap();
        let mut replies = String::new();
        s.read_to_string(&mut replies).unwrap_or_else(|e| panic!("client {i} was not served: {e}"));
        assert!(replies.contains("221 "), "client {i}: {replies}");
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait(&mut child, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    let told = std::io::read_to_string(err).unwrap();
    assert!(told.contains("interrupted") && told.contains("still queued not written"), "{told}");
}

/// `labs` speaks the locale's language (`LANG=ko_KR.UTF-8`) or the one `--lang` names, its
/// columns aligned by display width.
#[test]
fn labs_speaks_korean_where_asked() {
    let korean = protolab().env("LANG", "ko_KR.UTF-8").arg("labs").output().unwrap();
    let text = String::from_utf8(korean.stdout).unwrap();
    assert!(text.starts_with("실습"), "{text}");
    assert!(text.contains("3-way 핸드셰이크"), "{text}");
    let flag = protolab().args(["labs", "--lang", "ko"]).output().unwrap();
    assert_eq!(String::from_utf8(flag.stdout).unwrap(), text);
    let english = protolab().env("LANG", "ko_KR.UTF-8").args(["labs", "--lang", "en"]).output().unwrap();
    assert!(String::from_utf8(english.stdout).unwrap().starts_with("LAB "));
    // The RFC column starts at the same display column in the header and the rows.
    let column = |line: &str| {
        let at = line.find("RFC").unwrap();
        line[..at].chars().map(|c| if c > '\u{1100}' { 2 } else { 1 }).sum::<usize>()
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(column(lines[0]), column(lines.iter().find(|l| l.starts_with("tcp")).unwrap()));
}

/// `config --print` shows each setting and where it came from; a config file with an unknown
/// key or a wrong value is a usage error (exit 2) naming the file, the line and the key.
#[test]
fn config_print_and_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "theme = \"light\"\nspeed = 2\n").unwrap();
    let out = protolab().env("PROTOLAB_CONFIG", &path).args(["config", "--print"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.contains("theme = \"light\"") && text.contains("# the config file"), "{text}");
    assert!(text.contains("lang = \"en\""), "{text}");
    std::fs::write(&path, "lang = \"ko\"\nspeed = \"fast\"\n").unwrap();
    for args in [&["config", "--print"][..], &["tui"][..]] {
        let out = protolab().env("PROTOLAB_CONFIG", &path).args(args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with(&format!("protolab: config {}:2: ", path.display())), "{err}");
        assert!(err.contains("speed") || err.contains("fast"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The step contract speaks English whatever the locale: a Korean screen says a malformed
/// reason in Korean, JSONL and the text transcript keep the English reason word for word. A
/// corrupted data segment fails its TCP checksum.
#[test]
fn malformed_reasons_stay_english_in_a_korean_locale() {
    let hangul = |text: &str| text.chars().any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c));
    let run = |format: &str| {
        let out = protolab()
            .env("LANG", "ko_KR.UTF-8")
            .args(["run", "tcp", "--corrupt", "4", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let jsonl = run("jsonl");
    assert!(!hangul(&jsonl), "{jsonl}");
    let steps: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let reasons: Vec<&str> = steps.iter().filter_map(|s| s["malformed"].as_str()).collect();
    assert_eq!(reasons.len(), 1, "{jsonl}");
    let (sent, expected) = reasons[0].strip_prefix("TCP checksum 0x").unwrap().split_once(" should be 0x").unwrap();
    assert!(
        [sent, expected].iter().all(|h| h.len() == 4 && h.chars().all(|c| c.is_ascii_hexdigit())),
        "{}",
        reasons[0]
    );
    assert!(steps.iter().all(|s| s.get("notes").is_none()), "notes are not part of the contract");
    let text = run("text");
    assert!(!hangul(&text) && text.contains("  !! TCP checksum 0x"), "{text}");
}
