//! Narration: what a step means at its moment of the story, in plain words. The text lives in
//! `assets/narration/<lang>/<lab>.txt`, keyed by step kind:
//!
//! ```text
//! [tcp.ack.last]
//! The last ACK: {from} acknowledges {to}'s FIN ...
//! ```
//!
//! A key is chosen from three things, most specific first:
//! - the step's **kind**, refined by the moment of its conversation (`tcp.ack.handshake`,
//!   `tcp.ack.last`, `dhcp.ack.renew`; see [`crate::session::moment`]). The longest key that
//!   is a prefix of the kind at a dot boundary wins: `tcp.ack.last`, then `tcp.ack`, then `tcp`;
//! - a **variant**, when the step is not what its kind alone says: `~dropped`, `~corrupted`,
//!   `~duplicate` (what the cable did) or `~again` (a retransmission). A variant never falls
//!   back to the plain text, which would be untrue of it: `tcp.syn~again` falls back to
//!   `tcp~again`, then to `frame~again`;
//! - the **place** it was seen: `@sim` (the lab network), `@host` (the socket API),
//!   `@captured` (a kernel segment captured on the host), tried before the same key without it;
//! - the **connection** it belongs to, in labs of several (`#relay`, `#forged` in the mail
//!   lab), tried before the same key without it: one command means one thing on alice's
//!   submission and another on the servers' relay.
//!
//! `{Path}` is replaced by the step's field of that path; `{from}`, `{to}`, `{len}`,
//! `{summary}`, `{malformed}` (the reason, in the narration's language) and `{delay}` (ms on
//! the cable) by the step's own values; `{state.client}` by that endpoint's state when the step
//! crossed, `{state.from}` and `{state.to}` by the sender's and the receiver's.

use crate::locale::Lang;
use crate::net::Wire;
use crate::session::{Fate, Step};
use std::collections::HashMap;

/// Narration every lab shares: ARP, every kind of TCP segment, the socket API's view, and what
/// the cable's faults do.
const SHARED: &str = include_str!("../assets/narration/en/shared.txt");
const SHARED_KO: &str = include_str!("../assets/narration/ko/shared.txt");

/// The narration every lab shares, in `lang`.
pub fn shared(lang: Lang) -> &'static str {
    match lang {
        Lang::En => SHARED,
        Lang::Ko => SHARED_KO,
    }
}

/// The narration entries of one lab, parsed from its asset file.
#[derive(Debug, Default, Clone)]
pub struct Narration {
    entries: HashMap<String, String>,
    /// The language of the text, and so of the endpoints' names filled in.
    lang: Lang,
}

impl Narration {
    pub fn parse(text: &str) -> Self {
        let entries = crate::locale::parse_catalog(text).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Narration { entries, lang: Lang::En }
    }

    /// A lab's narration in `lang` on top of the text every lab shares; the lab's own entries
    /// win.
    pub fn for_lab(lang: Lang, lab: &dyn crate::labs::Lab) -> Self {
        let mut n = Narration::parse(shared(lang));
        // The labs its story carries first, then its own, which wins.
        for text in lab.narration(lang).into_iter().rev() {
            n.entries.extend(Narration::parse(text).entries);
        }
        n.lang = lang;
        n
    }

    /// The keys tried for a step, most specific first (see the module's documentation).
    pub fn keys(step: &Step, wire: Wire) -> Vec<String> {
        let place = match wire {
            Wire::Sim => "sim",
            Wire::Host if step.frame => "captured",
            Wire::Host => "host",
        };
        let variant = step
            .fate
            .variant()
            .or(step.again.then_some("again"))
            .or(step.nat.then_some("nat"))
            .or(step.forwarded.then_some("forwarded"));
        let suffix = variant.map(|v| format!("~{v}")).unwrap_or_default();
        let mut prefixes = Vec::new();
        let mut kind = step.kind.as_str();
        loop {
            prefixes.push(kind);
            match kind.rfind('.') {
                Some(dot) => kind = &kind[..dot],
                None => break,
            }
        }
        if variant.is_some() {
            prefixes.push("frame");
        }
        let conn = step.conn.as_deref().map(|c| format!("#{c}"));
        let mut keys = Vec::new();
        for p in prefixes {
            if let Some(conn) = &conn {
                keys.push(format!("{p}{conn}{suffix}@{place}"));
                keys.push(format!("{p}{conn}{suffix}"));
            }
            keys.push(format!("{p}{suffix}@{place}"));
            keys.push(format!("{p}{suffix}"));
        }
        keys
    }

    /// The key a step's narration comes from, if any.
    pub fn key(&self, step: &Step, wire: Wire) -> Option<String> {
        Narration::keys(step, wire).into_iter().find(|k| self.entries.contains_key(k))
    }

    /// The narration of a step, with its real values filled in; a step held back on the cable
    /// says so first.
    pub fn explain(&self, step: &Step, wire: Wire) -> String {
        let Some(key) = self.key(step, wire) else {
            return crate::locale::trf(self.lang, "({kind} has no narration yet)", &[("kind", &step.kind)]);
        };
        let text = fill(&self.entries[&key], step, self.lang);
        match (step.fate, self.entries.get("frame~delayed")) {
            (Fate::Delayed(_), Some(lead)) => format!("{}\n\n{text}", fill(lead, step, self.lang)),
            _ => text,
        }
    }

