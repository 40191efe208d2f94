//! The POP3 decoders: client→server bytes become one step per command line, server→client bytes
//! one step per response, a multi-line one (a message for RETR, the list for LIST) whole up to
//! its `.` line, or in parts when it is longer than a step keeps.
//!
//! The two directions share the dialogue: the response decoder must know which command a
//! response answers to know whether it is multi-line (only a positive answer to RETR, TOP,
//! CAPA, and LIST or UIDL without an argument is).

use super::server::State;
use super::wire::{Command, MAX_COMMAND_LINE, MAX_STATUS_LINE, Status, TERMINATOR, multi_line_end, unstuff};
use crate::locale::en;
use crate::session::Layer;
use crate::wire::tls::Switch;
use crate::wire::{Decoded, Decoder, Message, crlf_line, printable};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const PROTO: &str = "POP3";
/// Commands remembered while waiting for their responses; a peer that never answers cannot grow
/// it.
const MAX_UNANSWERED: usize = 256;
/// Characters of a line shown in a summary.
const SUMMARY_CHARS: usize = 80;
/// Header fields of a message shown as fields of its RETR or TOP step.
const HEADERS: [&str; 5] = ["From", "To", "Subject", "Date", "Message-ID"];

/// What both directions know about the dialogue so far.
#[derive(Debug, Default)]
struct Dialogue {
    /// Sent and not yet answered, oldest first: the command, or `None` for a line that did not
    /// parse (answered `-ERR`).
    awaiting: VecDeque<Option<Command>>,
    /// The greeting has come.
    greeted: bool,
    /// Turned on when the server accepts STLS: what follows is TLS records.
    tls: Switch,
    /// The session's state as the answers so far left it (RFC 1939 §3).
    state: State,
    /// Messages DELE marked (and RSET did not unmark): what QUIT will delete.
    marked: usize,
}

type Shared = Arc<Mutex<Dialogue>>;

fn lock(d: &Shared) -> std::sync::MutexGuard<'_, Dialogue> {
    d.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fresh decoders for one connection: (client→server, server→client). After `+OK` to STLS the
/// dialogue goes on inside TLS records, opened with the secrets our endpoints logged;
/// `implicit`: TLS from the first byte (port 995).
pub fn decoders(implicit: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    crate::tls::decoders(implicit, |tls| {
        let dialogue = Shared::new(Mutex::new(Dialogue { tls, ..Dialogue::default() }));
        (
            Box::new(CommandDecoder { dialogue: dialogue.clone(), skipping: false }),
            Box::new(ResponseDecoder { dialogue, part: None }),
        )
    })
}

/// Client→server: command lines.
struct CommandDecoder {
    dialogue: Shared,
    /// A line over the limit is being passed over up to its end.
    skipping: bool,
}

impl Decoder for CommandDecoder {
    fn decode(&mut self, buf: &[u8], _keep: usize) -> Decoded {
        if buf.is_empty() {
            return Decoded::Incomplete;
        }
        if lock(&self.dialogue).awaiting.iter().any(|c| matches!(c, Some(Command::Stls))) {
            // After STLS, the bytes are TLS records or commands depending on the answer.
            return Decoded::Incomplete;
        }
        // The server takes a line at its LF: so does this.
        let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() <= MAX_COMMAND_LINE {
                return Decoded::Incomplete;
            }
            // No line end within the limit: a step for what came, and for the rest of the line.
            self.skipping = true;
            let reason = en(
                "command line of {n} octets, over POP3's {limit} (RFC 2449)",
                &[("n", &format!("{}+", buf.len())), ("limit", &MAX_COMMAND_LINE)],
            );
            let msg = Message::new(Layer::Application, PROTO, "pop3.command", printable(buf, SUMMARY_CHARS));
            return Decoded::Message { msg: msg.malformed(reason), len: buf.len() };
        };
        let n = lf + 1;
        let malformed = |line: &[u8], reason: String| {
            let msg = Message::new(Layer::Application, PROTO, "pop3.command", printable(line, SUMMARY_CHARS));
            Decoded::Message { msg: msg.malformed(reason), len: n }
        };
        // Either way the server answers once, with -ERR.
        if std::mem::take(&mut self.skipping) {
            lock(&self.dialogue).expect(None);
            return malformed(&buf[..lf], en("the end of an over-long command line", &[]));
        }
        let Some(line) = buf[..lf].strip_suffix(b"\r") else {
            lock(&self.dialogue).expect(None);
            return malformed(&buf[..lf], en("a command line ends with CR LF, not a bare LF", &[]));
        };
        let summary = printable(line, SUMMARY_CHARS);
        let state = lock(&self.dialogue).state;
        let msg = match Command::parse(line, n) {
            Ok(command) => {
                let mut msg = command_message(&command, line, summary).field("POP3.state", state.name(), 0..0);
                if matches!(command, Command::Pass(_)) && lock(&self.dialogue).tls.is_on() {
                    crate::wire::tls::inside(&mut msg);
                }
                lock(&self.dialogue).expect(Some(command));
                msg
            }
            Err(e) => {
                lock(&self.dialogue).expect(None);
                let msg = Message::new(Layer::Application, PROTO, "pop3.command", summary);
                msg.malformed(e.to_string())
            }
        };
        Decoded::Message { msg, len: n }
    }
}

