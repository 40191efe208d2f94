//! What the tests that read a lab's `--pcap` with tshark share: the run that writes it, and
//! tshark's rows.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `protolab run LAB --pcap FILE` (with `extra` arguments) into `dir`; `None`, said on
/// stderr, where tshark is not installed (`.ci/run` installs it).
pub fn run(lab: &str, dir: &Path, extra: &[&str]) -> Option<PathBuf> {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("tshark is not installed (.ci/run installs it): skipped");
        return None;
    }
    let path = dir.join(format!("{lab}.pcap"));
    let out = Command::new(env!("CARGO_BIN_EXE_protolab"))
        .args(["run", lab, "--pcap"])
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(path)
}

/// What tshark prints reading `path` with `args`.
pub fn tshark(path: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark").arg("-r").arg(path).args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}
