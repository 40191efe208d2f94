//! Mail over TLS end to end over real sockets. SMTP: the submission story (a MAIL refused in the
//! clear, STARTTLS, the TLS handshake, EHLO again, AUTH PLAIN) and TLS from the first byte;
//! POP3 with STLS and on its TLS port, IMAP with STARTTLS (LOGINDISABLED before it) and on its TLS
//! port; on both wires, the records named and opened, each mail step naming the record that
//! carried it. Python's smtplib, poplib and imaplib and curl against `serve` trusting the lab CA
//! that `protolab ca` prints; our clients against Dovecot with TLS; tshark opening the run's pcap
//! with its `--keylog`; a plaintext client on a TLS port, TLS on a plaintext port, and a client
//! that stops mid-handshake.

use protolab::labs::Lab;
use protolab::labs::imap::Imap;
use protolab::labs::pop3::Pop3;
use protolab::labs::run::{RunOptions, exchange};
use protolab::labs::smtp::{Mailbox, Smtp};
use protolab::net::Wire;
use protolab::session::{Layer, Step, StepSink};
use protolab::tls::Mode;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

mod dovecot;

const LIMIT: Duration = Duration::from_secs(30);

/// This process keeps its lab CA in a directory of its own, not in the user's data directory.
fn ca_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap()).path().to_path_buf();
    protolab::tls::set_ca_dir(dir.join("ca"));
    dir
}

async fn run(mode: Mode, wire: Wire) -> Vec<Step> {
    run_lab(Arc::new(Smtp::default().with_tls(mode, None)), RunOptions::free(wire)).await
}

async fn run_lab(lab: Arc<dyn Lab>, opts: RunOptions) -> Vec<Step> {
    ca_dir();
    let (wire, mode) = (opts.wire, lab.info().port);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let result = tokio::time::timeout(LIMIT, exchange(lab, opts, StepSink::new("mail", tx)))
        .await
        .expect("the exchange finished in time");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    result.unwrap_or_else(|e| panic!("{wire:?} port {mode}: {e:#}\n{}", kinds(&steps).join("\n")));
    steps
}

/// The TLS and SMTP steps' kinds, with their direction.
fn kinds(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter(|s| matches!(s.layer, Layer::Tls | Layer::Application))
        .map(|s| format!("{} {}", if s.from == "client" { ">" } else { "<" }, s.kind))
        .collect()
}

fn position(k: &[String], want: &str) -> usize {
    k.iter().position(|x| x == want).unwrap_or_else(|| panic!("no {want} in\n{}", k.join("\n")))
}

