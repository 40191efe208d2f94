//! The IMAP decoders: client→server bytes become one step per command (its literals included),
//! or per line answering a `+` (a SASL response, DONE); server→client bytes one step per
//! response line: the greeting, `+` continuations, untagged data (`* 3 EXISTS`, `* 1 FETCH
//! (...)`), and the tagged completion that ends a command. A long response (a whole message in
//! a literal) comes in parts.
//!
//! Both directions share the dialogue: which tag belongs to which command, so a tagged `OK`
//! names what it completes, and untagged data that answers IDLE or NOOP is told apart from the
//! data a command asked for.

use super::wire::{
    Command, Item, MAX_COMMAND_LITERAL, MAX_RESPONSE_LITERAL, Scan, Value, items, literal_at_end, parse_command, scan,
};
use crate::locale::en;
use crate::session::Layer;
use crate::wire::tls::Switch;
use crate::wire::{Decoded, Decoder, Message, printable};
use base64::Engine;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const PROTO: &str = "IMAP";
/// Commands remembered while waiting for their completion.
const MAX_PENDING: usize = 256;
/// Characters of a line in a summary.
const SUMMARY_CHARS: usize = 90;
/// Header fields of a message shown as fields of the FETCH step that carries its header.
const HEADERS: [&str; 5] = ["From", "To", "Subject", "Date", "Message-ID"];

