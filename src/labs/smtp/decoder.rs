//! The SMTP decoders: client→server bytes become one step per command line (or one step for the
//! whole message text after a 354), server→client bytes one step per reply, multi-line or not.
//!
//! The two directions share a `Dialogue`: the command decoder must know that the server said
//! 354 to switch to message text, and the reply decoder which command a reply answers (replies
//! come back in the order of the commands, even when the client pipelines them, RFC 2920).

use super::message::{END_OF_DATA, end_of_data, header_fields};
use super::wire::{Command, CommandError, LineEnd, MAX_TEXT_LINE, ReplyCode, ReplyError, next_line, reply_lines, span};
use crate::locale::en;
use crate::session::Layer;
use crate::wire::tls::Switch;
use crate::wire::{Decoded, Decoder, Message, printable};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const PROTO: &str = "SMTP";
/// Commands remembered while waiting for their replies; a peer that never answers cannot grow it.
const MAX_UNANSWERED: usize = 256;
/// Header fields shown for one message text.
const MAX_HEADER_FIELDS: usize = 64;

/// What a reply the server has yet to send answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaiting {
    /// A command line, by its verb (`EHLO`, or `?` for a line that did not parse).
    Command(String),
    /// The message text, ended by the `.` line.
    Text,
}

/// What both directions know about the dialogue so far.
#[derive(Debug, Default)]
struct Dialogue {
    /// Sent and not yet answered, oldest first.
    awaiting: VecDeque<Awaiting>,
    /// The server said 354: the client's next bytes are the message text.
    in_text: bool,
    /// The server said 334: the client's next line is a SASL response, not a command.
    sasl: bool,
    /// Turned on when the server agrees to STARTTLS: the bytes after are TLS records.
    tls: Switch,
}

impl Dialogue {
    fn expect(&mut self, what: Awaiting) {
        self.awaiting.push_back(what);
        if self.awaiting.len() > MAX_UNANSWERED {
            self.awaiting.pop_front();
        }
    }
}

type Shared = Arc<Mutex<Dialogue>>;

fn lock(d: &Shared) -> std::sync::MutexGuard<'_, Dialogue> {
    d.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fresh decoders for one connection: (client→server, server→client). The dialogue starts in
/// the clear; after `220` to STARTTLS it goes on inside TLS records, opened with the secrets our
/// endpoints logged. `implicit`: TLS from the first byte (port 465).
pub fn decoders(implicit: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    crate::tls::decoders(implicit, |tls| {
        let dialogue = Shared::new(Mutex::new(Dialogue { tls, ..Dialogue::default() }));
        (
            Box::new(CommandDecoder { dialogue: dialogue.clone(), ..CommandDecoder::default() }),
            Box::new(ReplyDecoder { dialogue }),
        )
    })
}

/// Client→server: command lines, and the message text after a 354.
#[derive(Default)]
pub struct CommandDecoder {
    dialogue: Shared,
    /// A command line longer than `keep` is being passed over until its line end.
    skipping_line: bool,
    /// Parts of the current message text already emitted (a text longer than `keep` comes in parts).
    text_parts: u32,
    /// The last part ended in the middle of a line, so the next does not start a line.
    mid_line: bool,
}

impl Decoder for CommandDecoder {
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded {
        let (in_text, sasl, unanswered) = {
            let d = lock(&self.dialogue);
            let decides =
                |a: &Awaiting| matches!(a, Awaiting::Command(v) if v == "DATA" || v == "STARTTLS" || v == "AUTH");
            (d.in_text, d.sasl, d.awaiting.iter().any(decides))
        };
        if in_text {
            return self.text(buf, keep);
        }
        if unanswered {
            // After DATA, STARTTLS or AUTH, the bytes are text, TLS records, a SASL response or
            // commands depending on the reply: wait for it.
            return Decoded::Incomplete;
        }
        if sasl {
            return self.sasl(buf, keep);
        }
        self.command(buf, keep)
    }
}

