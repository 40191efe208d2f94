//! Narration: what a step means, in plain words. The text lives in `assets/narration/<lang>/<lab>.txt`,
//! keyed by step kind:
//!
//! ```text
//! [smtp.command.EHLO]
//! The client introduces itself as {SMTP.domain} and asks which extensions the server has.
//! ```
//!
//! A step of kind `smtp.command.EHLO` takes the text of the longest key that is a prefix of its
//! kind at a dot boundary (`smtp.command.EHLO`, then `smtp.command`, then `smtp`). `{Path}` is
//! replaced by the step's field of that path; `{from}`, `{to}`, `{len}` by the step's own values.

use crate::session::Step;
use std::collections::HashMap;

/// Narration every lab shares: the transport under the protocol.
const SHARED: &str = include_str!("../assets/narration/en/tcp.txt");

/// The narration entries of one lab, parsed from its asset file.
#[derive(Debug, Default, Clone)]
pub struct Narration {
    entries: HashMap<String, String>,
}

impl Narration {
    pub fn parse(text: &str) -> Self {
        let mut entries = HashMap::new();
        let mut key: Option<String> = None;
        let mut body = String::new();
        let mut flush = |key: &mut Option<String>, body: &mut String| {
            if let Some(k) = key.take() {
                entries.insert(k, body.trim().to_string());
            }
            body.clear();
        };
        for line in text.lines() {
            let t = line.trim_end();
            if t.starts_with('[') && t.ends_with(']') {
                flush(&mut key, &mut body);
                key = Some(t[1..t.len() - 1].to_string());
            } else if t.starts_with('#') && key.is_none() {
                continue;
            } else if key.is_some() {
                // Lines join into paragraphs; a blank line starts a new paragraph.
                if t.is_empty() {
                    body.push_str("\n\n");
                } else {
                    if !body.is_empty() && !body.ends_with('\n') {
                        body.push(' ');
                    }
                    body.push_str(t.trim_start());
                }
            }
        }
        flush(&mut key, &mut body);
        Narration { entries }
    }

    /// A lab's narration on top of the text every lab shares (TCP's FIN and RST); the lab's
    /// own entries win.
    pub fn for_lab(lab_text: &str) -> Self {
        let mut n = Narration::parse(SHARED);
        n.entries.extend(Narration::parse(lab_text).entries);
        n
    }

    /// The raw text for a kind, by longest dotted prefix.
    pub fn lookup(&self, kind: &str) -> Option<&str> {
        let mut k = kind;
        loop {
            if let Some(text) = self.entries.get(k) {
                return Some(text);
            }
            k = &k[..k.rfind('.')?];
        }
    }

    /// The narration of a step, with its real values filled in.
    pub fn explain(&self, step: &Step) -> Option<String> {
        let template = self.lookup(&step.kind)?;
        Some(fill(template, step))
    }

    /// Placeholders in this step's narration that the step has no value for (for tests).
    pub fn missing(&self, step: &Step) -> Vec<String> {
        let Some(template) = self.lookup(&step.kind) else { return vec!["(no narration)".into()] };
        placeholders(template).filter(|name| value(name, step).is_none()).map(str::to_string).collect()
    }

    /// Every key, for tests that check coverage.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

fn value(name: &str, step: &Step) -> Option<String> {
    match name {
        "from" => Some(step.from.clone()),
        "to" => Some(step.to.clone()),
        "len" => Some(step.len.to_string()),
        path => step.value(path),
    }
}

/// The `{name}`s of a template, in order.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

fn fill(template: &str, step: &Step) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &rest[open + 1..open + close];
        out.push_str(&value(name, step).unwrap_or_else(|| "?".into()));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_paragraphs_join() {
        let n = Narration::parse("# c\n[smtp]\nAny SMTP.\n[smtp.command]\nA command\nover two lines.\n\nSecond.\n");
        assert_eq!(n.lookup("smtp.command.EHLO"), Some("A command over two lines.\n\nSecond."));
        assert_eq!(n.lookup("smtp.reply.250"), Some("Any SMTP."));
        assert_eq!(n.lookup("ws.x"), None);
    }
}