#[tokio::test]
async fn submission_refuses_mail_in_the_clear_then_starts_tls_and_logs_in_inside_it() {
    for wire in [Wire::Host, Wire::Sim] {
        let steps = run(Mode::StartTls, wire).await;
        let k = kinds(&steps);
        // The story in order: 530 in the clear, STARTTLS, the handshake, EHLO again, AUTH, mail.
        let order = [
            "> smtp.command.MAIL",
            "< smtp.reply.530.MAIL",
            "> smtp.command.STARTTLS",
            "< smtp.reply.220.STARTTLS",
            "> tls.client_hello",
            "< tls.server_hello",
            "< tls.sealed.encrypted_extensions",
            "> tls.sealed.finished",
            "> smtp.command.EHLO",
            "> smtp.command.AUTH.tls",
            "< smtp.reply.235.AUTH",
            "> smtp.data",
            "< smtp.reply.221.QUIT",
        ];
        let mut at = 0;
        for want in order {
            let found = k[at..].iter().position(|x| x == want).unwrap_or_else(|| {
                panic!("{wire:?}: no {want} after step {at} in\n{}", k.join("\n"));
            });
            at += found + 1;
        }
        let hello = steps.iter().find(|s| s.kind == "tls.client_hello").unwrap();
        assert_eq!(hello.value("TLS.sni").as_deref(), Some("protolab.test"));
        assert!(hello.value("TLS.version").unwrap().starts_with("TLS 1.3"));
        let ehlos: Vec<&Step> = steps.iter().filter(|s| s.kind == "smtp.reply.250.EHLO").collect();
        let offers = |s: &Step, what: &str| {
            s.fields.iter().any(|f| f.path == "SMTP.extension" && f.value.as_str().unwrap().starts_with(what))
        };
        assert!(offers(ehlos[0], "STARTTLS") && !offers(ehlos[0], "AUTH"), "in the clear: STARTTLS, no AUTH");
        assert!(!offers(ehlos[1], "STARTTLS") && offers(ehlos[1], "AUTH PLAIN"), "inside TLS: AUTH, no STARTTLS");
        let auth = steps.iter().find(|s| s.kind == "smtp.command.AUTH.tls").unwrap();
        assert_eq!(auth.value("SMTP.sasl").as_deref(), Some("\\0alice\\0lab"));
        // Every SMTP step after the 220 names the TLS record that carried it, the step just
        // before it that went the same way; the records name the TCP segments on the sim wire.
        let tls_from = position(&k, "< smtp.reply.220.STARTTLS");
        let app: Vec<&Step> =
            steps.iter().filter(|s| matches!(s.layer, Layer::Tls | Layer::Application)).skip(tls_from + 1).collect();
        for s in app.iter().filter(|s| s.layer == Layer::Application) {
            assert_eq!(s.carried_by.len(), 1, "{}: {:?}", s.summary, s.carried_by);
            let record = steps.iter().find(|r| r.seq == s.carried_by[0]).unwrap();
            assert_eq!((record.kind.as_str(), record.from.as_str()), ("tls.application_data", s.from.as_str()));
            assert_eq!(record.seq + 1, s.seq, "{} follows its record", s.summary);
            // What the record carried is its plaintext: 16 octets of tag and 1 of type fewer.
            assert_eq!(record.len, s.len + 5 + 17, "{}", s.summary);
        }
        for s in app.iter().filter(|s| s.layer == Layer::Tls) {
            assert!(s.malformed.is_none(), "{}: {:?}", s.summary, s.malformed);
            if wire == Wire::Sim {
                assert!(!s.carried_by.is_empty(), "{} names its segments", s.summary);
            }
        }
    }
}

#[tokio::test]
async fn with_tls_from_the_first_byte_the_greeting_is_the_first_thing_inside() {
    let a = run(Mode::Implicit, Wire::Host).await;
    let k = kinds(&a);
    assert_eq!(k[0], "> tls.client_hello", "{k:?}");
    let greeting = position(&k, "< smtp.reply.220");
    assert!(k[..greeting].iter().all(|x| x.contains(" tls.")), "{k:?}");
    assert!(!k.iter().any(|x| x.contains("STARTTLS")));
    // Random values differ run to run: the ClientHello randoms of two runs are not the same.
    let b = run(Mode::Implicit, Wire::Sim).await;
    let random = |s: &[Step]| s.iter().find(|s| s.kind == "tls.client_hello").unwrap().value("TLS.random");
    assert_ne!(random(&a), random(&b));
}

/// `protolab` with its lab CA in `data`.
fn protolab(data: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_protolab"));
    c.env("XDG_DATA_HOME", data).env_remove("HOME").kill_on_drop(true);
    c
}

/// The lab CA as `protolab ca` prints it, written to a file; the same each time.
async fn ca_file(data: &std::path::Path) -> std::path::PathBuf {
    let first = protolab(data).arg("ca").output().await.unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let pem = String::from_utf8(first.stdout).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let again = protolab(data).arg("ca").output().await.unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), pem, "the CA is kept, not made again");
    let path = data.join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

/// `serve smtp` with `args`: the child, its address, and its stdout.
async fn serve(data: &std::path::Path, args: &[&str]) -> (tokio::process::Child, String) {
    serve_lab(data, "smtp", args).await
}