impl CommandDecoder {
    fn command(&mut self, buf: &[u8], keep: usize) -> Decoded {
        let Some((body, _, len)) = next_line(buf) else {
            if buf.len() < keep {
                return Decoded::Incomplete;
            }
            let msg = Message::new(Layer::Application, PROTO, "smtp.command.malformed", printable(buf, 80)).malformed(
                en("no line end in {octets} octets: a command line is at most 512", &[("octets", &buf.len())]),
            );
            self.skipping_line = true;
            return Decoded::Message { msg, len: buf.len() };
        };
        if self.skipping_line {
            self.skipping_line = false;
            lock(&self.dialogue).expect(Awaiting::Command("?".into()));
            let msg = Message::new(Layer::Application, PROTO, "smtp.command.malformed", printable(body, 80))
                .malformed(en("the end of an over-long command line", &[]));
            return Decoded::Message { msg, len };
        }
        let summary = printable(body, 120);
        let msg = match Command::parse_line(&buf[..len]) {
            Ok(cmd) => {
                let verb = cmd.verb();
                let tls = {
                    let mut d = lock(&self.dialogue);
                    d.expect(Awaiting::Command(verb.clone()));
                    d.tls.is_on()
                };
                // parse_line succeeded, so the line is UTF-8 text.
                let text = std::str::from_utf8(body).unwrap_or_default();
                let mut msg = command_message(text, cmd, summary);
                if tls && verb == "AUTH" {
                    crate::wire::tls::inside(&mut msg);
                }
                msg
            }
            Err(e) => {
                let verb = e.verb().map(str::to_string).unwrap_or_else(|| "?".into());
                lock(&self.dialogue).expect(Awaiting::Command(verb.clone()));
                refused_message(body, &e, &verb, summary)
            }
        };
        Decoded::Message { msg, len }
    }

    /// A SASL response line after a 334 (RFC 4954 §4): base64, decoded for the reader.
    fn sasl(&mut self, buf: &[u8], keep: usize) -> Decoded {
        let Some((body, _, len)) = next_line(buf) else {
            return if buf.len() < keep { Decoded::Incomplete } else { self.command(buf, keep) };
        };
        {
            let mut d = lock(&self.dialogue);
            d.sasl = false;
            d.expect(Awaiting::Command("AUTH".into()));
        }
        let mut msg = Message::new(Layer::Application, PROTO, "smtp.sasl", printable(body, 80));
        if body == b"*" {
            msg.kind = "smtp.sasl.cancel".into();
            return Decoded::Message { msg, len };
        }
        msg = sasl_field(msg, body, 0..body.len());
        if lock(&self.dialogue).tls.is_on() {
            crate::wire::tls::inside(&mut msg);
        }
        Decoded::Message { msg, len }
    }

    fn text(&mut self, buf: &[u8], keep: usize) -> Decoded {
        let end = if self.mid_line {
            buf.windows(5).position(|w| w == b"\r\n.\r\n").map(|i| i + 5)
        } else {
            end_of_data(buf)
        };
        let (len, complete) = match end {
            Some(len) => (len, true),
            None if buf.len() >= keep => {
                // No end yet and the step is full: emit up to the last line end, and go on.
                let cut = buf.windows(2).rposition(|w| w == b"\r\n").map(|i| i + 2).unwrap_or(buf.len());
                (cut, false)
            }
            None => return Decoded::Incomplete,
        };
        let bytes = &buf[..len];
        let part = self.text_parts + 1;
        let msg = text_message(bytes, part, complete, !self.mid_line);
        if complete {
            self.text_parts = 0;
            self.mid_line = false;
            let mut d = lock(&self.dialogue);
            d.in_text = false;
            d.expect(Awaiting::Text);
        } else {
            self.text_parts = part;
            self.mid_line = !bytes.ends_with(b"\r\n");
        }
        Decoded::Message { msg, len }
    }
}

