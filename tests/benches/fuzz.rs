//! Fuzzing every decoder that reads untrusted bytes, on stable Rust (see `tests/fuzz/`):
//!
//! ```sh
//! cargo bench --profile fuzz --bench fuzz            # 10 000 000 inputs per decoder
//! cargo bench --profile fuzz --bench fuzz -- ws-frame smtp-reply --inputs 1M --threads 2 --seed 7
//! cargo bench --profile fuzz --bench fuzz -- --replay target/fuzz-crashes/ws-frame-0123456789abcdef.bin
//! cargo bench --profile fuzz --bench fuzz -- --list
//! ```
//!
//! `--profile fuzz` (Cargo.toml) is the release build with integer overflow checks and debug
//! assertions on, in dependencies too: without it, an overflow wraps and a dependency's
//! `debug_assert!` is skipped, and the fuzzer cannot see either.
//!
//! Prints a table: inputs run, seconds, inputs per second and panics, per decoder. Exits 1 at
//! the first failure (a panic, a broken invariant, a hang), with the input saved and in hex.

#[path = "../fuzz/mod.rs"]
mod fuzz;

use fuzz::targets::{self, ALL};
use fuzz::{Settings, Target};
use std::process::exit;

const USAGE: &str =
    "usage: cargo bench --profile fuzz --bench fuzz -- [DECODER...] [--inputs N] [--threads N] [--seed N]
       cargo bench --profile fuzz --bench fuzz -- --replay FILE [DECODER]
       cargo bench --profile fuzz --bench fuzz -- --list";

/// A count: `10000000`, `10_000_000`, `10M` or `20k`.
fn count(text: &str) -> Option<u64> {
    let t = text.replace('_', "");
    let (digits, unit) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1_000),
        'm' | 'M' => (&t[..t.len() - 1], 1_000_000),
        _ => (&t[..], 1),
    };
    digits.parse::<u64>().ok().map(|n| n * unit)
}

fn main() {
    let mut settings = Settings {
        inputs: 10_000_000,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        seed: 0x5eed,
        progress: true,
    };
    let mut chosen: Vec<&'static Target> = Vec::new();
    let mut replay = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| fail(&format!("{name} needs a value")));
        match arg.as_str() {
            // What cargo bench passes to every bench.
            "--bench" => {}
            "--inputs" => settings.inputs = count(&value("--inputs")).unwrap_or_else(|| fail("--inputs: a count")),
            "--threads" => settings.threads = count(&value("--threads")).unwrap_or_else(|| fail("--threads")) as usize,
            "--seed" => settings.seed = count(&value("--seed")).unwrap_or_else(|| fail("--seed: a number")),
            "--replay" => replay = Some(value("--replay")),
            "--list" => {
                for t in ALL {
                    println!("{:<13} {}", t.name, t.about);
                }
                return;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            name => chosen.push(targets::find(name).unwrap_or_else(|| fail(&format!("no decoder {name:?}")))),
        }
    }
    if let Some(path) = replay {
        // The file's name says its decoder, unless one is given.
        let path = std::path::PathBuf::from(path);
        let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let target =
            chosen.first().copied().or_else(|| ALL.iter().copied().find(|t| stem.starts_with(&format!("{}-", t.name))));
        let target = target.unwrap_or_else(|| fail("name the decoder: its file name does not"));
        match fuzz::replay(target, &path) {
            Ok(()) => println!("{}: {} runs clean", target.name, path.display()),
            Err(e) => {
                println!("{}: {e}", target.name);
                exit(1);
            }
        }
        return;
    }
    if chosen.is_empty() {
        chosen = ALL.to_vec();
    }
    if !cfg!(debug_assertions) {
        println!("note: built without debug assertions and overflow checks; `--profile fuzz` has them");
    }
    println!(
        "fuzzing {} decoder(s), {} inputs each, {} thread(s), seed {}",
        chosen.len(),
        settings.inputs,
        settings.threads,
        settings.seed
    );
    let mut rows = Vec::new();
    for target in chosen {
        let outcome = fuzz::fuzz(target, &settings);
        let panics = usize::from(outcome.failure.as_ref().is_some_and(|f| f.kind == fuzz::FailureKind::Panic));
        let row = format!(
            "{:<13} {:>12} {:>9.1} {:>10.0} {:>7}",
            outcome.target,
            outcome.inputs,
            outcome.secs,
            outcome.per_sec(),
            panics
        );
        println!("{row}");
        rows.push(row);
        if let Some(failure) = &outcome.failure {
            println!("\n{}", failure.report(target.name));
            exit(1);
        }
    }
    println!("\n{:<13} {:>12} {:>9} {:>10} {:>7}", "decoder", "inputs", "seconds", "inputs/s", "panics");
    for row in rows {
        println!("{row}");
    }
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n{USAGE}");
    exit(2)
}