/// What both directions know about the dialogue.
#[derive(Debug, Default)]
struct Dialogue {
    /// Commands sent and not completed: tag and verb, oldest first.
    pending: VecDeque<(String, &'static str)>,
    /// The next client line answers a `+`: AUTHENTICATE's SASL response, or DONE ending IDLE.
    continuing: Option<&'static str>,
    greeted: bool,
    /// Turned on when the server completes STARTTLS with OK: what follows is TLS records.
    tls: Switch,
}

type Shared = Arc<Mutex<Dialogue>>;

fn lock(d: &Shared) -> std::sync::MutexGuard<'_, Dialogue> {
    d.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fresh decoders for one connection: (client→server, server→client). After STARTTLS's OK the
/// dialogue goes on inside TLS records, opened with the secrets our endpoints logged;
/// `implicit`: TLS from the first byte (port 993).
pub fn decoders(implicit: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    crate::tls::decoders(implicit, |tls| {
        let dialogue = Shared::new(Mutex::new(Dialogue { tls, ..Dialogue::default() }));
        (
            Box::new(CommandDecoder { dialogue: dialogue.clone(), part: None }),
            Box::new(ResponseDecoder { dialogue, part: None }),
        )
    })
}

/// A message of the IMAP layer.
fn message(kind: impl Into<String>, bytes: &[u8]) -> Message {
    let line = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
    Message::new(Layer::Application, PROTO, kind, printable(line, SUMMARY_CHARS))
}

/// Where a long command or response is, between its parts: octets of a literal still to come,
/// then the rest of its line.
#[derive(Debug, Clone, Copy)]
struct Part {
    literal: u64,
    number: usize,
}

/// The next piece of a command or response that went in parts: the rest of a literal, then
/// the rest of its line (which may announce another literal).
fn next_part(part: Part, buf: &[u8], keep: usize, max_literal: u64, kind: &str) -> (Decoded, Option<Part>) {
    let number = part.number + 1;
    let step = |len: usize, summary: String| {
        let mut msg = message(kind, &buf[..len]).field("IMAP.part", number, 0..0);
        msg.summary = summary;
        Decoded::Message { msg, len }
    };
    let lit = part.literal.min(buf.len() as u64) as usize;
    if (lit as u64) < part.literal {
        if lit < keep {
            return (Decoded::Incomplete, Some(part));
        }
        let summary = en("part {n}: {octets} octets of a literal", &[("n", &number), ("octets", &lit)]);
        return (step(lit, summary), Some(Part { literal: part.literal - lit as u64, number }));
    }
    let rest = &buf[lit..];
    let text = |len: usize| printable(&rest[..len], 60);
    match scan(rest, max_literal) {
        Scan::Whole(len) => {
            let summary = en("part {n}, the end: {text}", &[("n", &number), ("text", &text(len))]);
            (step(lit + len, summary), None)
        }
        Scan::Awaits { len, octets } if kind == "imap.part" => {
            let summary = en("part {n}: {text}", &[("n", &number), ("text", &text(len))]);
            (step(lit + len, summary), Some(Part { literal: octets, number }))
        }
        _ if buf.len() >= keep => {
            let (len, literal) = head_and_literal(rest);
            let summary = en("part {n}: {text}", &[("n", &number), ("text", &text(len))]);
            (step(lit + len, summary), Some(Part { literal, number }))
        }
        _ => (Decoded::Incomplete, Some(part)),
    }
}

/// How far `buf` goes in whole lines and whole literals, up to the announcement of the first
/// literal it does not hold: that length, and the literal's octets still to come (all of a
/// buffer without a line end, and none).
fn head_and_literal(buf: &[u8]) -> (usize, u64) {
    let mut at = 0;
    while let Some(end) = buf[at..].windows(2).position(|w| w == b"\r\n") {
        let line = &buf[at..at + end];
        at += end + 2;
        let Some((n, _)) = literal_at_end(line) else { continue };
        if (buf.len() - at) as u64 >= n {
            at += n as usize;
        } else {
            return (at, n);
        }
    }
    if at == 0 { (buf.len(), 0) } else { (at, 0) }
}

/// Client→server: commands.
struct CommandDecoder {
    dialogue: Shared,
    part: Option<Part>,
}

impl Decoder for CommandDecoder {
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded {
        if buf.is_empty() {
            return Decoded::Incomplete;
        }
        if let Some(part) = self.part.take() {
            let (decoded, rest) = next_part(part, buf, keep, MAX_COMMAND_LITERAL, "imap.part");
            self.part = rest;
            return decoded;
        }
        if lock(&self.dialogue).pending.iter().any(|(_, verb)| *verb == "STARTTLS") {
            // After STARTTLS, the bytes are TLS records or commands depending on the answer.
            return Decoded::Incomplete;
        }
        let continuing = lock(&self.dialogue).continuing;
        if let Some(what) = continuing {
            let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else { return Decoded::Incomplete };
            lock(&self.dialogue).continuing = None;
            let mut msg = continuation(what, &buf[..end + 2]);
            if what == "sasl" && lock(&self.dialogue).tls.is_on() {
                crate::wire::tls::inside(&mut msg);
            }
            return Decoded::Message { msg, len: end + 2 };
        }
        match scan(buf, MAX_COMMAND_LITERAL) {
            Scan::Whole(len) => Decoded::Message { msg: self.command(&buf[..len]), len },
            Scan::Incomplete => Decoded::Incomplete,
            // The client waits for the server's `+`: the command so far is a step of its own.
            Scan::Awaits { len, octets } => {
                let mut msg = self.command_head(&buf[..len]);
                msg.notes.push(en(
                    "a literal of {n} octets follows, once the server answers + (a synchronizing literal)",
                    &[("n", &octets)],
                ));
                self.part = Some(Part { literal: octets, number: 1 });
                Decoded::Message { msg, len }
            }
            Scan::TooLong(len) => {
                let reason = en("command line over {max} octets", &[("max", &super::wire::MAX_LINE)]);
                Decoded::Message { msg: message("imap.command", &buf[..len]).malformed(reason), len }
            }
            Scan::TooBig { len, octets } => {
                let reason = en(
                    "a literal of {n} octets, over the {max} this server takes",
                    &[("n", &octets), ("max", &MAX_COMMAND_LITERAL)],
                );
                Decoded::Message { msg: message("imap.command", &buf[..len]).malformed(reason), len }
            }
        }
    }
}

impl CommandDecoder {
    /// A command whose literal is still to come: its tag and verb.
    fn command_head(&mut self, bytes: &[u8]) -> Message {
        let tag_end = bytes.iter().position(|&b| b == b' ').unwrap_or(0);
        let verb_end = bytes[tag_end + 1..].iter().position(|&b| b == b' ').map_or(tag_end + 1, |i| tag_end + 1 + i);
        let verb = String::from_utf8_lossy(&bytes[tag_end + 1..verb_end]).to_ascii_uppercase();
        let tag = String::from_utf8_lossy(&bytes[..tag_end]).into_owned();
        let known = ["LOGIN", "SELECT", "EXAMINE", "CREATE", "STATUS", "LIST", "COPY", "MOVE", "SEARCH"]
            .into_iter()
            .find(|v| *v == verb)
            .unwrap_or("literal");
        self.expect(&tag, known);
        message(format!("imap.command.{known}"), bytes).field("IMAP.tag", tag, 0..tag_end).field(
            "IMAP.command",
            verb,
            tag_end + 1..verb_end,
        )
    }