/// The step of a command line that parsed.
fn command_message(text: &str, cmd: Command<'_>, summary: String) -> Message {
    let verb = cmd.verb();
    let typed = &text[..text.find(' ').unwrap_or(text.len())];
    let kind = match cmd {
        Command::Unknown { .. } => "smtp.command.unknown".to_string(),
        _ => format!("smtp.command.{verb}"),
    };
    let mut msg =
        Message::new(Layer::Application, PROTO, kind, summary).field("SMTP.command", verb.clone(), span(text, typed));
    match cmd {
        Command::Ehlo { domain } | Command::Helo { domain } => {
            msg = msg.field("SMTP.domain", domain, span(text, domain));
        }
        Command::Mail { from, params } | Command::Rcpt { to: from, params } => {
            let path = if verb == "MAIL" { "SMTP.mail_from" } else { "SMTP.rcpt_to" };
            msg = msg.field(path, from.mailbox, span(text, from.mailbox));
            if from.is_null() {
                msg.notes.push(en("the null reverse-path <>: no bounce may be sent for this message", &[]));
            }
            for p in params {
                let name = format!("SMTP.param.{}", p.keyword.to_ascii_uppercase());
                msg = match p.value {
                    Some(v) => match v.parse::<u64>() {
                        Ok(n) if p.keyword.eq_ignore_ascii_case("SIZE") => msg.field(name, n, span(text, v)),
                        _ => msg.field(name, v, span(text, v)),
                    },
                    None => msg.field(name, true, span(text, p.keyword)),
                };
            }
        }
        Command::Vrfy { name: arg } | Command::Help { topic: Some(arg) } => {
            msg = msg.field("SMTP.argument", arg, span(text, arg));
        }
        Command::Unknown { verb } => {
            let verb = format!("{:?}", printable(verb.as_bytes(), 40));
            msg = msg.malformed(en("unknown command {verb}", &[("verb", &verb)]));
        }
        Command::Auth { mechanism, initial } => {
            msg = msg.field("SMTP.auth_mechanism", mechanism.to_ascii_uppercase(), span(text, mechanism));
            if let Some(initial) = initial {
                msg = sasl_field(msg, initial.as_bytes(), span(text, initial));
            }
        }
        Command::NotImplemented { verb } => {
            msg.notes.push(en(
                "{verb} is an SMTP extension this lab server does not implement",
                &[("verb", &verb.to_ascii_uppercase())],
            ));
        }
        _ => {}
    }
    msg
}

/// A SASL response's field: its base64 decoded (NULs shown as `\0`), and why that is no secret.
fn sasl_field(mut msg: Message, b64: &[u8], range: std::ops::Range<usize>) -> Message {
    match super::server::sasl_decode(b64) {
        Ok(decoded) => {
            let shown: String = String::from_utf8_lossy(&decoded).replace('\0', "\\0");
            msg.notes.push(en(
                "base64 is an encoding, not encryption: anyone who sees these bytes reads {shown}",
                &[("shown", &shown)],
            ));
            msg.field("SMTP.sasl", shown, range)
        }
        Err(_) if b64 == b"=" => msg.field("SMTP.sasl", "", range),
        Err(e) => msg.malformed(en("the response is not base64: {error}", &[("error", &e)])),
    }
}

/// The step of a command line that did not parse.
fn refused_message(body: &[u8], e: &CommandError, verb: &str, summary: String) -> Message {
    let kind = if verb == "?" { "smtp.command.malformed".to_string() } else { format!("smtp.command.{verb}") };
    let mut msg = Message::new(Layer::Application, PROTO, kind, summary);
    if verb != "?" {
        let typed = body.iter().position(|&b| b == b' ').unwrap_or(body.len());
        msg = msg.field("SMTP.command", verb, 0..typed);
    }
    msg.malformed(e.to_string())
}

/// The step of the message text (or of one part of a long one).
fn text_message(bytes: &[u8], part: u32, complete: bool, starts_line: bool) -> Message {
    let len = bytes.len();
    let headers = if part == 1 { header_fields(bytes) } else { Vec::new() };
    let subject = headers.iter().find(|h| h.name.eq_ignore_ascii_case("Subject")).map(|h| h.value.clone());
    let summary = match (part, complete) {
        (1, true) => match &subject {
            Some(s) => format!("message text, {len} bytes, Subject: {}", printable(s.as_bytes(), 60)),
            None => format!("message text, {len} bytes"),
        },
        (_, false) => format!("message text, part {part}, {len} bytes (no end yet)"),
        (_, true) => format!("message text, last part ({part}), {len} bytes"),
    };
    let mut msg = Message::new(Layer::Application, PROTO, "smtp.data", summary);
    for h in headers.into_iter().take(MAX_HEADER_FIELDS) {
        msg = msg.field(format!("SMTP.header.{}", h.name), h.value, h.value_range);
    }
    let mut lines = 0usize;
    let mut stuffed = 0usize;
    let mut bare_lf = false;
    let mut too_long: Option<(usize, usize)> = None;
    let mut at = 0;
    while let Some((body, end, n)) = next_line(&bytes[at..]) {
        let first = at == 0 && !starts_line;
        lines += 1;
        if !first && body.starts_with(b"..") {
            stuffed += 1;
        }
        bare_lf |= end == LineEnd::BareLf;
        if n > MAX_TEXT_LINE && too_long.is_none() {
            too_long = Some((lines, n));
        }
        at += n;
    }
    msg = msg.field("SMTP.text_lines", lines, 0..len);
    if complete {
        msg.notes.push(en("the line with a single '.' (CRLF . CRLF) ends the text; the server answers once", &[]));
    }
    if stuffed > 0 {
        msg.notes.push(en(
            "{n} line(s) start with '..': dot-stuffing doubled a leading '.', the server removes one",
            &[("n", &stuffed)],
        ));
    }
    if bare_lf {
        msg.notes.push(en("some lines end in a bare LF rather than CR LF", &[]));
    }
    if complete && bytes == END_OF_DATA {
        msg.notes.push(en("an empty message", &[]));
    }
    if let Some((line, octets)) = too_long {
        msg = msg.malformed(en(
            "text line {line} is {octets} octets, over the limit of {limit}",
            &[("line", &line), ("octets", &octets), ("limit", &MAX_TEXT_LINE)],
        ));
    }
    msg
}