/// `serve LAB` with `args`.
async fn serve_lab(data: &std::path::Path, lab: &str, args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = protolab(data)
        .args(["serve", lab, "--format", "jsonl"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(LIMIT, err.read_line(&mut line)).await.unwrap().unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    tokio::spawn(async move { while err.read_line(&mut String::new()).await.is_ok_and(|n| n > 0) {} });
    (child, addr)
}

/// The steps `serve` printed, once it ended.
async fn steps_of(child: tokio::process::Child) -> Vec<serde_json::Value> {
    let out = tokio::time::timeout(LIMIT, child.wait_with_output()).await.expect("serve ends").unwrap();
    assert!(out.status.success(), "serve failed: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn field<'a>(step: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    step["fields"].as_array()?.iter().find(|f| f["path"] == path).map(|f| &f["value"])
}

#[tokio::test]
async fn smtplib_submits_over_starttls_and_over_tls_trusting_the_lab_ca() {
    let data = tempfile::tempdir().unwrap();
    let ca = ca_file(data.path()).await;
    for (flag, mode) in [("--starttls", "starttls"), ("--tls", "tls")] {
        let (child, addr) = serve(data.path(), &[flag, "--sessions", "1"]).await;
        let (host, port) = addr.rsplit_once(':').unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_tls.py");
        let run = Command::new("python3").args([script, host, port]).arg(&ca).arg(mode).kill_on_drop(true).output();
        let out = tokio::time::timeout(LIMIT, run).await.expect("smtplib in time").unwrap();
        assert!(
            out.status.success(),
            "{mode}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let steps = steps_of(child).await;
        let auth: Vec<_> = steps.iter().filter_map(|s| field(s, "SMTP.sasl")).collect();
        assert!(auth.iter().any(|v| *v == "\\0alice\\0lab"), "{mode}: {auth:?}");
        let finished = steps.iter().filter(|s| s["summary"].as_str().unwrap().contains("Finished (encrypted)")).count();
        assert_eq!(finished, 2, "{mode}: both Finished messages, opened");
        let data_step = steps.iter().find(|s| field(s, "SMTP.header.Subject").is_some()).expect("the text");
        assert_eq!(field(data_step, "SMTP.header.Subject").unwrap(), "over TLS");
        assert!(data_step["carried_by"].as_array().is_some_and(|c| !c.is_empty()));
    }
}

#[tokio::test]
async fn curl_sends_with_ssl_reqd_and_the_lab_ca() {
    let data = tempfile::tempdir().unwrap();
    let ca = ca_file(data.path()).await;
    let (child, addr) = serve(data.path(), &["--starttls", "--sessions", "1"]).await;
    let mail = data.path().join("mail.txt");
    std::fs::write(&mail, "From: alice@client.lab\r\nSubject: from curl\r\n\r\nhi\r\n").unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert"])
        .arg(&ca)
        .args(["--mail-from", "alice@client.lab", "--mail-rcpt", "bob@protolab.test", "--user", "alice:lab", "-T"])
        .arg(&mail)
        .arg(format!("smtp://{addr}"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LIMIT, out).await.expect("curl in time").unwrap();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let steps = steps_of(child).await;
    assert!(steps.iter().any(|s| field(s, "SMTP.header.Subject").is_some_and(|v| v == "from curl")));
    assert!(steps.iter().any(|s| field(s, "TLS.handshake_type").is_some_and(|v| v == "client_hello")));
}

#[tokio::test]
async fn tshark_opens_the_runs_pcap_with_its_key_log() {
    if std::process::Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("skipped: no tshark");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (pcap, keylog) = (data.path().join("run.pcap"), data.path().join("keys.log"));
    let out = protolab(data.path())
        .args(["run", "smtp", "--starttls", "--wire", "sim", "--pcap"])
        .arg(&pcap)
        .arg("--keylog")
        .arg(&keylog)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys = std::fs::read_to_string(&keylog).unwrap();
    for label in ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"] {
        assert!(keys.contains(label), "{label} in {keys}");
    }
    let read = |filter: &str| {
        std::process::Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keylog.display()))
            .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
            .output()
            .unwrap()
    };
    let auth = read("smtp.req.command == \"AUTH\"");
    assert!(!String::from_utf8_lossy(&auth.stdout).trim().is_empty(), "tshark decrypted the AUTH command");
    let bad = read("_ws.malformed || _ws.expert.severity == error");
    assert!(
        String::from_utf8_lossy(&bad.stdout).trim().is_empty(),
        "malformed: {}",
        String::from_utf8_lossy(&bad.stdout)
    );
}

#[tokio::test]
async fn bad_input_on_tls_ports_gets_a_clear_answer_and_serve_goes_on() {
    let data = tempfile::tempdir().unwrap();
    // A plaintext client on a TLS port, then one that stops mid-handshake, then a real one.
    let (child, addr) = serve(data.path(), &["--tls", "--sessions", "3"]).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"EHLO plain.lab\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut answer)).await.expect("the server closes").ok();
    assert!(!answer.starts_with(b"220"), "no SMTP in the clear on a TLS port");
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]).await.unwrap();
    drop(s);
    let ca = ca_file(data.path()).await;
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_tls.py");
    let run = Command::new("python3").args([script, host, port]).arg(&ca).arg("tls").kill_on_drop(true).output();
    let out = tokio::time::timeout(LIMIT, run).await.expect("smtplib in time").unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps = steps_of(child).await;
    let plain = steps.iter().find(|s| s["malformed"].as_str().is_some_and(|m| m.contains("not a TLS record")));
    assert!(plain.is_some(), "the plaintext EHLO is a malformed step that says why");

    // TLS garbage on a plaintext port: SMTP says 500, the session goes on.
    let (child, addr) = serve(data.path(), &["--sessions", "1"]).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    let n = s.read(&mut chunk).await.unwrap();
    buf.extend_from_slice(&chunk[..n]);
    assert!(buf.starts_with(b"220"));
    s.write_all(b"\x16\x03\x01\x00\x05hello\r\nAUTH PLAIN AGFsaWNlAGxhYg==\r\nQUIT\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut rest)).await.expect("the server closes").unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("500 "), "{text}");
    assert!(text.contains("530 5.7.0 Must issue a STARTTLS command first"), "{text}");
    assert!(text.contains("221 "), "{text}");
    steps_of(child).await;
}

#[tokio::test]
async fn our_client_against_a_server_in_another_process_opens_what_it_can_only_with_its_own_keys() {
    // The server is not ours here: this run's key log holds only the client's secrets, which it
    // logs as it reads the server's flight, so the records wait for them and are still opened.
    let data = tempfile::tempdir().unwrap();
    let ca = ca_file(data.path()).await;
    let (child, addr) = serve(data.path(), &["--starttls", "--sessions", "1"]).await;
    let out = protolab(data.path())
        .args(["run", "smtp", "--starttls", "--format", "jsonl", "--user", "alice:lab", "--connect", &addr, "--cafile"])
        .arg(&ca)
        .output();
    let out = tokio::time::timeout(LIMIT, out).await.expect("run in time").unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summaries: Vec<&str> = steps.iter().map(|s| s["summary"].as_str().unwrap()).collect();
    for want in [
        "EncryptedExtensions, Certificate, CertificateVerify, Finished (encrypted)",
        "235 2.7.0 authenticated as alice",
    ] {
        assert!(summaries.contains(&want), "{want} in {summaries:#?}");
    }
    assert!(!summaries.iter().any(|s| s.ends_with("sealed")), "{summaries:#?}");
    steps_of(child).await;
    // A server whose certificate the client cannot check: the handshake fails, one line says why.
    let (mut child, addr) = serve(data.path(), &["--starttls", "--sessions", "1"]).await;
    let other = tempfile::tempdir().unwrap();
    let stranger = ca_file(other.path()).await;
    let out = protolab(data.path())
        .args(["run", "smtp", "--starttls", "--user", "alice:lab", "--connect", &addr, "--cafile"])
        .arg(&stranger)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS handshake with the server: invalid peer certificate"), "{err}");
    child.kill().await.unwrap();
}

/// Checks `want` come in this order among the TLS and mail steps.
fn in_order(k: &[String], want: &[&str]) {
    let mut at = 0;
    for w in want {
        let found =
            k[at..].iter().position(|x| x == w).unwrap_or_else(|| panic!("no {w} after {at} in\n{}", k.join("\n")));
        at += found + 1;
    }
}

/// Every mail step inside TLS names one record, the step just before it that went its way.
fn carried_by_records(steps: &[Step], from: usize) {
    for s in steps.iter().filter(|s| s.seq as usize > from && s.layer == Layer::Application) {
        let record =
            steps.iter().find(|r| Some(&r.seq) == s.carried_by.first()).unwrap_or_else(|| panic!("{}", s.summary));
        assert_eq!(
            (record.kind.as_str(), record.from.as_str()),
            ("tls.application_data", s.from.as_str()),
            "{}",
            s.summary
        );
    }
}

#[tokio::test]
async fn pop3_with_stls_and_on_its_tls_port_on_both_wires() {
    for wire in [Wire::Host, Wire::Sim] {
        let lab = |mode| Arc::new(Pop3::new(Mailbox::default()).with_tls(mode, None));
        let steps = run_lab(lab(Mode::StartTls), RunOptions::free(wire)).await;
        let k = kinds(&steps);
        in_order(
            &k,
            &[
                "< pop3.greeting",
                "> pop3.command.CAPA",
                "> pop3.command.STLS",
                "< pop3.ok.STLS",
                "> tls.client_hello",
                "< tls.sealed.encrypted_extensions",
                "> tls.sealed.finished",
                "> pop3.command.CAPA",
                "> pop3.command.PASS.tls",
                "< pop3.ok.RETR",
                "< pop3.ok.QUIT.update",
                "< tls.alert.close_notify",
            ],
        );
        let capas: Vec<&Step> = steps.iter().filter(|s| s.kind == "pop3.ok.CAPA").collect();
        let stls = |s: &Step| String::from_utf8_lossy(&s.bytes).contains("STLS\r\n");
        assert!(stls(capas[0]) && !stls(capas[1]), "STLS offered in the clear only");
        let ok = steps.iter().find(|s| s.kind == "pop3.ok.STLS").unwrap();
        carried_by_records(&steps, ok.seq as usize);
        let steps = run_lab(lab(Mode::Implicit), RunOptions::free(wire)).await;
        let k = kinds(&steps);
        assert_eq!(k[0], "> tls.client_hello", "{k:?}");
        in_order(&k, &["< tls.application_data", "< pop3.greeting", "> pop3.command.USER"]);
        carried_by_records(&steps, 0);
    }
}

#[tokio::test]
async fn imap_with_starttls_and_on_its_tls_port_on_both_wires() {
    for wire in [Wire::Host, Wire::Sim] {
        let lab = |mode| Arc::new(Imap::new(Mailbox::default()).with_tls(mode, None));
        let steps = run_lab(lab(Mode::StartTls), RunOptions::free(wire)).await;
        let k = kinds(&steps);
        in_order(
            &k,
            &[
                "< imap.greeting",
                "> imap.command.STARTTLS",
                "< imap.tagged.OK.STARTTLS",
                "> tls.client_hello",
                "> tls.sealed.finished",
                "> imap.command.CAPABILITY",
                "> imap.command.LOGIN.tls",
                "< imap.tagged.OK.LOGIN",
                "< imap.tagged.OK.LOGOUT",
            ],
        );
        let greeting = steps.iter().find(|s| s.kind == "imap.greeting").unwrap();
        assert!(greeting.summary.contains("STARTTLS LOGINDISABLED"), "{}", greeting.summary);
        let ok = steps.iter().find(|s| s.kind == "imap.tagged.OK.STARTTLS").unwrap();
        carried_by_records(&steps, ok.seq as usize);
        let steps = run_lab(lab(Mode::Implicit), RunOptions::free(wire)).await;
        let k = kinds(&steps);
        assert_eq!(k[0], "> tls.client_hello", "{k:?}");
        in_order(&k, &["< imap.greeting", "> imap.command.LOGIN.tls", "< imap.tagged.OK.LOGOUT"]);
        let greeting = steps.iter().find(|s| s.kind == "imap.greeting").unwrap();
        assert!(!greeting.summary.contains("STARTTLS") && greeting.summary.contains("AUTH=PLAIN"));
        carried_by_records(&steps, 0);
    }
}

#[tokio::test]
async fn poplib_imaplib_and_curl_read_over_tls_trusting_the_lab_ca() {
    let data = tempfile::tempdir().unwrap();
    let ca = ca_file(data.path()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/mail_tls.py");
    for (lab, flag, mode, scheme) in [
        ("pop3", "--starttls", "starttls", "pop3"),
        ("pop3", "--tls", "tls", "pop3s"),
        ("imap", "--starttls", "starttls", "imap"),
        ("imap", "--tls", "tls", "imaps"),
    ] {
        let (child, addr) = serve_lab(data.path(), lab, &[flag, "--sessions", "2"]).await;
        let (host, port) = addr.rsplit_once(':').unwrap();
        let run = Command::new("python3").args([script, lab, mode, host, port]).arg(&ca).kill_on_drop(true).output();
        let out = tokio::time::timeout(LIMIT, run).await.expect("python in time").unwrap();
        assert!(
            out.status.success(),
            "{lab} {mode}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = if lab == "pop3" { "1".to_string() } else { "INBOX;UID=1".to_string() };
        let curl = Command::new("curl")
            .args(["-sS", "--ssl-reqd", "--cacert"])
            .arg(&ca)
            .args(["-u", "bob:lab"])
            .arg(format!("{scheme}://{addr}/{path}"))
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(LIMIT, curl).await.expect("curl in time").unwrap();
        assert!(out.status.success(), "curl {scheme}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Subject: Welcome"),
            "{scheme}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let steps = steps_of(child).await;
        let passwords: Vec<_> =
            steps.iter().filter_map(|s| field(s, "POP3.password").or(field(s, "IMAP.password"))).collect();
        assert!(!passwords.is_empty() && passwords.iter().all(|p| *p == "lab"), "{lab} {mode}: {passwords:?}");
        assert!(
            !steps.iter().any(|s| s["summary"].as_str().unwrap().ends_with("sealed")),
            "{lab} {mode}: every record opened"
        );
    }
}

#[tokio::test]
async fn our_pop3_and_imap_clients_against_dovecot_over_tls() {
    let dir = ca_dir();
    let (chain, key) = protolab::tls::lab_ca().unwrap().issue_pem(&["127.0.0.1", "localhost"]).unwrap();
    let (cert_path, key_path) = (dir.join("dovecot-cert.pem"), dir.join("dovecot-key.pem"));
    std::fs::write(&cert_path, chain).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let message =
        "From: alice@a.lab\r\nTo: bob@b.lab\r\nSubject: sealed at dovecot\r\nMessage-ID: <tls1@a.lab>\r\n\r\nhi\r\n";
    let Some(dovecot) = dovecot::Dovecot::start_tls(message, &cert_path, &key_path).await else { return };
    let account = Some(("bob".to_string(), dovecot::PASSWORD.to_string()));
    let cases: [(Arc<dyn Lab>, std::net::SocketAddr); 4] = [
        (Arc::new(Pop3::new(Mailbox::default()).with_tls(Mode::StartTls, None)), dovecot.pop3),
        (Arc::new(Pop3::new(Mailbox::default()).with_tls(Mode::Implicit, None)), dovecot.pop3s),
        (Arc::new(Imap::new(Mailbox::default()).with_tls(Mode::StartTls, None)), dovecot.imap),
        (Arc::new(Imap::new(Mailbox::default()).with_tls(Mode::Implicit, None)), dovecot.imaps),
    ];
    let mut failures = Vec::new();
    for (lab, addr) in cases {
        let name = format!("{} at {addr}", lab.info().name);
        let opts =
            RunOptions { connect: Some(addr.to_string()), account: account.clone(), ..RunOptions::free(Wire::Host) };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let result =
            tokio::time::timeout(LIMIT, exchange(lab, opts, StepSink::new("mail", tx))).await.expect("in time");
        let steps: Vec<Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        if let Err(e) = result {
            failures.push(format!("{name}: {e:#}"));
            continue;
        }
        let k = kinds(&steps);
        // Only our client's secrets exist here: enough to open every record either way.
        assert!(k.iter().any(|x| x == "< tls.sealed.encrypted_extensions"), "{name}: {k:?}");
        assert!(!k.iter().any(|x| x.ends_with("tls.sealed")), "{name}: a record stayed sealed: {k:?}");
        let subject = steps.iter().any(|s| String::from_utf8_lossy(&s.bytes).contains("Subject: sealed at dovecot"));
        assert!(subject, "{name}: the message came, decrypted");
    }
    let log = dovecot.log();
    dovecot.stop().await;
    assert!(failures.is_empty(), "{failures:#?}\ndovecot's log:\n{log}");
}

/// A real server that speaks TLS 1.2 at most (Python's ssl, capped): our client reaches it, the
/// dialogue completes, and the steps say honestly what the lab cannot open.
#[tokio::test]
async fn our_client_reaches_a_server_that_speaks_tls_1_2_only() {
    let data = tempfile::tempdir().unwrap();
    // A certificate from this process's lab CA, which the client is told to trust.
    let dir = ca_dir();
    let (chain, key) = protolab::tls::lab_ca().unwrap().issue_pem(&["127.0.0.1", "localhost"]).unwrap();
    let (cert_path, key_path) = (dir.join("old-cert.pem"), dir.join("old-key.pem"));
    std::fs::write(&cert_path, chain).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtps_tls12.py");
    let Ok(mut server) = Command::new("python3")
        .arg(peer)
        .arg(&cert_path)
        .arg(&key_path)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    else {
        eprintln!("skipped: no python3");
        return;
    };
    let mut port = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut port).await.unwrap();
    let addr = format!("127.0.0.1:{}", port.trim());
    // The lab CA of this process, written where the run can read it.
    let own_ca = dir.join("own-ca.pem");
    std::fs::write(&own_ca, &protolab::tls::lab_ca().unwrap().cert_pem).unwrap();
    let out = protolab(data.path())
        .args(["run", "smtp", "--tls", "--format", "jsonl", "--user", "alice:lab", "--connect", &addr, "--cafile"])
        .arg(&own_ca)
        .output();
    let out = tokio::time::timeout(LIMIT, out).await.expect("run in time").unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let server_hello = steps.iter().find(|s| s["summary"].as_str().unwrap().starts_with("ServerHello")).unwrap();
    assert!(server_hello["summary"].as_str().unwrap().contains("TLS 1.2"), "{server_hello}");
    // Its records are shown sealed, with the reason; nothing is made up.
    let sealed =
        steps.iter().filter(|s| s["proto"] == "TLS" && s["summary"].as_str().unwrap().contains("sealed")).count();
    assert!(sealed > 0, "{steps:#?}");
    assert!(server.wait().await.unwrap().success(), "the server saw TLS 1.2 and a QUIT");
}
