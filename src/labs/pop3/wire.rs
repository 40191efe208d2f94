//! POP3 on the wire (RFC 1939, with RFC 2449's CAPA and limits), sans-IO: command lines, the
//! status line of a response (`+OK`, `-ERR`), multi-line responses ended by a line of one `.`
//! with dot-stuffing (a line that starts with `.` is sent with one more), and which commands are
//! answered with several lines.

use crate::locale::{en, term};
use std::ops::Range;

/// The longest command line, CRLF included (RFC 2449 §4).
pub const MAX_COMMAND_LINE: usize = 255;
/// The longest response status line, CRLF included (RFC 2449 §4).
pub const MAX_STATUS_LINE: usize = 512;
/// The longest argument (RFC 1939 §3: 40 characters).
pub const MAX_ARGUMENT: usize = 40;
/// The line that ends a multi-line response, with the CRLF before it.
pub const TERMINATOR: &[u8] = b"\r\n.\r\n";

/// A command, as RFC 1939 and RFC 2449 name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    /// APOP name digest (RFC 1939 §7).
    Apop(String, String),
    Stat,
    /// LIST, of one message or of all.
    List(Option<u32>),
    /// UIDL, of one message or of all.
    Uidl(Option<u32>),
    Retr(u32),
    Dele(u32),
    /// TOP msg n: the header and the first n lines of the body.
    Top(u32, u32),
    Noop,
    Rset,
    Quit,
    Capa,
    /// STLS (RFC 2595): TLS from here on.
    Stls,
}

/// Why a command line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Longer than [`MAX_COMMAND_LINE`] octets.
    TooLong(usize),
    /// Not text (a NUL, or bytes that are not UTF-8).
    NotText,
    /// No such keyword.
    Unknown(String),
    /// The keyword is known; its arguments are not what it takes.
    Arguments(&'static str, &'static str),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&match self {
            CommandError::TooLong(n) => en(
                "command line of {n} octets, over POP3's {limit} (RFC 2449)",
                &[("n", n), ("limit", &MAX_COMMAND_LINE)],
            ),
            CommandError::NotText => en("the command line is not text", &[]),
            CommandError::Unknown(verb) => en("no POP3 command {verb}", &[("verb", verb)]),
            CommandError::Arguments(verb, takes) => en("{verb} takes {takes}", &[("verb", verb), ("takes", takes)]),
        })
    }
}

impl Command {
    /// The keyword, in capitals.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop(..) => "APOP",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Top(..) => "TOP",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
        }
    }

    /// Whether a positive answer to it is multi-line (RFC 1939 §5, RFC 2449 §5).
    pub fn multi_line(&self) -> bool {
        matches!(self, Command::List(None) | Command::Uidl(None) | Command::Retr(_) | Command::Top(..) | Command::Capa)
    }

    /// Parses a command line without its CRLF; `full` is its length on the wire with it.
    pub fn parse(line: &[u8], full: usize) -> Result<Command, CommandError> {
        if full > MAX_COMMAND_LINE {
            return Err(CommandError::TooLong(full));
        }
        let text = std::str::from_utf8(line).map_err(|_| CommandError::NotText)?;
        if text.contains('\0') {
            return Err(CommandError::NotText);
        }
        let mut words = text.split(' ').filter(|w| !w.is_empty());
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let number = |s: &str| s.parse::<u32>().ok().filter(|n| *n > 0 && s.len() <= MAX_ARGUMENT);
        let word = |s: &str| (s.len() <= MAX_ARGUMENT).then(|| s.to_string());
        use CommandError::Arguments as Bad;
        Ok(match (verb.as_str(), args.as_slice()) {
            ("USER", [name]) => Command::User(word(name).ok_or(Bad("USER", term("a name of at most 40 characters")))?),
            ("USER", _) => return Err(Bad("USER", term("one name"))),
            // A password may hold spaces (RFC 1939 §7): everything after the keyword.
            ("PASS", [_, ..]) => Command::Pass(text.split_once(' ').map_or("", |(_, p)| p).to_string()),
            ("PASS", _) => return Err(Bad("PASS", term("a password"))),
            ("APOP", [name, digest]) if digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Command::Apop(name.to_string(), digest.to_ascii_lowercase())
            }
            ("APOP", _) => return Err(Bad("APOP", term("a name and an MD5 digest in 32 hex digits"))),
            ("STAT", []) => Command::Stat,
            ("LIST", []) => Command::List(None),
            ("LIST", [n]) => Command::List(Some(number(n).ok_or(Bad("LIST", term("a message number")))?)),
            ("UIDL", []) => Command::Uidl(None),
            ("UIDL", [n]) => Command::Uidl(Some(number(n).ok_or(Bad("UIDL", term("a message number")))?)),
            ("RETR", [n]) => Command::Retr(number(n).ok_or(Bad("RETR", term("a message number")))?),
            ("DELE", [n]) => Command::Dele(number(n).ok_or(Bad("DELE", term("a message number")))?),
            ("TOP", [n, lines]) => {
                let lines = lines.parse::<u32>().ok().filter(|_| lines.len() <= MAX_ARGUMENT);
                Command::Top(
                    number(n).ok_or(Bad("TOP", term("a message number and a count of lines")))?,
                    lines.ok_or(Bad("TOP", term("a message number and a count of lines")))?,
                )
            }
            ("NOOP", []) => Command::Noop,
            ("RSET", []) => Command::Rset,
            ("QUIT", []) => Command::Quit,
            ("CAPA", []) => Command::Capa,
            ("STLS", []) => Command::Stls,
            ("STAT" | "RETR" | "DELE" | "TOP" | "NOOP" | "RSET" | "QUIT" | "CAPA" | "STLS" | "LIST" | "UIDL", _) => {
                return Err(Bad(known(&verb), term("other arguments")));
            }
            _ => return Err(CommandError::Unknown(verb)),
        })
    }
}

