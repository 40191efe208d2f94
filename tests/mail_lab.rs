//! The mail lab end to end on the lab network: alice submits over STARTTLS and AUTH to
//! mail.a.lab, which signs with DKIM, asks DNS for b.lab's MX and relays to mail.b.lab, which
//! asks DNS for a.lab's SPF, DKIM key and DMARC policy, checks, stores the message with
//! Authentication-Results for bob's IMAP; mallory's forgery gets 550 5.7.1. Each step between
//! the right parties, each random value new in each run; tshark reads the run's pcap with its
//! key log without a malformed frame.

use protolab::labs::run::{RunOptions, exchange};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::time::Duration;

/// This process keeps its lab CA in a directory of its own.
fn ca_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap()).path().to_path_buf();
    protolab::tls::set_ca_dir(dir.join("ca"));
    dir
}

async fn run() -> Vec<Step> {
    ca_dir();
    let lab = protolab::labs::find("mail").unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        exchange(lab, RunOptions::free(Wire::Sim), StepSink::new("mail", tx)),
    )
    .await
    .expect("the journey finished in time");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    result.unwrap_or_else(|e| panic!("{e:#}"));
    steps
}

/// The first step of `kind` from `from` to `to` whose summary contains `text`.
fn find<'a>(steps: &'a [Step], from: &str, to: &str, kind: &str, text: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.from == from && s.to == to && s.kind.starts_with(kind) && s.summary.contains(text))
        .unwrap_or_else(|| {
            let seen: Vec<String> =
                steps.iter().map(|s| format!("{} → {} {} {}", s.from, s.to, s.kind, s.summary)).collect();
            panic!("no {kind} {from} → {to} with {text:?} in\n{}", seen.join("\n"))
        })
}

fn index(steps: &[Step], step: &Step) -> usize {
    steps.iter().position(|s| std::ptr::eq(s, step)).unwrap()
}

#[tokio::test]
async fn the_journey_and_the_forgery() {
    let steps = run().await;
    // 1. Submission: STARTTLS, the handshake naming mail.a.lab, AUTH inside TLS.
    let starttls = find(&steps, "alice", "mail.a.lab", "smtp.command.STARTTLS", "STARTTLS");
    let hello = find(&steps, "alice", "mail.a.lab", "tls.client_hello", "ClientHello");
    assert_eq!(hello.value("TLS.sni").as_deref(), Some("mail.a.lab"));
    let auth = find(&steps, "alice", "mail.a.lab", "smtp.command.AUTH.tls", "AUTH PLAIN");
    assert_eq!(auth.value("SMTP.sasl").as_deref(), Some("\\0alice\\0lab"), "{auth:?}");
    assert!(index(&steps, starttls) < index(&steps, hello) && index(&steps, hello) < index(&steps, auth));
    assert_eq!(starttls.conn.as_deref(), Some("submission"));
    let queued = find(&steps, "mail.a.lab", "alice", "smtp.reply.250", "queued as");

    // 2. The MTA asks DNS where b.lab takes mail, then the exchanger's address; then relays.
    let mx = find(&steps, "mail.a.lab", "dns", "dns.query", "b.lab. MX");
    let mx_answer = find(&steps, "dns", "mail.a.lab", "dns.response", "b.lab. MX: 10 mail.b.lab.");
    let a = find(&steps, "dns", "mail.a.lab", "dns.response", "mail.b.lab. A: 192.0.2.35");
    let relay_hello = find(&steps, "mail.a.lab", "mail.b.lab", "smtp.command.EHLO", "EHLO mail.a.lab");
    assert!(index(&steps, queued) < index(&steps, mx));
    assert!(index(&steps, mx) < index(&steps, mx_answer) && index(&steps, a) < index(&steps, relay_hello));
    assert_eq!(relay_hello.conn.as_deref(), Some("relay"));
    let relayed = find(&steps, "mail.a.lab", "mail.b.lab", "smtp.data", "Across two domains");
    let signature = relayed.value("SMTP.header.DKIM-Signature").expect("the relayed text is signed");
    assert!(signature.contains("a=ed25519-sha256") && signature.contains("d=a.lab") && signature.contains("s=lab"));

    // 3. mail.b.lab asks what the checks need, after the text and before its reply.
    let text_at = index(&steps, relayed);
    let accepted = find(&steps, "mail.b.lab", "mail.a.lab", "smtp.reply.250", "queued as");
    for question in ["a.lab. TXT", "a.lab. MX", "mail.a.lab. A", "lab._domainkey.a.lab. TXT", "_dmarc.a.lab. TXT"] {
        let q = find(&steps, "mail.b.lab", "dns", "dns.query", question);
        assert!(text_at < index(&steps, q) && index(&steps, q) < index(&steps, accepted), "{question}");
    }
    let key = find(&steps, "dns", "mail.b.lab", "dns.response", "lab._domainkey.a.lab. TXT");
    assert!(key.summary.contains("v=DKIM1; k=ed25519; p="), "{}", key.summary);

    // 4. bob reads it: the results mail.b.lab added, all three pass.
    let fetched = steps
        .iter()
        .find(|s| s.from == "mail.b.lab" && s.to == "bob" && s.kind.starts_with("imap.untagged.FETCH"))
        .expect("bob's FETCH");
    let text = String::from_utf8_lossy(&fetched.bytes).to_string();
    for want in ["Authentication-Results: mail.b.lab;", "dkim=pass header.d=a.lab", "spf=pass", "dmarc=pass"] {
        assert!(text.contains(want), "{want} in {text}");
    }

    // 5. mallory: the checks after the text, then 550 5.7.1.
    let forged = find(&steps, "mallory", "mail.b.lab", "smtp.data", "Urgent");
    assert_eq!(forged.conn.as_deref(), Some("forged"));
    assert!(forged.value("SMTP.header.DKIM-Signature").is_none());
    let refused = find(&steps, "mail.b.lab", "mallory", "smtp.reply.550", "5.7.1");
    assert!(refused.summary.contains("spf=fail dkim=none dmarc=fail"), "{}", refused.summary);
    let dmarc = steps.iter().rposition(|s| s.from == "mail.b.lab" && s.summary.contains("_dmarc.a.lab. TXT")).unwrap();
    assert!(index(&steps, forged) < dmarc && dmarc < index(&steps, refused));
}