/// Server→client: replies, each one step however many lines it has.
pub struct ReplyDecoder {
    dialogue: Shared,
}

impl Decoder for ReplyDecoder {
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded {
        let (lines, len) = match reply_lines(buf) {
            Ok(found) => found,
            Err(ReplyError::Incomplete) if buf.len() < keep => return Decoded::Incomplete,
            Err(ReplyError::Incomplete) => {
                let msg = Message::new(Layer::Application, PROTO, "smtp.reply.malformed", printable(buf, 80))
                    .malformed(en("a reply of {octets} octets that has not ended", &[("octets", &buf.len())]));
                return Decoded::Message { msg, len: buf.len() };
            }
            Err(ReplyError::Invalid { reason, len }) => {
                let first = next_line(buf).map(|(b, _, _)| b).unwrap_or(&buf[..len]);
                let msg = Message::new(Layer::Application, PROTO, "smtp.reply.malformed", printable(first, 120))
                    .malformed(reason);
                return Decoded::Message { msg, len };
            }
        };
        let code = lines[0].code;
        let answers = {
            let mut d = lock(&self.dialogue);
            if code == ReplyCode::START_MAIL_INPUT {
                d.in_text = true;
            }
            let answers = d.awaiting.pop_front();
            let to = |verb: &str| matches!(&answers, Some(Awaiting::Command(v)) if v == verb);
            if code == ReplyCode::AUTH_CONTINUE && to("AUTH") {
                d.sasl = true;
            }
            if code == ReplyCode::SERVICE_READY && to("STARTTLS") {
                d.tls.turn_on();
            }
            answers
        };
        let mut summary = format!("{code} {}", printable(lines[0].text.as_bytes(), 100));
        if lines.len() > 1 {
            summary.push_str(&format!(" (+{} lines)", lines.len() - 1));
        }
        // The kind names what the reply answers too (`smtp.reply.250.MAIL`), so the narration can
        // say what this 250 means here; it falls back to `smtp.reply.250`.
        let kind = match &answers {
            Some(Awaiting::Command(verb)) if verb != "?" => format!("smtp.reply.{code}.{verb}"),
            Some(Awaiting::Text) => format!("smtp.reply.{code}.text"),
            _ => format!("smtp.reply.{code}"),
        };
        let mut msg = Message::new(Layer::Application, PROTO, kind, summary)
            .field("SMTP.reply_code", code.0, 0..3)
            .field("SMTP.reply_text", lines[0].text.clone(), lines[0].text_range.clone());
        if code == ReplyCode::AUTH_CONTINUE {
            // RFC 4954: the challenge is base64 too (LOGIN's "Username:", "Password:").
            let text = lines[0].text.trim();
            if let Ok(decoded) = super::server::sasl_decode(text.as_bytes()) {
                msg = msg.field(
                    "SMTP.challenge",
                    String::from_utf8_lossy(&decoded).into_owned(),
                    lines[0].text_range.clone(),
                );
            }
        }
        let ehlo = answers == Some(Awaiting::Command("EHLO".into()));
        for line in &lines[1..] {
            let path = if ehlo { "SMTP.extension" } else { "SMTP.reply_text" };
            msg = msg.field(path, line.text.clone(), line.text_range.clone());
        }
        match &answers {
            Some(Awaiting::Command(verb)) if verb != "?" => msg.notes.push(en("answers {verb}", &[("verb", verb)])),
            Some(Awaiting::Text) => msg.notes.push(en("answers the message text", &[])),
            _ => {}
        }
        // The meaning is a phrase of its own, said in Korean on a Korean screen.
        let meaning = code.meaning().unwrap_or_else(|| code.class());
        msg.notes.push(en("{code}: {meaning}", &[("code", &code), ("meaning", &meaning)]));
        Decoded::Message { msg, len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::KEEP_BYTES;

    /// Feeds `chunks` to a decoder the way the recorder does; returns (message, bytes) pairs.
    fn run(dec: &mut dyn Decoder, buf: &mut Vec<u8>, chunk: &[u8], keep: usize) -> Vec<(Message, Vec<u8>)> {
        buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while !buf.is_empty() {
            match dec.decode(buf, keep) {
                Decoded::Incomplete => break,
                Decoded::Skip { len } => drop(buf.drain(..len)),
                Decoded::Message { msg, len } => {
                    out.push((msg, buf[..len].to_vec()));
                    buf.drain(..len);
                }
            }
        }
        out
    }

    fn value<'a>(msg: &'a Message, path: &str) -> Option<&'a serde_json::Value> {
        msg.fields.iter().find(|f| f.path == path).map(|f| &f.value)
    }

