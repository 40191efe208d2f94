//! Headless runs on the host wire print their steps in the order things happened: the SYN (or,
//! without a capture, the connect) first, every message after the segments that carried it,
//! times never going back. Checked over many runs of the real binary, since a race shows only
//! sometimes.

use std::process::Command;

const RUNS: usize = 50;

fn run(lab: &str, capture: bool) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_protolab"));
    cmd.args(["run", lab, "--format", "jsonl"]);
    if !capture {
        cmd.arg("--no-capture");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn check(lab: &str, capture: bool) {
    for i in 0..RUNS {
        let steps = run(lab, capture);
        let first = steps[0]["summary"].as_str().unwrap();
        if capture {
            assert!(first.starts_with("SYN seq="), "run {i} of {lab}: the first step is {first}");
        } else {
            assert!(first.starts_with("connect() to "), "run {i} of {lab}: the first step is {first}");
        }
        let mut last_t = 0;
        for (n, s) in steps.iter().enumerate() {
            assert_eq!(s["seq"], n as u64 + 1);
            let t = s["t_us"].as_u64().unwrap();
            assert!(t >= last_t, "run {i} of {lab}: time goes back at #{}", n + 1);
            last_t = t;
            if capture && s["layer"] == "application" {
                // A message follows the segments that carried it, each from the same sender.
                let carriers = s["carried_by"].as_array().unwrap_or_else(|| panic!("no carried_by in {s}"));
                assert!(!carriers.is_empty(), "run {i} of {lab}: {} has no carriers", s["summary"]);
                for c in carriers {
                    let c = c.as_u64().unwrap();
                    assert!(c < n as u64 + 1, "run {i} of {lab}: {} comes before its segment #{c}", s["summary"]);
                    let carrier = &steps[c as usize - 1];
                    assert_eq!(
                        (carrier["proto"].as_str(), carrier["from"].as_str()),
                        (Some("TCP"), s["from"].as_str())
                    );
                }
            }
        }
    }
}

#[test]
fn without_capture_the_connect_comes_first() {
    check("smtp", false);
    check("ws", false);
}

#[tokio::test]
async fn with_capture_the_syn_comes_first_and_messages_follow_their_segments() {
    if protolab::net::capture::available().is_err() {
        eprintln!("packet capture needs CAP_NET_RAW here: skipped");
        return;
    }
    check("smtp", true);
    check("ws", true);
}