#[tokio::test]
async fn each_run_has_its_own_key_ids_and_message_id() {
    let (one, two) = (run().await, run().await);
    let key = |steps: &[Step]| find(steps, "dns", "mail.b.lab", "dns.response", "_domainkey").summary.clone();
    assert_ne!(key(&one), key(&two), "a fresh DKIM key each run");
    let ids = |steps: &[Step]| -> Vec<String> {
        steps.iter().filter(|s| s.kind == "dns.query").filter_map(|s| s.value("DNS.id")).collect()
    };
    assert_ne!(ids(&one), ids(&two));
    let message_id = |steps: &[Step]| {
        find(steps, "alice", "mail.a.lab", "smtp.data", "Across").value("SMTP.header.Message-ID").unwrap()
    };
    assert_ne!(message_id(&one), message_id(&two));
}

#[tokio::test]
async fn tshark_reads_the_runs_pcap_with_its_key_log() {
    if std::process::Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("skipped: no tshark");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (pcap, keylog) = (data.path().join("mail.pcap"), data.path().join("keys.log"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protolab"))
        .env("XDG_DATA_HOME", data.path())
        .env_remove("HOME")
        .args(["run", "mail", "--pcap"])
        .arg(&pcap)
        .arg("--keylog")
        .arg(&keylog)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |filter: &str, field: &str| {
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keylog.display()))
            .args(["-Y", filter, "-T", "fields", "-e", field])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(!read("smtp.req.command == \"AUTH\"", "frame.number").is_empty(), "tshark opened the submission");
    assert_eq!(
        read("dns.qry.name == \"b.lab\" && dns.qry.type == 15 && dns.flags.response == 1", "dns.mx.mail_exchange"),
        "mail.b.lab"
    );
    assert!(read("smtp.response.code == 550", "smtp.rsp.parameter").contains("5.7.1"));
    let bad = read("_ws.malformed || _ws.expert.severity == error", "frame.number");
    assert!(bad.is_empty(), "malformed frames: {bad}");
}

#[tokio::test]
async fn with_pop3_bob_downloads_and_the_server_deletes_at_quit() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protolab"))
        .env("XDG_DATA_HOME", data.path())
        .env_remove("HOME")
        .args(["run", "mail", "--pop3", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let said = |from: &str, text: &str| {
        steps
            .iter()
            .position(|s| s["from"] == from && s["proto"] == "POP3" && s["summary"].as_str().unwrap().starts_with(text))
    };
    let (retr, dele, quit) = (said("bob", "RETR 1"), said("bob", "DELE 1"), said("mail.b.lab", "+OK"));
    assert!(retr.is_some() && dele.is_some() && quit.is_some(), "{steps:#?}");
    assert!(said("bob", "PASS guess").is_none(), "no wrong password in the journey");
    // The message bob downloaded carries what mail.b.lab checked.
    let whole = steps[retr.unwrap()..].iter().find(|s| s["from"] == "mail.b.lab" && s["proto"] == "POP3").unwrap();
    let hex = whole["hex"].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("Authentication-Results: mail.b.lab;") && text.contains("dmarc=pass"), "{text}");
    // mallory is still refused, after bob's INBOX was emptied.
    assert!(steps.iter().any(|s| s["from"] == "mail.b.lab"
        && s["to"] == "mallory"
        && s["summary"].as_str().unwrap().starts_with("550 5.7.1")));
    // --pop3 belongs to the mail lab.
    let wrong =
        std::process::Command::new(env!("CARGO_BIN_EXE_protolab")).args(["run", "smtp", "--pop3"]).output().unwrap();
    assert_eq!(wrong.status.code(), Some(2));
}