    fn expect(&mut self, tag: &str, verb: &'static str) {
        let mut d = lock(&self.dialogue);
        if d.pending.iter().any(|(t, _)| t == tag) {
            return;
        }
        d.pending.push_back((tag.to_string(), verb));
        if d.pending.len() > MAX_PENDING {
            d.pending.pop_front();
        }
    }

    /// A whole command's step: its tag, verb and arguments as fields.
    fn command(&mut self, bytes: &[u8]) -> Message {
        let tagged = match parse_command(bytes) {
            Ok(t) => t,
            Err(e) => return message("imap.command", bytes).malformed(e.to_string()),
        };
        let verb = match &tagged.command {
            Ok(c) => c.verb(),
            Err(_) => "bad",
        };
        self.expect(&tagged.tag, verb);
        let kind = if verb == "bad" { "imap.command".to_string() } else { format!("imap.command.{verb}") };
        let mut msg = message(kind, bytes).field("IMAP.tag", tagged.tag.as_str(), tagged.tag_range.clone()).field(
            "IMAP.command",
            String::from_utf8_lossy(&bytes[tagged.verb_range.clone()]).to_ascii_uppercase(),
            tagged.verb_range.clone(),
        );
        let arg = |i: usize| tagged.args.get(i).map(|a| (a.value.text().unwrap_or_default(), a.range.clone()));
        let command = match tagged.command {
            Ok(c) => c,
            Err(e) => return msg.malformed(e.to_string()),
        };
        match &command {
            Command::Login { .. } => {
                if let (Some((user, ur)), Some((password, pr))) = (arg(0), arg(1)) {
                    msg = msg.field("IMAP.user", user, ur).field("IMAP.password", password, pr);
                    msg.notes.push(en(
                        "the password crosses the wire as it is typed: only TLS (STARTTLS, or port 993) hides it",
                        &[],
                    ));
                    if lock(&self.dialogue).tls.is_on() {
                        crate::wire::tls::inside(&mut msg);
                    }
                }
            }
            Command::Authenticate { mechanism, initial } => {
                msg = msg.field("IMAP.mechanism", mechanism.as_str(), tagged.args[0].range.clone());
                if let (Some(initial), Some(item)) = (initial, tagged.args.get(1)) {
                    msg = sasl_fields(msg, initial, item.range.clone());
                    if lock(&self.dialogue).tls.is_on() {
                        crate::wire::tls::inside(&mut msg);
                    }
                }
                if initial.is_none() {
                    lock(&self.dialogue).continuing = Some("sasl");
                }
            }
            Command::Select { mailbox, .. } | Command::Create(mailbox) | Command::Status { mailbox, .. } => {
                msg = msg.field("IMAP.mailbox", mailbox.as_str(), tagged.args[0].range.clone());
            }
            Command::List { pattern, .. } => {
                msg = msg.field("IMAP.pattern", pattern.as_str(), tagged.args[1].range.clone())
            }
            Command::Fetch { set, items, uid } => {
                msg = msg
                    .field("IMAP.set", set.as_str(), tagged.args[0].range.clone())
                    .field("IMAP.items", items.join(" "), tagged.args[1].range.clone())
                    .field("IMAP.uid", *uid, 0..0);
            }
            Command::Store { set, flags, uid, .. } => {
                msg = msg
                    .field("IMAP.set", set.as_str(), tagged.args[0].range.clone())
                    .field("IMAP.store", tagged.args[1].value.text().unwrap_or_default(), tagged.args[1].range.clone())
                    .field("IMAP.flags", flags.join(" "), tagged.args[2].range.clone())
                    .field("IMAP.uid", *uid, 0..0);
            }
            Command::Search { criteria, uid } => {
                let range = tagged.args[0].range.start..tagged.args.last().map_or(0, |a| a.range.end);
                msg = msg.field("IMAP.criteria", criteria.join(" "), range).field("IMAP.uid", *uid, 0..0);
            }
            Command::Copy { set, mailbox, uid, .. } => {
                msg = msg
                    .field("IMAP.set", set.as_str(), tagged.args[0].range.clone())
                    .field("IMAP.mailbox", mailbox.as_str(), tagged.args[1].range.clone())
                    .field("IMAP.uid", *uid, 0..0);
            }
            Command::Idle => lock(&self.dialogue).continuing = Some("done"),
            _ => {}
        }
        msg
    }
}

/// A SASL PLAIN response's parts (RFC 4616), decoded from its base64.
fn sasl_fields(mut msg: Message, b64: &str, range: std::ops::Range<usize>) -> Message {
    let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap_or_default();
    let parts: Vec<String> = decoded.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    if let [_, user, password] = parts.as_slice() {
        msg = msg.field("IMAP.user", user.as_str(), range.clone()).field("IMAP.password", password.as_str(), range);
        msg.notes.push(en(
            "base64 is an encoding, not encryption: \\0{user}\\0{password} decodes at a glance, which is why TLS comes first",
            &[("user", user), ("password", password)],
        ));
    }
    msg
}

/// A client line answering a `+`: DONE, or AUTHENTICATE's response.
fn continuation(what: &str, line: &[u8]) -> Message {
    let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
    match what {
        "done" => {
            let msg = message("imap.done", line);
            if text.eq_ignore_ascii_case("DONE") { msg } else { msg.malformed(en("IDLE ends with DONE", &[])) }
        }
        _ => sasl_fields(message("imap.sasl", line), &text, 0..line.len() - 2),
    }
}

/// Server→client: responses.
struct ResponseDecoder {
    dialogue: Shared,
    part: Option<(Part, String)>,
}

impl Decoder for ResponseDecoder {
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded {
        if buf.is_empty() {
            return Decoded::Incomplete;
        }
        if let Some((part, kind)) = self.part.take() {
            let (decoded, rest) = next_part(part, buf, keep, MAX_RESPONSE_LITERAL, &format!("{kind}.part"));
            self.part = rest.map(|p| (p, kind));
            return decoded;
        }
        match scan(buf, MAX_RESPONSE_LITERAL) {
            Scan::Whole(len) => Decoded::Message { msg: self.response(&buf[..len]), len },
            Scan::Incomplete | Scan::Awaits { .. } if buf.len() < keep => Decoded::Incomplete,
            Scan::Incomplete | Scan::Awaits { .. } => {
                // Longer than a step keeps: the line with its literal's first octets, then parts.
                let (head, literal) = head_and_literal(buf);
                let take = (head + (literal as usize).min(buf.len() - head)).min(buf.len());
                let mut msg = self.response_head(&buf[..head]);
                msg.notes.insert(0, en("part 1 of a long response: the rest follows", &[]));
                let left = literal - (take - head) as u64;
                self.part = Some((Part { literal: left, number: 1 }, msg.kind.clone()));
                Decoded::Message { msg, len: take }
            }
            Scan::TooLong(len) => {
                let reason = en("response line over {max} octets", &[("max", &super::wire::MAX_LINE)]);
                Decoded::Message { msg: message("imap.response", &buf[..len]).malformed(reason), len }
            }
            Scan::TooBig { len, octets } => {
                let reason = en(
                    "a literal of {n} octets, over the {max} this lab reads",
                    &[("n", &octets), ("max", &MAX_RESPONSE_LITERAL)],
                );
                Decoded::Message { msg: message("imap.response", &buf[..len]).malformed(reason), len }
            }
        }
    }
}

impl ResponseDecoder {
    /// The first line of a long response, before its literal: what it is, by its first words.
    fn response_head(&mut self, bytes: &[u8]) -> Message {
        let words: Vec<&[u8]> = bytes.split(|&b| b == b' ').take(3).collect();
        let kind = match words.as_slice() {
            [b"*", n, what, ..] if n.iter().all(u8::is_ascii_digit) => {
                format!("imap.untagged.{}", String::from_utf8_lossy(what).to_ascii_uppercase())
            }
            _ => "imap.response".to_string(),
        };
        message(kind, bytes)
    }

