//! The fuzzer of `cargo bench --profile fuzz --bench fuzz`, briefly, in every `cargo test`: a few thousand
//! inputs per decoder, so a decoder change that panics on damaged bytes fails here first.

mod fuzz;

use fuzz::targets::{self, ALL};
use fuzz::{Chunk, Input, Settings};

/// Inputs per decoder: one to three seconds each in a debug build (the bench runs millions).
const INPUTS: u64 = 5_000;

fn smoke(name: &str) {
    let target = targets::find(name).unwrap();
    let outcome = fuzz::fuzz(target, &Settings { inputs: INPUTS, threads: 1, seed: 1, progress: false });
    if let Some(failure) = &outcome.failure {
        panic!("{}", failure.report(name));
    }
    assert_eq!(outcome.inputs, INPUTS);
    println!(
        "{} ({}): {} inputs, {:.1} s, {:.0}/s",
        outcome.target,
        target.about,
        outcome.inputs,
        outcome.secs,
        outcome.per_sec()
    );
}

#[test]
fn ws_head() {
    smoke("ws-head");
}

#[test]
fn ws_frame() {
    smoke("ws-frame");
}

#[test]
fn smtp_command() {
    smoke("smtp-command");
}

#[test]
fn smtp_reply() {
    smoke("smtp-reply");
}

#[test]
fn pop3() {
    smoke("pop3");
}

#[test]
fn imap() {
    smoke("imap");
}

#[test]
fn tls() {
    smoke("tls");
}

#[test]
fn dhcp() {
    smoke("dhcp");
}

#[test]
fn frame() {
    smoke("frame");
}

#[test]
fn every_target_has_its_test() {
    let names: Vec<&str> = ALL.iter().map(|t| t.name).collect();
    assert_eq!(names, ["ws-head", "ws-frame", "smtp-command", "smtp-reply", "pop3", "imap", "tls", "dhcp", "frame"]);
}

#[test]
fn inputs_are_made_again_from_their_number_and_saved_whole() {
    let target = targets::find("smtp-command").unwrap();
    let corpus = (target.corpus)();
    let make = |n| fuzz::generate(target, &corpus, &mut fuzz::Rng::for_input(9, target.name, n));
    assert_eq!(make(12345), make(12345));
    assert_ne!(make(1), make(2));
    let input = Input { keep: 513, chunks: vec![Chunk::new(0, b"EHLO x\r\n".as_slice()), Chunk::new(1, [0xff, 0])] };
    assert_eq!(Input::from_bytes(&input.to_bytes()), Ok(input.clone()));
    assert!(Input::from_bytes(&input.to_bytes()[..20]).is_err());
    let path = fuzz::save("smtp-command", &input).unwrap();
    assert_eq!(fuzz::replay(target, &path), Ok(()));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_panic_in_a_target_is_caught_and_reported() {
    static PANICS: fuzz::Target = fuzz::Target {
        name: "panics",
        about: "",
        stream: false,
        focus: 0,
        corpus: || vec![Input::new(vec![Chunk::new(0, [1, 2, 3])])],
        tokens: &[],
        run: |input| {
            if input.len() > 3 {
                panic!("more than three bytes");
            }
            Ok(())
        },
    };
    let outcome = fuzz::fuzz(&PANICS, &Settings { inputs: 10_000, threads: 2, seed: 1, progress: false });
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.kind, fuzz::FailureKind::Panic);
    assert!(failure.what.contains("more than three bytes"), "{}", failure.what);
    let file = failure.file.expect("saved");
    assert!(file.file_name().unwrap().to_str().unwrap().starts_with("panics-"));
    assert_eq!(std::fs::read(&file).unwrap(), failure.input.to_bytes());
    std::fs::remove_file(file).unwrap();
}
