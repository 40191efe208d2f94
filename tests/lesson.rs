//! Lessons played for real: headless with `--answers` (a list, or typed on stdin as each
//! question comes), graded by the steps of the run, never by the lesson file; progress kept.

use protolab::lesson::{self, Kind, headless, play::Ask};
use protolab::locale::Lang;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// `protolab` with English, no config, and progress kept in `state`.
fn protolab(state: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protolab"));
    command.env_remove("LC_ALL").env_remove("LC_MESSAGES").env("LANG", "C.UTF-8");
    command.env("PROTOLAB_CONFIG", "/nonexistent/protolab.toml").env("XDG_STATE_HOME", state);
    command.env("XDG_DATA_HOME", state);
    command
}

fn state_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("protolab-lesson-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The number after `key=` in `line`.
fn number_after(line: &str, key: &str) -> u64 {
    let at = line.find(key).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len();
    line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// The TCP lesson, typed on stdin: the first number question is answered with ISN + 1 read
/// from the SYN the run really sent (right), the second with a wrong number (marked wrong,
/// with the value the run's SYN-ACK really carried).
#[test]
fn a_typed_lesson_is_graded_by_this_runs_numbers() {
    let state = state_dir("typed");
    let mut child = protolab(&state)
        .args(["lesson", "tcp", "--answers", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (mut syn, mut syn_ack, mut transcript) = (None, None, Vec::new());
    let mut answered = 0;
    for line in out.lines() {
        let line = line.unwrap();
        transcript.push(line.clone());
        if line.contains(" TCP ") && line.contains("SYN seq=") && syn.is_none() {
            syn = Some(number_after(&line, "seq="));
        }
        if line.contains("SYN,ACK seq=") {
            syn_ack = Some(number_after(&line, "seq="));
        }
        // Each question ends with its hint line; answer then.
        if line.starts_with("  (answer") || line.starts_with("  (select") || line.starts_with("  (write") {
            answered += 1;
            let answer = match answered {
                1 => "a".to_string(),
                2 => (syn.expect("the SYN crossed before question 2") + 1).to_string(),
                3 => "7".to_string(),
                _ => "ack".to_string(),
            };
            writeln!(stdin, "{answer}").unwrap();
        }
    }
    assert!(child.wait().unwrap().success());
    let text = transcript.join("\n");
    assert!(text.contains("✓ 2. right: "), "ISN + 1 of this run is right:\n{text}");
    let wrong = transcript.iter().find(|l| l.contains("✗ 3. wrong: you said 7")).expect("question 3 marked wrong");
    let expected = wrong.split("the run says ").nth(1).unwrap().split(' ').next().unwrap();
    assert_eq!(expected.parse::<u64>().unwrap(), syn_ack.unwrap() + 1, "the server's ISN + 1, from the run:\n{text}");
    let _ = std::fs::remove_dir_all(&state);
}

/// The DHCP lesson with a list of answers: a wrong choice is marked wrong with what the server
/// really sent; the score and the list of lessons say so.
#[test]
fn a_listed_lesson_marks_wrong_answers_and_keeps_the_score() {
    let state = state_dir("listed");
    let listed = protolab(&state).args(["lesson"]).output().unwrap();
    let before = String::from_utf8(listed.stdout).unwrap();
    assert!(before.lines().any(|l| l.starts_with("dhcp") && l.contains("not started")), "{before}");
    let out = protolab(&state).args(["lesson", "dhcp", "--answers", "a,c,yiaddr,60,a,a,105,b"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("✓ 1. right: a) 255.255.255.255"), "{text}");
    assert!(text.contains("✗ 2. wrong: you said c) NAK: no address for you; the run says a) OFFER"), "{text}");
    assert!(text.contains("(DHCP.message_type = OFFER)"), "{text}");
    assert!(text.contains("✓ 3. right: DHCP.yiaddr = 192.0.2.10"), "{text}");
    assert!(text.contains("Score 7/8"), "{text}");
    assert!(text.contains("To review: DORA: the order of the four messages"), "{text}");
    let after = String::from_utf8(protolab(&state).args(["lesson"]).output().unwrap().stdout).unwrap();
    assert!(after.lines().any(|l| l.starts_with("dhcp") && l.contains("1× best 7/8")), "{after}");
    let _ = std::fs::remove_dir_all(&state);
}

/// The SMTP lesson: the relay question is graded by the server's real reply code.
#[test]
fn the_relay_question_is_graded_by_the_real_reply() {
    let state = state_dir("smtp");
    let out = protolab(&state).args(["lesson", "smtp", "--answers", "220,a,b,From,221"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RCPT TO:<carol@elsewhere.invalid>"), "{text}");
    assert!(text.contains("✗ 2. wrong: you said a) 250: recipient OK; the run says b) 550: refused"), "{text}");
    assert!(text.contains("✓ 3. right: b) 3xx"), "{text}");
    let _ = std::fs::remove_dir_all(&state);
}

/// The POP3 lesson: the wrong password's -ERR and the deletion at UPDATE, graded by the real
/// answers of the lab server (a fresh process: bob's mailbox holds the welcome message alone).
#[test]
fn the_pop3_lesson_is_graded_by_the_server_s_answers() {
    let state = state_dir("pop3");
    let out = protolab(&state).args(["lesson", "pop3", "--answers", "a,POP3.password,1,a"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PASS guess"), "{text}");
    assert!(text.contains("✗ 1. wrong: you said a) +OK"), "{text}");
    assert!(text.contains("✓ 4. right: a) UPDATE, after QUIT"), "{text}");
    assert!(text.contains("Score 3/4"), "{text}");
    let _ = std::fs::remove_dir_all(&state);
}

/// The TLS lesson: the submission server's 530 in the clear and 220 to STARTTLS, the SNI of the
/// real ClientHello and the AUTH decoded inside TLS, graded by the run's steps.
#[test]
fn the_tls_lesson_is_graded_by_the_submission_server() {
    let state = state_dir("tls");
    let out = protolab(&state).args(["lesson", "tls", "--answers", "a,a,TLS.sni,SMTP.sasl"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ClientHello TLS 1.3"), "{text}");
    assert!(text.contains("✗ 1. wrong: you said a) 250: sender OK; the run says b) 530"), "{text}");
    assert!(text.contains("✓ 2. right: a) 220"), "{text}");
    assert!(text.contains("Score 3/4"), "{text}");
    let _ = std::fs::remove_dir_all(&state);
}

/// The IMAP lesson on the lab network: UIDVALIDITY, a partial fetch of 100 octets, the \\Seen a
/// BODY[TEXT] set, the EXISTS the phone hears in IDLE, graded by the lab server's real answers.
#[test]
fn the_imap_lesson_is_graded_by_the_server_s_answers() {
    let state = state_dir("imap");
    let out = protolab(&state).args(["lesson", "imap", "--answers", "IMAP.code,100,a,a"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("✓ 2. right: 100"), "{text}");
    assert!(text.contains("✗ 3. wrong: you said a) (\\Flagged): only what STORE added; the run says b)"), "{text}");
    assert!(text.contains("✓ 4. right: a) * n EXISTS"), "{text}");
    assert!(text.contains("Score 3/4"), "{text}");
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn the_port_table_prints_as_a_reference_and_a_wrong_name_is_a_usage_error() {
    let state = state_dir("ports");
    let out = protolab(&state).args(["lesson", "ports", "--reference"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.contains("IMAP") && l.contains("143") && l.contains("993")), "{text}");
    let out = protolab(&state).args(["lesson", "nosuch", "--answers", "a"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lesson named nosuch"));
    let out = protolab(&state).args(["lesson", "ports", "--answers", "67", "--seed", "1"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("? 17."), "every row is asked:\n{text}");
    let _ = std::fs::remove_dir_all(&state);
}

/// Every lesson, in both languages, played against its lab: every question it asks about the
/// exchange meets its step (none is left ungraded), whatever the answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_question_meets_its_step_in_a_real_run() {
    protolab::labs::dhcp::set_speedup(600);
    // The TLS lesson's lab CA: this test's own, not the user's.
    let ca = tempfile::tempdir().unwrap();
    protolab::tls::set_ca_dir(ca.path().join("ca"));
    for lang in [Lang::En, Lang::Ko] {
        for lesson in lesson::all() {
            let name = lesson.name.clone();
            let asks = lesson.parts.iter().filter(|p| p.asks()).count();
            let mut answer = |ask: &Ask| {
                Some(
                    match ask.kind {
                        Kind::Choice => "a",
                        Kind::Number | Kind::Ports => "1",
                        Kind::Field => "1",
                        _ => "words",
                    }
                    .to_string(),
                )
            };
            let mut out = Vec::new();
            let play = headless::play(lesson, lang, 7, &mut answer, &mut out).await.unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(play.done(), "{name} ({lang:?}) did not end:\n{text}");
            for o in &play.outcomes {
                assert!(o.void.is_none(), "{name} ({lang:?}) question {}: {:?}\n{text}", o.number, o.void);
            }
            assert!(play.outcomes.len() >= asks, "{name}: {} outcomes for {asks} questions", play.outcomes.len());
            assert!(!text.contains("[ko]"), "{name} ({lang:?}) shows untranslated text:\n{text}");
        }
    }
}