    fn response(&mut self, bytes: &[u8]) -> Message {
        let greeted = std::mem::replace(&mut lock(&self.dialogue).greeted, true);
        if bytes.starts_with(b"+") {
            return message("imap.continuation", bytes).field("IMAP.text", text_after(bytes, 1), 1..bytes.len() - 2);
        }
        // The first words: the tag, then a number or the response's name.
        let words = spans(bytes, 3);
        let word = |i: usize| words.get(i).map(|r| String::from_utf8_lossy(&bytes[r.clone()]).into_owned());
        let Some(tag) = word(0).filter(|t| !t.is_empty()) else {
            return message("imap.response", bytes).malformed(en("an empty response line", &[]));
        };
        if tag != "*" {
            return self.tagged(bytes, &words, tag);
        }
        let (number, at) = match word(1).and_then(|w| w.parse::<u32>().ok()) {
            Some(n) => (Some(n), 2),
            None => (None, 1),
        };
        let Some(what) = word(at).map(|w| w.to_ascii_uppercase()).filter(|w| !w.is_empty()) else {
            return message("imap.response", bytes).malformed(en("an untagged response without a name", &[]));
        };
        let status = matches!(what.as_str(), "OK" | "NO" | "BAD" | "BYE" | "PREAUTH");
        // Data the client did not ask for with this command: another client's changes, told
        // in answer to IDLE or NOOP.
        let answering = lock(&self.dialogue).pending.front().map(|(_, v)| *v);
        let update = matches!(answering, Some("IDLE" | "NOOP"))
            && matches!(what.as_str(), "EXISTS" | "EXPUNGE" | "FETCH" | "RECENT");
        let after = words[at].end;
        let code = if status { code(bytes, after) } else { None };
        let kind = if !greeted && status && what != "NO" && what != "BAD" {
            "imap.greeting".to_string()
        } else {
            let name = code.as_ref().map(|(c, _)| c.split(' ').next().unwrap_or_default().to_ascii_uppercase());
            match (what.as_str(), name) {
                ("OK" | "NO" | "BAD", Some(name))
                    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                {
                    format!("imap.untagged.{what}.{name}")
                }
                _ if update => format!("imap.update.{what}"),
                _ => format!("imap.untagged.{what}"),
            }
        };
        let mut msg = message(kind, bytes).field("IMAP.tag", "*", 0..1);
        if let Some(n) = number {
            msg = msg.field("IMAP.number", n, words[1].clone());
        }
        msg = msg.field("IMAP.response", what.as_str(), words[at].clone());
        if status {
            // Free text after the name (and the code): read as text, not as values.
            if let Some((code, range)) = &code {
                msg = msg.field("IMAP.code", code.as_str(), range.clone());
            }
            let start = code.map_or(after, |(_, r)| r.end);
            let start = (start + 1).min(bytes.len() - 2);
            return msg.field("IMAP.text", text_after(bytes, start), start..bytes.len() - 2);
        }
        let (list, _) = match items(bytes, 0) {
            Ok(read) => read,
            Err(why) => return msg.malformed(why),
        };
        if what == "FETCH"
            && let Some(Item { value: Value::List(data), .. }) = list.get(3)
        {
            msg = fetch_fields(msg, data);
        }
        msg
    }