    #[test]
    fn a_whole_dialogue() {
        let (mut c, mut s) = decoders(false);
        let (mut cb, mut sb) = (Vec::new(), Vec::new());
        let r = run(&mut *s, &mut sb, b"220 protolab.test ESMTP\r\n", KEEP_BYTES);
        assert_eq!(r[0].0.kind, "smtp.reply.220");
        let r = run(&mut *c, &mut cb, b"EHLO client.lab\r\n", KEEP_BYTES);
        let (m, bytes) = &r[0];
        assert_eq!((m.kind.as_str(), m.summary.as_str()), ("smtp.command.EHLO", "EHLO client.lab"));
        assert_eq!(value(m, "SMTP.command"), Some(&"EHLO".into()));
        let f = m.fields.iter().find(|f| f.path == "SMTP.domain").unwrap();
        assert_eq!(&bytes[f.range[0]..f.range[1]], b"client.lab");
        // A multi-line reply arriving in pieces is one step.
        assert!(run(&mut *s, &mut sb, b"250-protolab.test greets client.lab\r\n250-SIZE 10", KEEP_BYTES).is_empty());
        let r = run(&mut *s, &mut sb, b"485760\r\n250 HELP\r\n", KEEP_BYTES);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0.summary, "250 protolab.test greets client.lab (+2 lines)");
        assert_eq!(value(&r[0].0, "SMTP.reply_code"), Some(&250.into()));
        assert_eq!(value(&r[0].0, "SMTP.extension"), Some(&"SIZE 10485760".into()));
        // Pipelined commands: one step each.
        let r = run(
            &mut *c,
            &mut cb,
            b"MAIL FROM:<alice@client.lab> SIZE=99\r\nRCPT TO:<bob@protolab.test>\r\nDATA\r\n",
            KEEP_BYTES,
        );
        let kinds: Vec<_> = r.iter().map(|(m, _)| m.kind.as_str()).collect();
        assert_eq!(kinds, ["smtp.command.MAIL", "smtp.command.RCPT", "smtp.command.DATA"]);
        assert_eq!(value(&r[0].0, "SMTP.mail_from"), Some(&"alice@client.lab".into()));
        assert_eq!(value(&r[0].0, "SMTP.param.SIZE"), Some(&99.into()));
        assert_eq!(value(&r[1].0, "SMTP.rcpt_to"), Some(&"bob@protolab.test".into()));
        // Text sent before the 354 waits for it.
        let text = b"Subject: Hello\r\nMessage-ID: <1@x>\r\n\r\n..dot\r\n.\r\n";
        assert!(run(&mut *c, &mut cb, text, KEEP_BYTES).is_empty());
        let r = run(&mut *s, &mut sb, b"250 OK\r\n250 OK\r\n354 go ahead\r\n", KEEP_BYTES);
        assert_eq!(r.len(), 3);
        assert!(r[2].0.notes.contains(&"answers DATA".to_string()));
        let r = run(&mut *c, &mut cb, b"QUIT\r\n", KEEP_BYTES);
        assert_eq!(r.len(), 2);
        let (m, bytes) = &r[0];
        assert_eq!(m.kind, "smtp.data");
        assert_eq!(m.summary, format!("message text, {} bytes, Subject: Hello", text.len()));
        assert_eq!(value(m, "SMTP.header.Message-ID"), Some(&"<1@x>".into()));
        assert_eq!(bytes.as_slice(), text);
        assert!(m.notes.iter().any(|n| n.contains("dot-stuffing")));
        assert_eq!(r[1].0.kind, "smtp.command.QUIT");
        let r = run(&mut *s, &mut sb, b"250 OK queued as 1\r\n221 bye\r\n", KEEP_BYTES);
        assert!(r[0].0.notes.contains(&"answers the message text".to_string()));
        assert!(r[1].0.notes.contains(&"answers QUIT".to_string()));
    }

    #[test]
    fn garbage_and_bad_lines_are_malformed_steps() {
        let (mut c, _s) = decoders(false);
        let mut cb = Vec::new();
        let long = [b"NOOP ".as_slice(), &[b'x'; 600], b"\r\n"].concat();
        let input =
            [b"GARBAGE\r\n".as_slice(), b"MAIL FROM:nobody\r\n", b"NOOP\n", &long, b"\xff\xfe\r\n", b"NOOP\r\n"]
                .concat();
        let r = run(&mut *c, &mut cb, &input, KEEP_BYTES);
        let reasons: Vec<_> = r.iter().map(|(m, _)| m.malformed.clone()).collect();
        assert_eq!(reasons[0].as_deref(), Some("unknown command \"GARBAGE\""));
        assert_eq!(r[0].0.kind, "smtp.command.unknown");
        assert_eq!(r[1].0.kind, "smtp.command.MAIL");
        assert!(reasons[1].as_deref().unwrap().contains("angle brackets"));
        assert!(reasons[2].as_deref().unwrap().contains("bare LF"));
        assert!(reasons[3].as_deref().unwrap().contains("over the limit of 512"));
        assert!(reasons[4].as_deref().unwrap().contains("UTF-8"));
        assert_eq!(reasons[5], None);
        assert!(cb.is_empty());
    }

    #[test]
    fn a_text_longer_than_keep_comes_in_parts() {
        let (mut c, mut s) = decoders(false);
        let (mut cb, mut sb) = (Vec::new(), Vec::new());
        run(&mut *c, &mut cb, b"DATA\r\n", 64);
        run(&mut *s, &mut sb, b"354 go\r\n", 64);
        let mut text = b"Subject: Big\r\n\r\n".to_vec();
        for i in 0..10 {
            text.extend_from_slice(format!("line {i} of the body\r\n").as_bytes());
        }
        text.extend_from_slice(b".\r\n");
        let mut all = Vec::new();
        for chunk in text.chunks(7) {
            all.extend(run(&mut *c, &mut cb, chunk, 64));
        }
        assert!(all.len() > 2, "{}", all.len());
        assert!(all.iter().all(|(m, _)| m.kind == "smtp.data"));
        assert!(all.last().unwrap().0.summary.starts_with("message text, last part"));
        let joined: Vec<u8> = all.iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(joined, text);
        // Back to commands.
        let r = run(&mut *c, &mut cb, b"QUIT\r\n", 64);
        assert_eq!(r[0].0.kind, "smtp.command.QUIT");
    }

    #[test]
    fn a_refused_data_keeps_commands_flowing() {
        let (mut c, mut s) = decoders(false);
        let (mut cb, mut sb) = (Vec::new(), Vec::new());
        run(&mut *c, &mut cb, b"DATA\r\n", KEEP_BYTES);
        assert!(run(&mut *c, &mut cb, b"NOOP\r\n", KEEP_BYTES).is_empty());
        run(&mut *s, &mut sb, b"503 bad sequence of commands\r\n", KEEP_BYTES);
        let r = run(&mut *c, &mut cb, b"", KEEP_BYTES);
        assert_eq!(r[0].0.kind, "smtp.command.NOOP");
    }

    #[test]
    fn malformed_replies_are_steps() {
        let (_c, mut s) = decoders(false);
        let mut sb = Vec::new();
        let r = run(&mut *s, &mut sb, b"hello there\r\n220 ok\r\n", KEEP_BYTES);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0.kind, "smtp.reply.malformed");
        assert!(r[0].0.malformed.as_deref().unwrap().contains("not an SMTP reply"));
        assert_eq!(r[1].0.kind, "smtp.reply.220");
    }
}
