//! The two headless outputs: the one-line-a-step text transcript and JSONL.

use super::Step;
use std::io::Write;

/// How `run`, `serve` and `tap` print steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// `[  0.001234] client → server   SMTP  EHLO client.lab`
    #[default]
    Text,
    /// One JSON object a line: the step contract (keys in the README).
    Jsonl,
}

/// Writes one step in the chosen format, one line; `session`: text lines name the peer session
/// (JSONL always has it).
pub fn write_step(out: &mut impl Write, step: &Step, format: Format, session: bool) -> std::io::Result<()> {
    match format {
        Format::Jsonl => {
            serde_json::to_writer(&mut *out, step)?;
            writeln!(out)
        }
        Format::Text => writeln!(out, "{}", text_line(step, session)),
    }
}

/// The text transcript's line for a step (with its session, `#2`, where clients interleave); a
/// malformed step is marked `!!` with its reason.
pub fn text_line(step: &Step, session: bool) -> String {
    let secs = step.t_us as f64 / 1e6;
    let arrow = format!("{} → {}", step.from, step.to);
    let who = if session { format!("#{:<3} ", step.session) } else { String::new() };
    let mut line = format!("[{secs:>11.6}] {who}{arrow:<17} {:<5} {}", step.proto, step.summary);
    if let Some(reason) = &step.malformed {
        line = format!("{line}  !! {reason}");
    }
    line
}