    /// A tagged completion: which command it ends, and how.
    fn tagged(&mut self, bytes: &[u8], words: &[std::ops::Range<usize>], tag: String) -> Message {
        let verb = {
            let mut d = lock(&self.dialogue);
            match d.pending.iter().position(|(t, _)| *t == tag) {
                Some(i) => d.pending.remove(i).map_or("unknown", |(_, v)| v),
                None => "unknown",
            }
        };
        let status = words.get(1).map(|r| String::from_utf8_lossy(&bytes[r.clone()]).to_ascii_uppercase());
        let Some(status) = status.filter(|s| matches!(s.as_str(), "OK" | "NO" | "BAD")) else {
            return message("imap.response", bytes)
                .malformed(en("a tagged response says OK, NO or BAD after its tag", &[]));
        };
        if verb == "IDLE" || verb == "AUTHENTICATE" {
            lock(&self.dialogue).continuing = None;
        }
        if verb == "STARTTLS" && status == "OK" {
            lock(&self.dialogue).tls.turn_on();
        }
        let mut msg = message(format!("imap.tagged.{status}.{verb}"), bytes)
            .field("IMAP.tag", tag, words[0].clone())
            .field("IMAP.status", status, words[1].clone());
        let code = code(bytes, words[1].end);
        if let Some((code, range)) = &code {
            msg = msg.field("IMAP.code", code.as_str(), range.clone());
            if code == "PRIVACYREQUIRED" {
                // Not a wrong password: no login at all before TLS (RFC 9051 §7.1).
                msg.kind = "imap.tagged.NO.PRIVACYREQUIRED".into();
            }
        }
        let start = (code.map_or(words[1].end, |(_, r)| r.end) + 1).min(bytes.len() - 2);
        msg.field("IMAP.text", text_after(bytes, start), start..bytes.len() - 2)
    }
}

/// Where the first `n` space-separated words of a line lie.
fn spans(bytes: &[u8], n: usize) -> Vec<std::ops::Range<usize>> {
    let line = &bytes[..bytes.len().saturating_sub(2)];
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in line.iter().enumerate() {
        if out.len() == n {
            break;
        }
        if b == b' ' {
            out.push(start..i);
            start = i + 1;
        }
    }
    if out.len() < n && start <= line.len() {
        out.push(start..line.len());
    }
    out
}

/// The response code in brackets right after `at` (` [UIDVALIDITY 1]`, ` [PERMANENTFLAGS
/// (\Seen)]`), and where it lies, brackets and all.
fn code(bytes: &[u8], at: usize) -> Option<(String, std::ops::Range<usize>)> {
    let start = at + 1;
    if bytes.get(start) != Some(&b'[') {
        return None;
    }
    let close = bytes[start..].iter().position(|&b| b == b']' || b == b'\r').map(|i| start + i)?;
    (bytes[close] == b']').then(|| (String::from_utf8_lossy(&bytes[start + 1..close]).into_owned(), start..close + 1))
}

/// The text of a line from `start` to its CRLF.
fn text_after(bytes: &[u8], start: usize) -> String {
    String::from_utf8_lossy(&bytes[start.min(bytes.len() - 2)..bytes.len() - 2]).trim().to_string()
}

/// A FETCH response's data as fields: flags, UID, size, and the header fields of a header it
/// carries.
fn fetch_fields(mut msg: Message, data: &[Item]) -> Message {
    let mut i = 0;
    while i + 1 < data.len() {
        let name = data[i].value.text().unwrap_or_default().to_ascii_uppercase();
        let value = &data[i + 1];
        match name.as_str() {
            "FLAGS" => {
                let flags: Vec<String> = match &value.value {
                    Value::List(l) => l.iter().filter_map(|f| f.value.text()).collect(),
                    _ => Vec::new(),
                };
                msg = msg.field("IMAP.flags", format!("({})", flags.join(" ")), value.range.clone());
            }
            "UID" | "RFC822.SIZE" => {
                msg = msg.field(
                    format!("IMAP.{}", name.to_lowercase()),
                    value.value.text().unwrap_or_default(),
                    value.range.clone(),
                );
            }
            _ if name.starts_with("BODY[") || name.starts_with("RFC822") => {
                if let Value::Literal(bytes) = &value.value {
                    msg = msg.field("IMAP.section", name.as_str(), data[i].range.clone()).field(
                        "IMAP.octets",
                        bytes.len(),
                        value.range.clone(),
                    );
                    for h in HEADERS {
                        if let Some(v) = crate::labs::smtp::message::header_fields(bytes)
                            .into_iter()
                            .find(|f| f.name.eq_ignore_ascii_case(h))
                        {
                            msg = msg.field(format!("IMAP.header.{h}"), v.value, value.range.clone());
                        }
                    }
                }
            }
            _ => {}
        }
        i += 2;
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{feed as run, value};

    /// RFC 9051 §8's example, in the order it crosses: each response names what it answers.
    #[test]
    fn the_example_session_of_rfc_9051() {
        for chunk in [1, 4096] {
            let (mut c, mut s) = decoders(false);
            let greeting = run(
                s.as_mut(),
                b"* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI] IMAP4rev2 Service Ready\r\n",
                chunk,
                65536,
            );
            assert_eq!(greeting[0].0.kind, "imap.greeting");
            let login = run(c.as_mut(), b"a001 login mrc secret\r\n", chunk, 65536);
            assert_eq!(login[0].0.kind, "imap.command.LOGIN");
            assert_eq!(value(&login[0].0, "IMAP.password"), "secret");
            let pw = login[0].0.fields.iter().find(|f| f.path == "IMAP.password").unwrap();
            assert_eq!(&login[0].1[pw.range[0]..pw.range[1]], b"secret");
            assert_eq!(run(s.as_mut(), b"a001 OK LOGIN completed\r\n", chunk, 65536)[0].0.kind, "imap.tagged.OK.LOGIN");
            run(c.as_mut(), b"a002 select inbox\r\n", chunk, 65536);
            let select = b"* 18 EXISTS\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [UIDVALIDITY 3857529045] UIDs valid\r\n* LIST () \"/\" INBOX\r\na002 OK [READ-WRITE] SELECT completed\r\n";
            let steps = run(s.as_mut(), select, chunk, 65536);
            let kinds: Vec<_> = steps.iter().map(|(m, _)| m.kind.as_str()).collect();
            assert_eq!(
                kinds,
                [
                    "imap.untagged.EXISTS",
                    "imap.untagged.FLAGS",
                    "imap.untagged.OK.UIDVALIDITY",
                    "imap.untagged.LIST",
                    "imap.tagged.OK.SELECT"
                ]
            );
            assert_eq!(value(&steps[0].0, "IMAP.number"), 18);
            assert_eq!(value(&steps[4].0, "IMAP.code"), "READ-WRITE");
            run(c.as_mut(), b"a003 fetch 12 (FLAGS BODY[HEADER])\r\n", chunk, 65536);
            let fetch = b"* 12 FETCH (FLAGS (\\Seen) BODY[HEADER] {51}\r\nFrom: a@b.c\r\nSubject: IMAP\r\nMessage-ID: <1@b.c>\r\n\r\n)\r\na003 OK FETCH completed\r\n";
            let steps = run(s.as_mut(), fetch, chunk, 65536);
            assert_eq!(steps[0].0.kind, "imap.untagged.FETCH");
            assert_eq!(value(&steps[0].0, "IMAP.flags"), "(\\Seen)");
            assert_eq!(value(&steps[0].0, "IMAP.header.Subject"), "IMAP");
            assert_eq!(steps[1].0.kind, "imap.tagged.OK.FETCH");
        }
    }

    #[test]
    fn idle_updates_literals_that_wait_and_long_responses_in_parts() {
        let (mut c, mut s) = decoders(false);
        run(s.as_mut(), b"* OK ready\r\n", 4096, 64);
        run(c.as_mut(), b"i IDLE\r\n", 4096, 64);
        let steps = run(s.as_mut(), b"+ idling\r\n* 4 EXISTS\r\n* 1 FETCH (FLAGS (\\Seen))\r\n", 4096, 64);
        let kinds: Vec<_> = steps.iter().map(|(m, _)| m.kind.as_str()).collect();
        assert_eq!(kinds, ["imap.continuation", "imap.update.EXISTS", "imap.update.FETCH"]);
        assert_eq!(run(c.as_mut(), b"DONE\r\n", 4096, 64)[0].0.kind, "imap.done");
        assert_eq!(run(s.as_mut(), b"i OK IDLE terminated\r\n", 4096, 64)[0].0.kind, "imap.tagged.OK.IDLE");
        // A synchronizing literal: the command so far, then the rest once + came.
        let steps = run(c.as_mut(), b"l LOGIN {3}\r\n", 4096, 64);
        assert!(steps[0].0.notes[0].contains("a literal of 3 octets follows"));
        let steps = run(c.as_mut(), b"bob \"lab\"\r\n", 4096, 64);
        assert_eq!(steps.iter().map(|(_, b)| b.len()).sum::<usize>(), 11);
        // A message bigger than a step keeps comes in parts that add up.
        let body = vec![b'x'; 300];
        let mut fetch = b"* 1 FETCH (BODY[] {300}\r\n".to_vec();
        fetch.extend_from_slice(&body);
        fetch.extend_from_slice(b")\r\n");
        let steps = run(s.as_mut(), &fetch, 50, 64);
        assert!(steps.len() > 2, "{steps:?}");
        assert_eq!(steps.iter().map(|(_, b)| b.len()).sum::<usize>(), fetch.len());
        assert_eq!(steps[0].0.kind, "imap.untagged.FETCH");
        // Bad lines are malformed steps.
        let steps = run(c.as_mut(), b"\r\nx FROB\r\nl LOGIN {4294967295}\r\n", 4096, 64);
        assert!(steps.iter().all(|(m, _)| m.malformed.is_some()), "{steps:?}");
        assert_eq!(steps[1].0.malformed.as_deref(), Some("no IMAP command FROB"));
    }
}