impl Dialogue {
    fn expect(&mut self, what: Option<Command>) {
        self.awaiting.push_back(what);
        if self.awaiting.len() > MAX_UNANSWERED {
            self.awaiting.pop_front();
        }
    }
}

/// The words of a line and where each lies in it.
fn words(line: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in line.iter().chain(std::iter::once(&b' ')).enumerate() {
        match (b == b' ', start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// A command's step: its keyword and arguments as fields.
fn command_message(command: &Command, line: &[u8], summary: String) -> Message {
    let verb = command.verb();
    let w = words(line);
    let at = |i: usize| w.get(i).map_or(0..0, |&(a, b)| a..b);
    let mut msg = Message::new(Layer::Application, PROTO, format!("pop3.command.{verb}"), summary).field(
        "POP3.command",
        verb,
        at(0),
    );
    match command {
        Command::User(name) => msg = msg.field("POP3.user", name.as_str(), at(1)),
        Command::Pass(password) => {
            let start = at(1).start;
            msg = msg.field("POP3.password", password.as_str(), start..line.len());
            msg.notes
                .push(en("the password crosses the wire as it is typed: only TLS (STLS, or port 995) hides it", &[]));
        }
        Command::Apop(name, digest) => {
            msg = msg.field("POP3.user", name.as_str(), at(1)).field("POP3.digest", digest.as_str(), at(2));
        }
        Command::List(Some(n)) | Command::Uidl(Some(n)) | Command::Retr(n) | Command::Dele(n) => {
            msg = msg.field("POP3.message", *n, at(1));
        }
        Command::Top(n, lines) => msg = msg.field("POP3.message", *n, at(1)).field("POP3.lines", *lines, at(2)),
        _ => {}
    }
    msg
}

/// Server→client: responses.
struct ResponseDecoder {
    dialogue: Shared,
    /// A multi-line response longer than a step keeps, being passed in parts: the command it
    /// answers, and how many parts went.
    part: Option<(Command, usize)>,
}

impl Decoder for ResponseDecoder {
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded {
        if buf.is_empty() {
            return Decoded::Incomplete;
        }
        if let Some((command, parts)) = self.part.take() {
            return self.rest(buf, keep, command, parts);
        }
        let Some((line, n)) = crlf_line(buf) else {
            if buf.len() <= MAX_STATUS_LINE {
                return Decoded::Incomplete;
            }
            let reason = en(
                "status line of {n} octets, over POP3's {limit} (RFC 2449)",
                &[("n", &format!("{}+", buf.len())), ("limit", &MAX_STATUS_LINE)],
            );
            let msg = Message::new(Layer::Application, PROTO, "pop3.response", printable(buf, SUMMARY_CHARS));
            return Decoded::Message { msg: msg.malformed(reason), len: buf.len() };
        };
        // Which command this answers; taken off the list only once its whole step is made.
        let (greeting, answers) = {
            let d = lock(&self.dialogue);
            if d.greeted { (false, d.awaiting.front().cloned().flatten()) } else { (true, None) }
        };
        let answered = |d: &Shared| {
            let mut d = lock(d);
            if greeting {
                d.greeted = true;
            } else {
                d.awaiting.pop_front();
            }
        };
        let status = match Status::parse(line, n) {
            Ok(status) => status,
            Err(e) => {
                answered(&self.dialogue);
                let msg = Message::new(Layer::Application, PROTO, "pop3.response", printable(line, SUMMARY_CHARS));
                return Decoded::Message { msg: msg.malformed(e.to_string()), len: n };
            }
        };
        let verb = answers.as_ref().map_or("bad", Command::verb);
        let before = lock(&self.dialogue).state;
        let after = match (&answers, status.ok, before) {
            (Some(Command::Pass(_) | Command::Apop(..)), true, State::Authorization) => State::Transaction,
            (Some(Command::Quit), true, State::Transaction) => State::Update,
            _ => before,
        };
        let marked = {
            let mut d = lock(&self.dialogue);
            d.state = after;
            match (&answers, status.ok) {
                (Some(Command::Dele(_)), true) => d.marked += 1,
                (Some(Command::Rset), true) => d.marked = 0,
                _ => {}
            }
            d.marked
        };
        let kind = match (greeting, status.ok) {
            (true, _) => "pop3.greeting".to_string(),
            // QUIT after logging in enters UPDATE, where DELE's marks are carried out (if any
            // are left); before, it just ends the session.
            (false, true) if after == State::Update && marked == 0 => format!("pop3.ok.{verb}.update.kept"),
            (false, true) if after == State::Update => format!("pop3.ok.{verb}.update"),
            (false, true) => format!("pop3.ok.{verb}"),
            (false, false) => format!("pop3.err.{verb}"),
        };
        let indicator = if status.ok { "+OK" } else { "-ERR" };
        let text = String::from_utf8_lossy(&line[status.text.clone()]).to_string();
        let msg = Message::new(Layer::Application, PROTO, kind, printable(line, SUMMARY_CHARS))
            .field("POP3.status", indicator, 0..indicator.len())
            .field("POP3.text", text, status.text.clone())
            .field("POP3.state", after.name(), 0..0);
        if answers.as_ref().is_some_and(|c| status.ok && c.multi_line()) {
            let command = answers.expect("checked");
            return match multi_line_end(buf) {
                Some(len) => {
                    answered(&self.dialogue);
                    Decoded::Message { msg: body(msg, &buf[..len], n, len - TERMINATOR.len() + 2, &command), len }
                }
                None if buf.len() >= keep => {
                    answered(&self.dialogue);
                    // Longer than a step keeps: up to the last whole line now, the rest in parts.
                    let cut = buf.windows(2).rposition(|w| w == b"\r\n").map_or(buf.len(), |i| i + 2);
                    self.part = Some((command.clone(), 1));
                    let mut msg = body(msg, &buf[..cut], n, cut, &command);
                    msg.notes.insert(0, en("part 1 of a long response: the rest follows", &[]));
                    Decoded::Message { msg, len: cut }
                }
                None => Decoded::Incomplete,
            };
        }
        if answers.as_ref().is_some_and(|c| status.ok && matches!(c, Command::Stls)) {
            lock(&self.dialogue).tls.turn_on();
        }
        answered(&self.dialogue);
        Decoded::Message { msg, len: n }
    }
}

impl ResponseDecoder {
    /// The next part of a long multi-line response; it starts at a line's start.
    fn rest(&mut self, buf: &[u8], keep: usize, command: Command, parts: usize) -> Decoded {
        let end = if buf.starts_with(b".\r\n") {
            Some(3)
        } else {
            buf.windows(TERMINATOR.len()).position(|w| w == TERMINATOR).map(|i| i + TERMINATOR.len())
        };
        let part = parts + 1;
        let (len, last) = match end {
            Some(len) => (len, true),
            None if buf.len() >= keep => {
                (buf.windows(2).rposition(|w| w == b"\r\n").map_or(buf.len(), |i| i + 2), false)
            }
            None => {
                self.part = Some((command, parts));
                return Decoded::Incomplete;
            }
        };
        if !last {
            self.part = Some((command.clone(), part));
        }
        let lines = buf[..len].split(|&b| b == b'\n').count().saturating_sub(1);
        let verb = command.verb();
        let summary = if last {
            format!("part {part}, the end of the {verb} response: {} lines, then the . line", lines.saturating_sub(1))
        } else {
            format!("part {part} of the {verb} response: {lines} lines")
        };
        let msg = Message::new(Layer::Application, PROTO, format!("pop3.part.{verb}"), summary).field(
            "POP3.part",
            part,
            0..0,
        );
        Decoded::Message { msg, len }
    }
}

/// A multi-line response's step: its lines, their size once unstuffed, and for a message its
/// header fields. `bytes` is the response so far, its status line `first` long, its body up to
/// `body_end`.
fn body(mut msg: Message, bytes: &[u8], first: usize, body_end: usize, command: &Command) -> Message {
    let body = &bytes[first..body_end.max(first)];
    let (text, stuffed) = unstuff(body);
    let lines = text.split(|&b| b == b'\n').count().saturating_sub(1);
    msg.summary =
        if lines == 1 { format!("{} (1 line)", msg.summary) } else { format!("{} ({lines} lines)", msg.summary) };
    msg = msg.field("POP3.lines", lines, first..body_end.max(first)).field(
        "POP3.octets",
        text.len(),
        first..body_end.max(first),
    );
    if stuffed > 0 {
        msg.notes.push(en(
            "{n} lines start with a dot and were sent with one more (dot-stuffing): the octets count them without it",
            &[("n", &stuffed)],
        ));
    }
    if matches!(command, Command::Retr(_) | Command::Top(..)) {
        for name in HEADERS {
            if let Some((value, range)) = header(bytes, first, name) {
                msg = msg.field(format!("POP3.header.{name}"), value, range);
            }
        }
    }
    msg
}

/// The value of the header field `name` of the message that starts at `bytes[from]`, and where
/// it lies (its first line).
fn header(bytes: &[u8], from: usize, name: &str) -> Option<(String, std::ops::Range<usize>)> {
    let mut at = from;
    while let Some((line, n)) = crlf_line(&bytes[at..]) {
        if line.is_empty() {
            return None;
        }
        if line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && line[name.len()] == b':'
        {
            let start = at + name.len() + 1;
            let value = String::from_utf8_lossy(&bytes[start..at + line.len()]).trim().to_string();
            return Some((value, start..at + line.len()));
        }
        at += n;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{feed as run, value};

    /// RFC 1939 §10's example session (with USER/PASS for APOP's digest, and a message whose
    /// body has a line that starts with a dot), fed a byte at a time and whole.
    #[test]
    fn the_example_session_of_rfc_1939() {
        let client = b"USER bob\r\nPASS lab\r\nSTAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nRETR 9\r\nQUIT\r\n";
        let server = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n\
+OK bob\r\n\
+OK bob's maildrop has 2 messages (320 octets)\r\n\
+OK 2 320\r\n\
+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n\
+OK 120 octets\r\nFrom: alice@a.lab\r\nSubject: hi\r\nMessage-ID: <1@a.lab>\r\n\r\n..dot line\r\nbye\r\n.\r\n\
+OK message 1 deleted\r\n\
-ERR no such message\r\n\
+OK dewey POP3 server signing off (maildrop empty)\r\n";
        for chunk in [1, 4096] {
            let (mut c, mut s) = decoders(false);
            // The greeting comes before any command.
            let g = server.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
            let greeting = run(s.as_mut(), &server[..g], chunk, 65536);
            assert_eq!(greeting[0].0.kind, "pop3.greeting");
            let commands = run(c.as_mut(), client, chunk, 65536);
            let kinds: Vec<_> = commands.iter().map(|(m, _)| m.kind.as_str()).collect();
            assert_eq!(
                kinds,
                [
                    "pop3.command.USER",
                    "pop3.command.PASS",
                    "pop3.command.STAT",
                    "pop3.command.LIST",
                    "pop3.command.RETR",
                    "pop3.command.DELE",
                    "pop3.command.RETR",
                    "pop3.command.QUIT"
                ]
            );
            assert_eq!(value(&commands[1].0, "POP3.password"), "lab");
            assert_eq!(value(&commands[4].0, "POP3.message"), 1);
            let responses = run(s.as_mut(), &server[g..], chunk, 65536);
            let kinds: Vec<_> = responses.iter().map(|(m, _)| m.kind.as_str()).collect();
            assert_eq!(
                kinds,
                [
                    "pop3.ok.USER",
                    "pop3.ok.PASS",
                    "pop3.ok.STAT",
                    "pop3.ok.LIST",
                    "pop3.ok.RETR",
                    "pop3.ok.DELE",
                    "pop3.err.RETR",
                    "pop3.ok.QUIT.update"
                ]
            );
            let (list, bytes) = &responses[3];
            assert_eq!(value(list, "POP3.lines"), 2);
            assert!(bytes.ends_with(b"2 200\r\n.\r\n"));
            let (retr, bytes) = &responses[4];
            assert_eq!(value(retr, "POP3.status"), "+OK");
            assert_eq!(value(retr, "POP3.header.Message-ID"), "<1@a.lab>");
            let id = retr.fields.iter().find(|f| f.path == "POP3.header.Message-ID").unwrap();
            assert_eq!(&bytes[id.range[0]..id.range[1]], b" <1@a.lab>");
            assert_eq!(value(retr, "POP3.lines"), 6);
            assert!(retr.notes.iter().any(|n| n.starts_with("1 lines start with a dot")), "{:?}", retr.notes);
            assert_eq!(value(&responses[6].0, "POP3.status"), "-ERR");
            assert_eq!(value(&responses[6].0, "POP3.text"), "no such message");
        }
    }

    #[test]
    fn a_long_message_comes_in_parts_and_bad_lines_are_malformed_steps() {
        let (mut c, mut s) = decoders(false);
        run(s.as_mut(), b"+OK ready\r\n", 4096, 64);
        run(c.as_mut(), b"RETR 1\r\n", 4096, 64);
        let mut body = b"+OK\r\n".to_vec();
        for i in 0..20 {
            body.extend_from_slice(format!("line {i}\r\n").as_bytes());
        }
        body.extend_from_slice(b".\r\n");
        // Arriving a little at a time: a step as each 64 octets come, the end when the . line does.
        let parts = run(s.as_mut(), &body, 16, 64);
        assert!(parts.len() > 1);
        assert_eq!(parts.iter().map(|(_, b)| b.len()).sum::<usize>(), body.len());
        assert!(parts.last().unwrap().0.summary.contains("the end of the RETR response"));
        // A command line over 255 octets without its end, an unknown command, a bad response.
        let long = vec![b'A'; 300];
        let steps = run(c.as_mut(), &long, 4096, 64);
        assert!(steps[0].0.malformed.as_deref().unwrap().contains("over POP3's 255"));
        let steps = run(c.as_mut(), b"AAAA\r\nHELO x\r\n", 4096, 64);
        assert_eq!(steps[0].0.malformed.as_deref(), Some("the end of an over-long command line"));
        assert_eq!(steps[1].0.malformed.as_deref(), Some("no POP3 command HELO"));
        // A bare LF ends a line, as it does for the server: one step each.
        let steps = run(c.as_mut(), b"STAT\nNOOP\r\n", 4096, 64);
        assert_eq!(steps[0].0.malformed.as_deref(), Some("a command line ends with CR LF, not a bare LF"));
        assert_eq!(steps[1].0.kind, "pop3.command.NOOP");
        let steps = run(s.as_mut(), b"-ERR unknown\r\n-ERR too\r\n220 hi\r\n", 4096, 64);
        assert_eq!(steps[0].0.kind, "pop3.err.bad");
        assert_eq!(steps[2].0.malformed.as_deref(), Some("a POP3 response starts with +OK or -ERR"));
    }
}