/// The keyword as a static name, for the error of a known one.
fn known(verb: &str) -> &'static str {
    ["STAT", "RETR", "DELE", "TOP", "NOOP", "RSET", "QUIT", "CAPA", "STLS", "LIST", "UIDL"]
        .into_iter()
        .find(|k| *k == verb)
        .unwrap_or("?")
}

/// A response's status line: `+OK` or `-ERR`, and the text after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub ok: bool,
    /// Where the text lies in the line (after the indicator and its space).
    pub text: Range<usize>,
}

/// Why a status line is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusError {
    /// Neither `+OK` nor `-ERR` starts it.
    Indicator,
    /// Longer than [`MAX_STATUS_LINE`].
    TooLong(usize),
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&match self {
            StatusError::Indicator => en("a POP3 response starts with +OK or -ERR", &[]),
            StatusError::TooLong(n) => en(
                "status line of {n} octets, over POP3's {limit} (RFC 2449)",
                &[("n", n), ("limit", &MAX_STATUS_LINE)],
            ),
        })
    }
}

impl Status {
    /// Parses a status line without its CRLF; `full` is its length with it.
    pub fn parse(line: &[u8], full: usize) -> Result<Status, StatusError> {
        if full > MAX_STATUS_LINE {
            return Err(StatusError::TooLong(full));
        }
        let (ok, at) = if line.starts_with(b"+OK") {
            (true, 3)
        } else if line.starts_with(b"-ERR") {
            (false, 4)
        } else {
            return Err(StatusError::Indicator);
        };
        match line.get(at) {
            None => Ok(Status { ok, text: at..at }),
            Some(b' ') => Ok(Status { ok, text: at + 1..line.len() }),
            Some(_) => Err(StatusError::Indicator),
        }
    }
}

/// Where a multi-line response that starts at `buf[0]` ends (the length up to and with its
/// terminating `.` line), if it has ended: its first line, then lines until one that is a lone
/// `.`.
pub fn multi_line_end(buf: &[u8]) -> Option<usize> {
    let first = buf.windows(2).position(|w| w == b"\r\n")?;
    // An empty body: the `.` line comes right after the status line.
    if buf[first..].starts_with(TERMINATOR) {
        return Some(first + TERMINATOR.len());
    }
    buf[first..].windows(TERMINATOR.len()).position(|w| w == TERMINATOR).map(|i| first + i + TERMINATOR.len())
}