    /// Placeholders in this step's narration that the step has no value for (for tests); a
    /// step with no narration at all reports `(no narration)`.
    pub fn missing(&self, step: &Step, wire: Wire) -> Vec<String> {
        let Some(key) = self.key(step, wire) else { return vec!["(no narration)".into()] };
        placeholders(&self.entries[&key])
            .filter(|name| value(name, step, self.lang).is_none())
            .map(str::to_string)
            .collect()
    }

    /// The raw text of a key, if there is one.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Every key, for tests that check coverage.
    pub fn all_keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

fn value(name: &str, step: &Step, lang: Lang) -> Option<String> {
    match name {
        "from" => Some(crate::locale::endpoint(lang, &step.from)),
        "to" => Some(crate::locale::endpoint(lang, &step.to)),
        "len" => Some(step.len.to_string()),
        "summary" => Some(step.summary.clone()),
        "malformed" => step.malformed.as_deref().map(|r| crate::locale::localize_reason(lang, r).into_owned()),
        "delay" => match step.fate {
            Fate::Delayed(ms) => Some(ms.to_string()),
            _ => None,
        },
        // A lab's own state (a scanner's table) is said in the narration's language.
        "state.from" => step.state(&step.from).map(|s| crate::locale::localize(lang, s).into_owned()),
        "state.to" => step.state(&step.to).map(|s| crate::locale::localize(lang, s).into_owned()),
        _ => match name.strip_prefix("state.") {
            Some(who) => step.state(who).map(|s| crate::locale::localize(lang, s).into_owned()),
            None => step.value(name),
        },
    }
}

/// The `{name}`s of a template, in order.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// `template` with its `{name}`s filled from `step` (`?` where the step has no such value).
pub(crate) fn fill(template: &str, step: &Step, lang: Lang) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &rest[open + 1..open + close];
        let mut value = value(name, step, lang).unwrap_or_else(|| "?".into());
        // A name that starts a sentence starts with a capital: "Server acknowledges ..."; a
        // router's name (`r1`) is a name, not a word, and stays as it is.
        let starts = out.is_empty() || out.ends_with(". ") || out.ends_with("\n\n");
        let word = value.split(' ').next().is_some_and(|w| w.chars().all(|c| c.is_ascii_alphabetic()));
        if starts && word && value.starts_with(|c: char| c.is_ascii_lowercase()) {
            value[..1].make_ascii_uppercase();
        }
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: &str) -> Step {
        Step { kind: kind.into(), ..Step::default() }
    }

    #[test]
    fn longest_prefix_wins_and_paragraphs_join() {
        let n = Narration::parse("# c\n[smtp]\nAny SMTP.\n[smtp.command]\nA command\nover two lines.\n\nSecond.\n");
        assert_eq!(n.explain(&step("smtp.command.EHLO"), Wire::Host), "A command over two lines.\n\nSecond.");
        assert_eq!(n.explain(&step("smtp.reply.250"), Wire::Host), "Any SMTP.");
        assert_eq!(n.key(&step("ws.x"), Wire::Host), None);
    }

    #[test]
    fn the_place_is_tried_first_at_every_level() {
        let n = Narration::parse("[tcp.fin]\nAny FIN.\n[tcp.fin@host]\nThe socket API.\n[tcp@captured]\nCaptured.\n");
        assert_eq!(n.explain(&step("tcp.fin.first"), Wire::Host), "The socket API.");
        assert_eq!(n.explain(&step("tcp.fin.first"), Wire::Sim), "Any FIN.");
        let captured = Step { frame: true, ..step("tcp.fin.first") };
        assert_eq!(n.explain(&captured, Wire::Host), "Any FIN.", "the longer kind wins over the place");
        assert_eq!(n.explain(&Step { frame: true, ..step("tcp.syn") }, Wire::Host), "Captured.");
    }

    #[test]
    fn a_variant_never_falls_back_to_the_plain_text() {
        let n = Narration::parse("[dhcp.discover]\nA new xid.\n[frame~again]\nSent again.\n[frame~dropped]\nLost.\n");
        let again = Step { again: true, ..step("dhcp.discover") };
        assert_eq!(n.explain(&again, Wire::Sim), "Sent again.");
        let lost = Step { again: true, fate: Fate::Dropped, ..step("dhcp.discover") };
        assert_eq!(n.explain(&lost, Wire::Sim), "Lost.", "what the cable did comes first");
        let none = Narration::parse("[dhcp.discover]\nA new xid.\n");
        assert_eq!(none.key(&again, Wire::Sim), None);
    }

    #[test]
    fn states_fill_in_by_name_or_by_role() {
        let n = Narration::parse("[tcp]\n{from} is {state.from}; {to} is {state.server}.\n");
        let s = Step {
            from: "client".into(),
            to: "server".into(),
            states: vec![("client".into(), "FIN-WAIT-1".into()), ("server".into(), "CLOSE-WAIT".into())],
            ..step("tcp.fin")
        };
        assert_eq!(
            n.explain(&s, Wire::Sim),
            "Client is FIN-WAIT-1; server is CLOSE-WAIT.",
            "a sentence starts with a capital"
        );
        assert_eq!(n.missing(&Step { states: vec![], ..s }, Wire::Sim), ["state.from", "state.server"]);
    }

    /// Each moment the tracker can give a segment has a text of its own, not a more general
    /// one: even those no lab of ours produces (a simultaneous close) can come from a capture.
    #[test]
    fn every_tcp_moment_has_its_own_text() {
        let n = Narration::parse(SHARED);
        for &moment in crate::session::moment::TCP_MOMENTS {
            assert_eq!(n.key(&step(moment), Wire::Sim).as_deref(), Some(moment));
        }
    }
}
