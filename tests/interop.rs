//! Real peers from outside the project: curl sends mail through `protolab serve smtp`, and
//! `protolab run smtp --connect` hands a message to Python's own SMTP server (smtpd, 3.11).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn protolab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_protolab"))
}

/// Kills a child process on the way out, pass or fail.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(program: &str, probe: &[&str]) -> bool {
    Command::new(program).args(probe).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[test]
fn curl_sends_mail_through_serve() {
    assert!(have("curl", &["--version"]), "curl is needed (the CI script installs it)");
    let mut serve = Reap(
        protolab()
            .args(["serve", "smtp", "--sessions", "1", "--format", "jsonl"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(serve.0.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail.txt");
    std::fs::write(
        &mail,
        "From: carol@example.org\r\nTo: bob@protolab.test\r\nSubject: via curl\r\n\r\nHi.\r\n.dot\r\n",
    )
    .unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", &format!("smtp://{addr}"), "--mail-from", "carol@example.org"])
        .args(["--mail-rcpt", "bob@protolab.test", "--upload-file"])
        .arg(&mail)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let start = Instant::now();
    while serve.0.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "serve did not end after its session");
        std::thread::sleep(Duration::from_millis(20));
    }
    let steps = std::io::read_to_string(serve.0.stdout.take().unwrap()).unwrap();
    let codes: Vec<String> = steps
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|s| {
            s["fields"].as_array()?.iter().find(|f| f["path"] == "SMTP.reply_code").map(|f| f["value"].to_string())
        })
        .collect();
    assert_eq!(codes, ["220", "250", "250", "250", "354", "250", "221"], "{steps}");
}

#[test]
fn our_client_hands_mail_to_pythons_smtpd() {
    if !have("python3", &["-W", "ignore", "-c", "import smtpd"]) {
        // smtpd left the standard library in Python 3.12; smtplib's test covers the other side.
        eprintln!("skipped: this python3 has no smtpd module");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let _server = Reap(
        Command::new("python3")
            .args(["-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "smtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = protolab().args(["run", "smtp", "--connect", &addr]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Python SMTP proxy"), "the greeting is smtpd's own: {text}");
    assert!(text.contains("354") && text.contains("221"), "{text}");
}