/// The lines of a multi-line body as they were meant: each line that starts with `.` loses one
/// (RFC 1939 §3, "byte-stuffed"). `body` is the text between the status line and the `.` line,
/// CRLFs included. Returns the text and how many lines were unstuffed.
pub fn unstuff(body: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(body.len());
    let mut stuffed = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            stuffed += 1;
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    (out, stuffed)
}

/// A text as a multi-line body: each line that starts with `.` gets one more, and the whole
/// ends with the `.` line. `text` ends with CRLF (one is added if not).
pub fn stuff(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 8);
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, CommandError> {
        Command::parse(line.as_bytes(), line.len() + 2)
    }

    #[test]
    fn commands_of_rfc_1939_section_10() {
        // The example session's commands (RFC 1939 §10), and RFC 2449's CAPA.
        assert_eq!(
            parse("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            Ok(Command::Apop("mrose".into(), "c4c9334bac560ecc979e58001b3e22fb".into()))
        );
        assert_eq!(parse("STAT"), Ok(Command::Stat));
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(parse("DELE 2"), Ok(Command::Dele(2)));
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
        assert_eq!(parse("top 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(parse("USER bob"), Ok(Command::User("bob".into())));
        assert_eq!(parse("PASS lab password"), Ok(Command::Pass("lab password".into())));
        assert_eq!(parse("CAPA"), Ok(Command::Capa));
        assert!(Command::List(None).multi_line() && !Command::List(Some(1)).multi_line());
        assert!(Command::Retr(1).multi_line() && Command::Capa.multi_line() && !Command::Stat.multi_line());
    }

    #[test]
    fn bad_command_lines_say_why() {
        assert_eq!(parse("RETR 0"), Err(CommandError::Arguments("RETR", "a message number")));
        assert_eq!(parse("RETR x"), Err(CommandError::Arguments("RETR", "a message number")));
        assert_eq!(parse("STAT 1"), Err(CommandError::Arguments("STAT", "other arguments")));
        assert_eq!(parse("HELO x"), Err(CommandError::Unknown("HELO".into())));
        assert_eq!(
            parse("APOP bob 1234"),
            Err(CommandError::Arguments("APOP", "a name and an MD5 digest in 32 hex digits"))
        );
        let long = format!("USER {}", "a".repeat(300));
        assert_eq!(Command::parse(long.as_bytes(), long.len() + 2), Err(CommandError::TooLong(307)));
        assert_eq!(Command::parse(b"USER \0", 8), Err(CommandError::NotText));
        assert_eq!(Command::parse(b"\xff\xfe", 4), Err(CommandError::NotText));
        assert_eq!(parse("USER").unwrap_err().to_string(), "USER takes one name");
    }

    #[test]
    fn status_lines() {
        assert_eq!(Status::parse(b"+OK 2 320", 11), Ok(Status { ok: true, text: 4..9 }));
        assert_eq!(Status::parse(b"-ERR no such message", 22), Ok(Status { ok: false, text: 5..20 }));
        assert_eq!(Status::parse(b"+OK", 5), Ok(Status { ok: true, text: 3..3 }));
        assert_eq!(Status::parse(b"+OKAY", 7), Err(StatusError::Indicator));
        assert_eq!(Status::parse(b"250 OK", 8), Err(StatusError::Indicator));
        assert_eq!(Status::parse(b"+OK x", 600), Err(StatusError::TooLong(600)));
    }

    #[test]
    fn multi_line_responses_end_at_the_dot_line_and_unstuff() {
        // RFC 1939 §10's LIST answer, and an empty one.
        let list = b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\nnext";
        assert_eq!(multi_line_end(list), Some(list.len() - 4));
        assert_eq!(multi_line_end(b"+OK\r\n.\r\n"), Some(8));
        assert_eq!(multi_line_end(b"+OK 2 messages\r\n1 120\r\n"), None);
        // A line of the message that starts with a dot is sent with two.
        let text = b"Subject: x\r\n\r\n.hidden\r\n..\r\nend\r\n";
        let sent = stuff(text);
        assert_eq!(sent, b"Subject: x\r\n\r\n..hidden\r\n...\r\nend\r\n.\r\n");
        let body = &sent[..sent.len() - 3];
        assert_eq!(unstuff(body), (text.to_vec(), 2));
        assert_eq!(stuff(b""), b".\r\n");
    }
}
