//! Korean everywhere: every English UI string the code passes to `tr`/`trf` (and every lab's
//! title and description, every key's help) has its Korean text, with the same placeholders,
//! and the catalog keeps nothing that is no longer used; so has every template of a step's notes
//! and malformed reasons (`en`) and every phrase they take as a value (`term`), in the catalog of
//! notes; every narration key of every lab exists in both languages with the same placeholders.

use protolab::labs;
use protolab::locale::{KO, KO_NOTES, Lang, localize, localize_reason, parse_catalog, tr};
use protolab::tui::keys::{HINTS, help_rows};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The string literals passed as the text of `tr(lang, "…")` and `trf(lang, "…", …)` in `dir`.
fn literals(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            literals(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("locale.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (at, _) in source.match_indices("tr(").chain(source.match_indices("trf(")) {
            let before = source[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &source[at..];
            let args = &rest[rest.find('(').unwrap() + 1..];
            let Some(comma) = args.find(',') else { continue };
            let text = args[comma + 1..].trim_start();
            if let Some(literal) = text.strip_prefix('"') {
                out.insert(unescape(literal));
            }
        }
    }
}

/// The string literals passed to the markers of notes and reasons, `en("…", …)` and
/// `term("…")`, in `dir`; the calls whose first argument is not a literal, as `file: text`.
fn note_literals(dir: &Path, out: &mut BTreeSet<String>, bare: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            note_literals(&path, out, bare);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("locale.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (at, marker) in source.match_indices("en(").chain(source.match_indices("term(")) {
            let before = source[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let args = source[at + marker.len()..].trim_start();
            match args.strip_prefix('"') {
                Some(literal) => {
                    out.insert(unescape(literal));
                }
                None => bare.push(format!("{}: {marker}{}", path.display(), args.lines().next().unwrap_or(""))),
            }
        }
    }
}

/// A Rust string literal's text, from just after its opening quote.
fn unescape(literal: &str) -> String {
    let mut out = String::new();
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('\n') => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

fn placeholders(text: &str) -> BTreeSet<String> {
    text.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(name, _)| name.to_string())).collect()
}

/// Every English string the screen can show through the catalog.
fn english() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    literals(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut all);
    assert!(all.len() > 50, "the scan finds the UI strings: {}", all.len());
    for hint in HINTS {
        all.insert(hint.long.to_string());
        all.insert(hint.short.to_string());
    }
    for (_, help) in help_rows() {
        all.insert(help.to_string());
    }
    for lab in labs::registry() {
        all.insert(lab.info().title.to_string());
        all.insert(lab.info().about.to_string());
    }
    all.insert("client".into());
    all.insert("server".into());
    all
}

#[test]
fn every_screen_string_has_its_korean_with_the_same_placeholders() {
    let ko = parse_catalog(KO);
    let en = english();
    let missing: Vec<_> = en.iter().filter(|e| !ko.contains_key(e.as_str())).collect();
    assert!(missing.is_empty(), "no Korean for {} strings:\n{missing:#?}", missing.len());
    let stale: Vec<_> = ko.keys().filter(|k| !en.contains(**k)).collect();
    assert!(stale.is_empty(), "Korean for strings no longer used: {stale:#?}");
    for (english, korean) in &ko {
        assert!(!korean.is_empty(), "[{english}] is empty");
        assert_eq!(placeholders(english), placeholders(korean), "[{english}] → {korean}");
    }
    assert_eq!(tr(Lang::Ko, "client"), "클라이언트");
}

/// The notes and reasons: each template in the code has its Korean in the catalog of notes with
/// the same placeholders, and the catalog has nothing else. A template's placeholders are
/// apart (a value is found between two literal texts) and it has no framing spaces.
#[test]
fn every_note_and_reason_has_its_korean_with_the_same_placeholders() {
    let mut en = BTreeSet::new();
    let mut bare = Vec::new();
    note_literals(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut en, &mut bare);
    assert!(en.len() > 100, "the scan finds the notes and reasons: {}", en.len());
    assert!(bare.is_empty(), "en and term take their text as a literal, for this scan:\n{bare:#?}");
    let ko = parse_catalog(KO_NOTES);
    let missing: Vec<_> = en.iter().filter(|e| !ko.contains_key(e.as_str())).collect();
    assert!(missing.is_empty(), "no Korean for {} notes or reasons:\n{missing:#?}", missing.len());
    let stale: Vec<_> = ko.keys().filter(|k| !en.contains(**k)).collect();
    assert!(stale.is_empty(), "Korean for notes or reasons no longer made: {stale:#?}");
    for (english, korean) in &ko {
        assert!(!korean.is_empty(), "[{english}] is empty");
        assert_eq!(placeholders(english), placeholders(korean), "[{english}] → {korean}");
        assert_eq!(english.trim(), *english, "[{english}] has framing spaces");
        assert!(!english.contains("}{"), "[{english}]: two placeholders side by side");
    }
}

/// What the screen makes of finished notes and reasons, as the decoders write them.
#[test]
fn finished_notes_and_reasons_read_in_korean() {
    assert_eq!(
        localize(Lang::Ko, "checksums ok: IPv4 header 0x1234, TCP 0xabcd"),
        "체크섬 정상: IPv4 헤더 0x1234, TCP 0xabcd"
    );
    assert_eq!(
        localize(Lang::Ko, "matches Sec-WebSocket-Accept ✓: base64(SHA-1(key + GUID))"),
        "Sec-WebSocket-Accept와 일치 ✓: base64(SHA-1(key + GUID))"
    );
    assert_eq!(localize(Lang::Ko, "frame 3 held back 300 ms on the cable"), "3번 프레임이 케이블에서 300 ms 지연됨");
    assert_eq!(
        localize_reason(Lang::Ko, "option 50 (requested_ip) cut short: 2 of its 4 bytes"),
        "옵션 50 (requested_ip)이(가) 잘림: 4바이트 중 2바이트"
    );
    assert_eq!(localize_reason(Lang::Ko, "unknown command \"XYZZY\""), "알 수 없는 명령 \"XYZZY\"");
    assert_eq!(localize_reason(Lang::En, "unknown command \"XYZZY\""), "unknown command \"XYZZY\"");
}

/// Narration: the same keys in English and Korean, for the text every lab shares and each
/// lab's own, with the same placeholders in each.
#[test]
fn narration_has_the_same_keys_and_placeholders_in_both_languages() {
    let texts = |lang: Lang| {
        let mut files = vec![("shared".to_string(), protolab::narration::shared(lang))];
        for lab in labs::registry() {
            for (i, text) in lab.narration(lang).into_iter().enumerate() {
                files.push((format!("{} ({i})", lab.info().name), text));
            }
        }
        files
    };
    for ((file, en), (_, ko)) in texts(Lang::En).into_iter().zip(texts(Lang::Ko)) {
        let (en, ko): (HashMap<_, _>, HashMap<_, _>) = (parse_catalog(en), parse_catalog(ko));
        let only_en: BTreeSet<_> = en.keys().filter(|k| !ko.contains_key(*k)).collect();
        let only_ko: BTreeSet<_> = ko.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(only_en.is_empty() && only_ko.is_empty(), "{file}: only English {only_en:?}, only Korean {only_ko:?}");
        for (key, text) in &en {
            assert_eq!(placeholders(text), placeholders(&ko[key]), "{file} [{key}]");
        }
    }
}

/// Every note and every malformed reason the labs write, on every wire, with the cable's
/// faults, has its Korean (`assets/ui/ko-notes.txt`): in Korean nothing in the details pane is
/// left in English but field names and values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_note_the_labs_write_has_its_korean() {
    use protolab::labs::{self, run};
    use protolab::net::{Wire, sim::Faults};
    use protolab::session::StepSink;
    protolab::labs::dhcp::set_speedup(600);
    let faults = |corrupt: Vec<u64>, duplicate: Vec<u64>| Faults { corrupt, duplicate, ..Faults::default() };
    let mut runs = vec![
        ("dhcp", Wire::Sim, Faults::default()),
        ("dhcp", Wire::Sim, faults(vec![1, 2, 3, 4, 6], vec![])),
        ("tcp", Wire::Sim, Faults::default()),
        ("tcp", Wire::Sim, faults(vec![3, 4, 6, 9], vec![5])),
        ("ws", Wire::Sim, faults(vec![7], vec![])),
        ("smtp", Wire::Sim, faults(vec![8], vec![])),
    ];
    for lab in ["tcp", "ws", "smtp"] {
        runs.push((lab, Wire::Host, Faults::default()));
        runs.push((lab, Wire::Sim, Faults::default()));
    }
    let mut missing = std::collections::BTreeSet::new();
    for (lab, wire, faults) in runs {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = run::RunOptions { faults, ..run::RunOptions::free(wire) };
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            run::exchange(labs::find(lab).unwrap(), opts, StepSink::new(lab, tx)),
        )
        .await;
        while let Ok(step) = rx.try_recv() {
            for note in &step.notes {
                // The accept value's derivation is formulas and values, in no language.
                if !note.trim_start().starts_with('=') && protolab::locale::localize(Lang::Ko, note) == *note {
                    missing.insert(note.clone());
                }
            }
            for reason in step.malformed.iter().flat_map(|r| r.split("; ")) {
                if protolab::locale::localize_reason(Lang::Ko, reason) == reason {
                    missing.insert(reason.to_string());
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no Korean for {} notes or reasons:\n{}",
        missing.len(),
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Runs that fail for real say why in Korean on the screen: each link of the error's chain
/// that the labs write, and a malformed reason it quotes; what the OS said stays as it came.
#[tokio::test]
async fn failed_runs_say_why_in_korean() {
    use protolab::labs::run;
    use protolab::locale::localize_failure;
    use protolab::net::Wire;
    use protolab::session::StepSink;
    use tokio::io::AsyncWriteExt;
    async fn fail(lab: &str, opts: run::RunOptions) -> Vec<String> {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let run = run::exchange(labs::find(lab).unwrap(), opts, StepSink::new(lab, tx));
        let error = tokio::time::timeout(std::time::Duration::from_secs(30), run).await.unwrap().unwrap_err();
        error.chain().map(|c| c.to_string()).collect()
    }
    let remote = |addr: String, wire| run::RunOptions { connect: Some(addr), ..run::RunOptions::free(wire) };

    // Nothing listens: the kernel refuses the connection.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let chain = fail("tcp", remote(closed.to_string(), Wire::Host)).await;
    assert_eq!(chain[0], format!("cannot connect to {closed}"));
    let korean = localize_failure(Lang::Ko, &chain);
    assert!(korean.starts_with(&format!("{closed}에 연결할 수 없음: ")), "{korean}");
    assert!(korean.ends_with(chain.last().unwrap().as_str()), "the OS's words stay: {korean}");
    assert_eq!(localize_failure(Lang::En, &chain), chain.join(": "));

    // A server that is not an SMTP server: the reason quoted inside is said in Korean too.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"hello\r\n").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    });
    let chain = fail("smtp", remote(addr.to_string(), Wire::Host)).await;
    fake.abort();
    assert!(
        chain[0].starts_with("the server's answer to the connection (the greeting) is malformed: not an SMTP reply: "),
        "{chain:?}"
    );
    let korean = localize_failure(Lang::Ko, &chain);
    assert!(korean.starts_with("연결(인사말)에 대한 서버의 응답이 잘못됨: "), "{korean}");
    let quoted = korean.split_once("잘못됨: ").unwrap().1;
    assert!(quoted.chars().any(|c| ('가'..='힣').contains(&c)), "the quoted reason in Korean: {korean}");

    // A wrong combination of options.
    let chain = fail("tcp", remote(addr.to_string(), Wire::Sim)).await;
    assert_eq!(localize_failure(Lang::Ko, &chain), "--connect는 실제 서버와 통신함: --wire host가 필요함");
}
