//! SMTP on the wire (RFC 5321): command lines, replies and their limits, sans-IO.
//!
//! The client sends one command a line (§4.1); the server answers each with a reply: a three-digit
//! code and text, on one line or on several (`250-...` lines continue, `250 ...` ends, §4.2.1).
//! Everything here works on byte slices, so the server, the client and the decoders share it.

use crate::locale::{en, term};
use std::fmt;
use std::ops::Range;

/// §4.5.3.1.4: a command line is at most 512 octets, CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;
/// §4.5.3.1.5: a reply line is at most 512 octets, CRLF included.
pub const MAX_REPLY_LINE: usize = 512;
/// §4.5.3.1.6: a line of message text is at most 1000 octets, CRLF included.
pub const MAX_TEXT_LINE: usize = 1000;

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// CR LF, as SMTP requires (§2.3.8).
    Crlf,
    /// LF alone: what `nc` sends without `-C`. SMTP servers should not take it as a line end.
    BareLf,
}

/// The first line of `buf`: its bytes without the line end, how it ended, and its length with the end.
/// `None` until a LF arrives.
pub fn next_line(buf: &[u8]) -> Option<(&[u8], LineEnd, usize)> {
    let lf = buf.iter().position(|&b| b == b'\n')?;
    if lf > 0 && buf[lf - 1] == b'\r' {
        Some((&buf[..lf - 1], LineEnd::Crlf, lf + 1))
    } else {
        Some((&buf[..lf], LineEnd::BareLf, lf + 1))
    }
}

/// Where `inner` (a sub-slice of `outer`) sits inside `outer`, as a byte range.
pub fn span(outer: &str, inner: &str) -> Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize).min(outer.len());
    start..(start + inner.len()).min(outer.len())
}

/// A forward-path or reverse-path (§4.1.2): the mailbox between `<` and `>`. Empty is the null
/// reverse-path `<>`, used for bounces. A source route (`<@relay:user@host>`) is dropped (§C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path<'a> {
    /// `local-part@domain`, `Postmaster`, or empty.
    pub mailbox: &'a str,
}

impl<'a> Path<'a> {
    /// The null reverse-path `<>`.
    pub fn is_null(&self) -> bool {
        self.mailbox.is_empty()
    }

    /// The part after the last `@` (a quoted local part may hold `@` itself).
    pub fn domain(&self) -> Option<&'a str> {
        self.mailbox.rfind('@').map(|at| &self.mailbox[at + 1..])
    }

    /// `<Postmaster>` without a domain, which every server must accept (§4.5.1).
    pub fn is_postmaster(&self) -> bool {
        self.mailbox.eq_ignore_ascii_case("postmaster")
    }
}

/// A MAIL or RCPT parameter (§4.1.2 `esmtp-param`), like `SIZE=412` or `BODY=8BITMIME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// `SIZE`, `BODY`, ... as the client wrote it (keywords are case-insensitive).
    pub keyword: &'a str,
    /// What follows `=`, if anything.
    pub value: Option<&'a str>,
}

/// A command line, parsed (§4.1.1). Borrows from the line so decoders can point at its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain`: the client names itself and asks which extensions the server has (§4.1.1.1).
    Ehlo { domain: &'a str },
    /// `HELO domain`: the older greeting, no extensions.
    Helo { domain: &'a str },
    /// `MAIL FROM:<reverse-path> [params]`: starts a mail transaction (§4.1.1.2).
    Mail { from: Path<'a>, params: Vec<Param<'a>> },
    /// `RCPT TO:<forward-path> [params]`: one recipient; repeated for more (§4.1.1.3).
    Rcpt { to: Path<'a>, params: Vec<Param<'a>> },
    /// `DATA`: the message text follows, after a 354 (§4.1.1.4).
    Data,
    /// `RSET`: forget the current transaction (§4.1.1.5).
    Rset,
    /// `VRFY name`: does this mailbox exist? (§4.1.1.6)
    Vrfy { name: &'a str },
    /// `HELP [topic]` (§4.1.1.8).
    Help { topic: Option<&'a str> },
    /// `NOOP`: nothing, but the server answers (§4.1.1.9).
    Noop,
    /// `QUIT`: the server answers 221 and closes (§4.1.1.10).
    Quit,
    /// `STARTTLS` (RFC 3207): after a 220, both sides begin a TLS handshake on this connection.
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954): log in with a SASL mechanism.
    Auth { mechanism: &'a str, initial: Option<&'a str> },
    /// A command of an SMTP extension this lab does not implement (EXPN, BDAT, ...): 502.
    NotImplemented { verb: &'a str },
    /// Not an SMTP command at all: 500.
    Unknown { verb: &'a str },
}

/// Extension commands we know by name but do not implement.
const NOT_IMPLEMENTED: &[&str] = &["EXPN", "BDAT", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML"];

/// Why a command line is refused. Each maps to the server's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Over [`MAX_COMMAND_LINE`] octets with its CRLF: 500 (§4.5.3.1.10).
    TooLong { octets: usize },
    /// The line ended in a bare LF: 500.
    BareLf,
    /// Not UTF-8 text: 500.
    NotText,
    /// Nothing on the line: 500.
    Empty,
    /// A known command whose arguments do not parse: 501.
    Syntax { verb: &'static str, reason: String },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::TooLong { octets } => f.write_str(&en(
                "command line is {octets} octets, over the limit of {limit}",
                &[("octets", octets), ("limit", &MAX_COMMAND_LINE)],
            )),
            CommandError::BareLf => {
                f.write_str(&en("line ends in a bare LF; SMTP lines end in CR LF (nc -C sends them)", &[]))
            }
            CommandError::NotText => f.write_str(&en("command line is not UTF-8 text", &[])),
            CommandError::Empty => f.write_str(&en("empty line: no command", &[])),
            CommandError::Syntax { reason, .. } => f.write_str(reason),
        }
    }
}

impl CommandError {
    /// The reply a server gives for this error.
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Syntax { .. } => Reply::new(ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS, self.to_string()),
            CommandError::TooLong { .. } => {
                Reply::new(ReplyCode::SYNTAX_ERROR, format!("line too long (at most {MAX_COMMAND_LINE} octets)"))
            }
            _ => Reply::new(ReplyCode::SYNTAX_ERROR, self.to_string()),
        }
    }

    /// The verb, when the line had a known one.
    pub fn verb(&self) -> Option<&'static str> {
        match self {
            CommandError::Syntax { verb, .. } => Some(verb),
            _ => None,
        }
    }
}

impl<'a> Command<'a> {
    /// Parses one line (`line` includes its line end). Checks length, line end and text first.
    pub fn parse_line(line: &'a [u8]) -> Result<Command<'a>, CommandError> {
        if line.len() > MAX_COMMAND_LINE {
            return Err(CommandError::TooLong { octets: line.len() });
        }
        let (body, end) = match next_line(line) {
            Some((body, end, _)) => (body, end),
            None => (line, LineEnd::Crlf),
        };
        if end == LineEnd::BareLf {
            return Err(CommandError::BareLf);
        }
        let text = std::str::from_utf8(body).map_err(|_| CommandError::NotText)?;
        Command::parse(text)
    }

    /// Parses the text of a command line (without CRLF).
    pub fn parse(text: &'a str) -> Result<Command<'a>, CommandError> {
        if text.trim().is_empty() {
            return Err(CommandError::Empty);
        }
        let (verb, rest) = match text.find(' ') {
            Some(sp) => (&text[..sp], text[sp + 1..].trim()),
            None => (text, ""),
        };
        let upper = verb.to_ascii_uppercase();
        let syntax = |verb: &'static str, reason: &str| CommandError::Syntax { verb, reason: reason.to_string() };
        let no_args = |verb: &'static str, cmd: Command<'a>| {
            if rest.is_empty() {
                Ok(cmd)
            } else {
                Err(syntax(verb, &en("{verb} takes no arguments", &[("verb", &verb)])))
            }
        };
        match upper.as_str() {
            "EHLO" | "HELO" => {
                let name: &'static str = if upper == "EHLO" { "EHLO" } else { "HELO" };
                if rest.is_empty() {
                    return Err(syntax(name, &en("{verb} needs the client's domain name", &[("verb", &name)])));
                }
                if rest.contains(char::is_whitespace) {
                    return Err(syntax(name, &en("{verb} takes one domain name", &[("verb", &name)])));
                }
                Ok(if name == "EHLO" { Command::Ehlo { domain: rest } } else { Command::Helo { domain: rest } })
            }
            "MAIL" => {
                let (from, params) = path_and_params(rest, "FROM:").map_err(|r| syntax("MAIL", &r))?;
                if from.is_postmaster() {
                    return Err(syntax("MAIL", &en("the reverse-path must be a mailbox or <>", &[])));
                }
                Ok(Command::Mail { from, params })
            }
            "RCPT" => {
                let (to, params) = path_and_params(rest, "TO:").map_err(|r| syntax("RCPT", &r))?;
                if to.is_null() {
                    return Err(syntax("RCPT", &en("the forward-path cannot be empty", &[])));
                }
                Ok(Command::Rcpt { to, params })
            }
            "DATA" => no_args("DATA", Command::Data),
            "RSET" => no_args("RSET", Command::Rset),
            "QUIT" => no_args("QUIT", Command::Quit),
            "NOOP" => Ok(Command::Noop),
            "VRFY" if rest.is_empty() => Err(syntax("VRFY", &en("VRFY needs a user or mailbox name", &[]))),
            "VRFY" => Ok(Command::Vrfy { name: rest }),
            "HELP" => Ok(Command::Help { topic: (!rest.is_empty()).then_some(rest) }),
            "STARTTLS" => no_args("STARTTLS", Command::StartTls),
            "AUTH" => {
                let mut words = rest.split(' ').filter(|w| !w.is_empty());
                let Some(mechanism) = words.next() else {
                    return Err(syntax("AUTH", &en("AUTH needs a mechanism (PLAIN, LOGIN)", &[])));
                };
                let initial = words.next();
                if words.next().is_some() {
                    return Err(syntax("AUTH", &en("AUTH takes a mechanism and at most an initial response", &[])));
                }
                Ok(Command::Auth { mechanism, initial })
            }
            v if NOT_IMPLEMENTED.contains(&v) => Ok(Command::NotImplemented { verb }),
            _ => Ok(Command::Unknown { verb }),
        }
    }

    /// The command's name in upper case (`EHLO`), as step kinds and fields use it.
    pub fn verb(&self) -> String {
        match self {
            Command::Ehlo { .. } => "EHLO".into(),
            Command::Helo { .. } => "HELO".into(),
            Command::Mail { .. } => "MAIL".into(),
            Command::Rcpt { .. } => "RCPT".into(),
            Command::Data => "DATA".into(),
            Command::Rset => "RSET".into(),
            Command::Vrfy { .. } => "VRFY".into(),
            Command::Help { .. } => "HELP".into(),
            Command::Noop => "NOOP".into(),
            Command::Quit => "QUIT".into(),
            Command::StartTls => "STARTTLS".into(),
            Command::Auth { .. } => "AUTH".into(),
            Command::NotImplemented { verb } | Command::Unknown { verb } => verb.to_ascii_uppercase(),
        }
    }
}

/// `FROM:<path> [params]` or `TO:<path> [params]`; `keyword` matched without regard to case.
/// Spaces after the colon are tolerated, as most servers do.
fn path_and_params<'a>(rest: &'a str, keyword: &str) -> Result<(Path<'a>, Vec<Param<'a>>), String> {
    let verb = if keyword == "FROM:" { "MAIL" } else { "RCPT" };
    let head = rest.get(..keyword.len()).unwrap_or_default();
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(en("{verb} needs {keyword}<address>", &[("verb", &verb), ("keyword", &keyword)]));
    }
    let rest = rest[keyword.len()..].trim_start();
    let Some(inner) = rest.strip_prefix('<') else {
        return Err(en(
            "the address after {keyword} must be in angle brackets: <user@domain>",
            &[("keyword", &keyword)],
        ));
    };
    let Some(close) = inner.find('>') else {
        return Err(en("no '>' closes the address", &[]));
    };
    let mut mailbox = &inner[..close];
    // A source route (`@a,@b:user@c`) is obsolete; keep only the mailbox (RFC 5321 Appendix C).
    if mailbox.starts_with('@') {
        mailbox = mailbox.split_once(':').map(|(_, m)| m).unwrap_or_default();
    }
    // A NUL or another control character has no place in an address (§4.1.2), and downstream
    // software that stops at a NUL would read another address than the one checked here.
    if mailbox.contains(|c: char| c.is_control()) {
        return Err(en(
            "<{mailbox}> holds a control character: not a mailbox",
            &[("mailbox", &mailbox.escape_debug())],
        ));
    }
    if !mailbox.is_empty() && !mailbox.eq_ignore_ascii_case("postmaster") {
        match mailbox.rfind('@') {
            Some(at) if at > 0 && at + 1 < mailbox.len() && !mailbox.contains(char::is_whitespace) => {}
            _ => return Err(en("<{mailbox}> is not a mailbox (user@domain)", &[("mailbox", &mailbox)])),
        }
    }
    let mut params = Vec::new();
    for word in inner[close + 1..].split_whitespace() {
        let (keyword, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        if keyword.is_empty() || !keyword.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(en("bad parameter {word}", &[("word", &format!("{word:?}"))]));
        }
        params.push(Param { keyword, value });
    }
    Ok((Path { mailbox }, params))
}

/// A reply code (§4.2): the first digit says how it went, the second what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyCode(pub u16);

impl ReplyCode {
    pub const HELP_MESSAGE: ReplyCode = ReplyCode(214);
    pub const SERVICE_READY: ReplyCode = ReplyCode(220);
    pub const SERVICE_CLOSING: ReplyCode = ReplyCode(221);
    pub const AUTH_SUCCEEDED: ReplyCode = ReplyCode(235);
    pub const OK: ReplyCode = ReplyCode(250);
    pub const CANNOT_VRFY: ReplyCode = ReplyCode(252);
    pub const AUTH_CONTINUE: ReplyCode = ReplyCode(334);
    pub const START_MAIL_INPUT: ReplyCode = ReplyCode(354);
    pub const SERVICE_NOT_AVAILABLE: ReplyCode = ReplyCode(421);
    pub const LOCAL_ERROR: ReplyCode = ReplyCode(451);
    pub const INSUFFICIENT_STORAGE: ReplyCode = ReplyCode(452);
    pub const SYNTAX_ERROR: ReplyCode = ReplyCode(500);
    pub const SYNTAX_ERROR_IN_ARGUMENTS: ReplyCode = ReplyCode(501);
    pub const NOT_IMPLEMENTED: ReplyCode = ReplyCode(502);
    pub const BAD_SEQUENCE: ReplyCode = ReplyCode(503);
    pub const PARAMETER_NOT_IMPLEMENTED: ReplyCode = ReplyCode(504);
    /// RFC 3207 / RFC 4954: STARTTLS first, or authentication first.
    pub const ACCESS_REQUIRED: ReplyCode = ReplyCode(530);
    pub const AUTH_FAILED: ReplyCode = ReplyCode(535);
    pub const MAILBOX_UNAVAILABLE: ReplyCode = ReplyCode(550);
    pub const EXCEEDED_STORAGE: ReplyCode = ReplyCode(552);
    pub const TRANSACTION_FAILED: ReplyCode = ReplyCode(554);
    pub const PARAMETERS_NOT_RECOGNIZED: ReplyCode = ReplyCode(555);

    /// 2yz: done. The client goes on.
    pub fn is_positive_completion(self) -> bool {
        self.0 / 100 == 2
    }

    /// 3yz: accepted so far; send the rest (354 after DATA).
    pub fn is_positive_intermediate(self) -> bool {
        self.0 / 100 == 3
    }

    /// 4yz: not now; the same command may work later.
    pub fn is_transient_negative(self) -> bool {
        self.0 / 100 == 4
    }

    /// 5yz: no; do not send the same command again as it is.
    pub fn is_permanent_negative(self) -> bool {
        self.0 / 100 == 5
    }

    /// What the first digit says (§4.2.1).
    pub fn class(self) -> &'static str {
        match self.0 / 100 {
            2 => term("2yz positive completion: the request was done"),
            3 => term("3yz positive intermediate: go on, send the rest"),
            4 => term("4yz transient negative: not now, try again later"),
            5 => term("5yz permanent negative: refused, do not repeat as is"),
            _ => term("not a class RFC 5321 defines"),
        }
    }

    /// The meaning RFC 5321 §4.2.2 gives the code, where it gives one.
    pub fn meaning(self) -> Option<&'static str> {
        Some(match self.0 {
            211 => term("system status"),
            214 => term("help message"),
            220 => term("service ready"),
            221 => term("service closing transmission channel"),
            250 => term("requested mail action okay, completed"),
            251 => term("user not local; will forward"),
            252 => term("cannot VRFY user, but will accept message and attempt delivery"),
            354 => term("start mail input; end with <CRLF>.<CRLF>"),
            421 => term("service not available, closing transmission channel"),
            450 => term("requested mail action not taken: mailbox unavailable"),
            451 => term("requested action aborted: local error in processing"),
            452 => term("requested action not taken: insufficient system storage"),
            455 => term("server unable to accommodate parameters"),
            500 => term("syntax error, command unrecognized"),
            501 => term("syntax error in parameters or arguments"),
            502 => term("command not implemented"),
            503 => term("bad sequence of commands"),
            504 => term("command parameter not implemented"),
            530 => term("authentication required (RFC 4954)"),
            550 => term("requested action not taken: mailbox unavailable"),
            551 => term("user not local"),
            552 => term("requested mail action aborted: exceeded storage allocation"),
            553 => term("requested action not taken: mailbox name not allowed"),
            554 => term("transaction failed"),
            555 => term("MAIL FROM/RCPT TO parameters not recognized or not implemented"),
            _ => return None,
        })
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A whole reply: one code, one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The same on every line of the reply.
    pub code: ReplyCode,
    /// The text of each line, without the code and separator. Never empty.
    pub lines: Vec<String>,
}

/// One line of a reply as it sits in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    /// This line's code; every line of a reply must carry the same one.
    pub code: ReplyCode,
    /// `-` followed: more lines come.
    pub more: bool,
    /// The text after the code and separator (lossy UTF-8: some servers send Latin-1).
    pub text: String,
    /// Where `text` sits in the buffer.
    pub text_range: Range<usize>,
    /// Where the whole line sits in the buffer, line end included.
    pub line_range: Range<usize>,
}

/// Why a reply did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// The last line is not complete yet: read more.
    Incomplete,
    /// Not a valid reply; the reason, and how many bytes to take as the bad message (through the
    /// end of the offending line, so the stream can go on).
    Invalid { reason: String, len: usize },
}

/// A reply line's text cut to fit [`MAX_REPLY_LINE`] octets with its code, separator and CRLF:
/// a reply that repeats what the client sent (a 500-octet address) would otherwise be longer
/// than a client must take, and our own client refuses it. The cut ends in `...`.
fn fit_reply_line(text: String) -> String {
    const ROOM: usize = MAX_REPLY_LINE - "250 \r\n".len();
    if text.len() <= ROOM {
        return text;
    }
    let mut end = ROOM - "...".len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl Reply {
    /// A one-line reply; text past what a reply line holds is cut.
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Self {
        Reply { code, lines: vec![fit_reply_line(text.into())] }
    }

    /// A multi-line reply (`250-first`, ..., `250 last`); text past what a line holds is cut.
    pub fn multi(code: ReplyCode, lines: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut lines: Vec<String> = lines.into_iter().map(|l| fit_reply_line(l.into())).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Reply { code, lines }
    }

    /// The first line's text.
    pub fn text(&self) -> &str {
        &self.lines[0]
    }

    /// The reply as one line for a person: `250 OK (+3 lines)`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.code, self.text());
        if self.lines.len() > 1 {
            s.push_str(&format!(" (+{} lines)", self.lines.len() - 1));
        }
        s
    }

    /// The reply's bytes: every line but the last with `-` after the code (§4.2.1).
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, text) in self.lines.iter().enumerate() {
            let last = i + 1 == self.lines.len();
            out.extend_from_slice(self.code.to_string().as_bytes());
            match (last, text.is_empty()) {
                (true, true) => {}
                (true, false) => out.push(b' '),
                (false, _) => out.push(b'-'),
            }
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Parses the reply at the start of `buf`; returns it and its length in bytes.
    pub fn parse(buf: &[u8]) -> Result<(Reply, usize), ReplyError> {
        let (lines, len) = reply_lines(buf)?;
        let code = lines[0].code;
        Ok((Reply { code, lines: lines.into_iter().map(|l| l.text).collect() }, len))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// The lines of the reply at the start of `buf`, up to the line without `-`, and their length.
pub fn reply_lines(buf: &[u8]) -> Result<(Vec<ReplyLine>, usize), ReplyError> {
    let mut lines: Vec<ReplyLine> = Vec::new();
    let mut at = 0;
    loop {
        let Some((body, end, n)) = next_line(&buf[at..]) else {
            if buf.len() - at > MAX_REPLY_LINE {
                let len = buf.len();
                let reason = en("no line end within {limit} octets", &[("limit", &MAX_REPLY_LINE)]);
                return Err(ReplyError::Invalid { reason, len });
            }
            return Err(ReplyError::Incomplete);
        };
        let line_range = at..at + n;
        let invalid = |reason: String| Err(ReplyError::Invalid { reason, len: line_range.end });
        if n > MAX_REPLY_LINE {
            return invalid(en(
                "reply line is {octets} octets, over the limit of {limit}",
                &[("octets", &n), ("limit", &MAX_REPLY_LINE)],
            ));
        }
        if end == LineEnd::BareLf {
            return invalid(en("reply line ends in a bare LF, not CR LF", &[]));
        }
        let digits = body.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit) && (b'2'..=b'5').contains(&d[0]));
        let Some(digits) = digits else {
            return invalid(en(
                "not an SMTP reply: {text}",
                &[("text", &format!("{:?}", crate::wire::printable(body, 40)))],
            ));
        };
        let code = ReplyCode(digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')));
        let (more, text_start) = match body.get(3) {
            None => (false, 3),
            Some(b' ') => (false, 4),
            Some(b'-') => (true, 4),
            Some(_) => return invalid(en("reply code {code} must be followed by a space or '-'", &[("code", &code)])),
        };
        if let Some(first) = lines.first()
            && first.code != code
        {
            return invalid(en(
                "reply line has code {code}, the reply began with {first}",
                &[("code", &code), ("first", &first.code)],
            ));
        }
        let text = String::from_utf8_lossy(&body[text_start..]).into_owned();
        let text_range = at + text_start..at + body.len();
        lines.push(ReplyLine { code, more, text, text_range, line_range });
        at += n;
        if !more {
            return Ok((lines, at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_commands_of_a_dialogue() {
        assert_eq!(Command::parse_line(b"EHLO client.lab\r\n"), Ok(Command::Ehlo { domain: "client.lab" }));
        assert_eq!(Command::parse_line(b"helo x\r\n"), Ok(Command::Helo { domain: "x" }));
        assert_eq!(
            Command::parse_line(b"MAIL FROM:<alice@client.lab> SIZE=412 BODY=8BITMIME\r\n"),
            Ok(Command::Mail {
                from: Path { mailbox: "alice@client.lab" },
                params: vec![
                    Param { keyword: "SIZE", value: Some("412") },
                    Param { keyword: "BODY", value: Some("8BITMIME") }
                ],
            })
        );
        // smtplib writes verbs in lower case.
        assert_eq!(
            Command::parse_line(b"rcpt TO:<bob@protolab.test>\r\n"),
            Ok(Command::Rcpt { to: Path { mailbox: "bob@protolab.test" }, params: vec![] })
        );
        assert_eq!(Command::parse_line(b"MAIL FROM:<>\r\n").map(|c| c.verb()), Ok("MAIL".into()));
        assert_eq!(
            Command::parse_line(b"RCPT TO:<@relay.example:bob@protolab.test>\r\n"),
            Ok(Command::Rcpt { to: Path { mailbox: "bob@protolab.test" }, params: vec![] })
        );
        assert_eq!(Command::parse_line(b"RCPT TO:<Postmaster>\r\n").map(|c| c.verb()), Ok("RCPT".into()));
        assert_eq!(Command::parse_line(b"DATA\r\n"), Ok(Command::Data));
        assert_eq!(Command::parse_line(b"RSET\r\n"), Ok(Command::Rset));
        assert_eq!(Command::parse_line(b"NOOP anything\r\n"), Ok(Command::Noop));
        assert_eq!(Command::parse_line(b"VRFY bob\r\n"), Ok(Command::Vrfy { name: "bob" }));
        assert_eq!(Command::parse_line(b"HELP\r\n"), Ok(Command::Help { topic: None }));
        assert_eq!(Command::parse_line(b"HELP MAIL\r\n"), Ok(Command::Help { topic: Some("MAIL") }));
        assert_eq!(Command::parse_line(b"QUIT\r\n"), Ok(Command::Quit));
        assert_eq!(Command::parse_line(b"STARTTLS\r\n"), Ok(Command::StartTls));
        assert_eq!(Command::parse_line(b"EXPN list\r\n"), Ok(Command::NotImplemented { verb: "EXPN" }));
        assert_eq!(
            Command::parse_line(b"AUTH PLAIN AGJvYgBsYWI=\r\n"),
            Ok(Command::Auth { mechanism: "PLAIN", initial: Some("AGJvYgBsYWI=") })
        );
        assert_eq!(Command::parse_line(b"AUTH LOGIN\r\n"), Ok(Command::Auth { mechanism: "LOGIN", initial: None }));
        assert!(Command::parse_line(b"AUTH\r\n").is_err());
        assert_eq!(Command::parse_line(b"GARBAGE\r\n"), Ok(Command::Unknown { verb: "GARBAGE" }));
    }

    #[test]
    fn an_address_with_a_nul_or_a_control_character_is_refused_with_501() {
        for line in [
            &b"MAIL FROM:<a\0@b.c>\r\n"[..],
            b"RCPT TO:<bob\x01@protolab.test>\r\n",
            b"RCPT TO:<bob@proto\x7flab.test>\r\n",
        ] {
            let err = Command::parse_line(line).expect_err("refused");
            assert_eq!(err.reply().code.0, 501, "{line:?}: {err:?}");
            assert!(err.reply().text().contains("control character"), "{}", err.reply());
        }
    }

    #[test]
    fn refuses_malformed_command_lines() {
        let syntax = |line: &[u8]| matches!(Command::parse_line(line), Err(CommandError::Syntax { .. }));
        assert!(syntax(b"EHLO\r\n"));
        assert!(syntax(b"EHLO two words\r\n"));
        assert!(syntax(b"MAIL alice@client.lab\r\n"));
        assert!(syntax(b"MAIL FROM:alice@client.lab\r\n"));
        assert!(syntax(b"MAIL FROM:<alice@client.lab\r\n"));
        assert!(syntax(b"MAIL FROM:<alice>\r\n"));
        assert!(syntax(b"MAIL FROM:<a@b> SIZE=1 =x\r\n"));
        assert!(syntax(b"RCPT TO:<>\r\n"));
        assert!(syntax(b"DATA now\r\n"));
        assert!(syntax(b"QUIT please\r\n"));
        assert!(syntax(b"VRFY\r\n"));
        assert_eq!(Command::parse_line(b"NOOP\n"), Err(CommandError::BareLf));
        assert_eq!(Command::parse_line(b"\r\n"), Err(CommandError::Empty));
        assert_eq!(Command::parse_line(b"NOOP \xff\r\n"), Err(CommandError::NotText));
        let long = [b"NOOP ".as_slice(), &[b'x'; 600], b"\r\n"].concat();
        assert_eq!(Command::parse_line(&long), Err(CommandError::TooLong { octets: 607 }));
        assert_eq!(CommandError::TooLong { octets: 607 }.reply().code, ReplyCode::SYNTAX_ERROR);
        let e = Command::parse_line(b"MAIL FROM:x\r\n").unwrap_err();
        assert_eq!(e.reply().code, ReplyCode::SYNTAX_ERROR_IN_ARGUMENTS);
        assert_eq!(e.verb(), Some("MAIL"));
    }

    #[test]
    fn spans_point_into_the_line() {
        let line = "MAIL FROM:<alice@client.lab> SIZE=9";
        let Ok(Command::Mail { from, params }) = Command::parse(line) else { panic!() };
        assert_eq!(&line[span(line, from.mailbox)], "alice@client.lab");
        assert_eq!(span(line, params[0].value.unwrap()), 34..35);
    }

    #[test]
    fn parses_single_and_multi_line_replies() {
        let (r, n) = Reply::parse(b"220 protolab.test ESMTP\r\nextra").unwrap();
        assert_eq!((r.code, r.text(), n), (ReplyCode::SERVICE_READY, "protolab.test ESMTP", 25));
        let bytes = b"250-protolab.test greets client.lab\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n250 HELP\r\n";
        let (r, n) = Reply::parse(bytes).unwrap();
        assert_eq!(n, bytes.len());
        assert_eq!(r.lines, ["protolab.test greets client.lab", "SIZE 10485760", "8BITMIME", "HELP"]);
        assert_eq!(r.summary(), "250 protolab.test greets client.lab (+3 lines)");
        let (r, n) = Reply::parse(b"250\r\n").unwrap();
        assert_eq!((r.code, r.text(), n), (ReplyCode::OK, "", 5));
    }

    #[test]
    fn replies_round_trip() {
        for reply in [
            Reply::new(ReplyCode::OK, "OK"),
            Reply::multi(ReplyCode::OK, ["a", "SIZE 1", ""]),
            Reply::new(ReplyCode::SERVICE_CLOSING, ""),
        ] {
            let bytes = reply.emit();
            assert_eq!(Reply::parse(&bytes), Ok((reply.clone(), bytes.len())));
        }
        assert_eq!(Reply::multi(ReplyCode::OK, ["a", "b"]).emit(), b"250-a\r\n250 b\r\n");
    }

    #[test]
    fn a_reply_line_is_cut_to_512_octets() {
        let exact = "x".repeat(MAX_REPLY_LINE - 6);
        assert_eq!(Reply::new(ReplyCode::OK, exact.clone()).emit().len(), MAX_REPLY_LINE);
        // One octet more, in a multi-byte character at the cut: cut before the character.
        let long = format!("{}é{}", "y".repeat(MAX_REPLY_LINE - 10), "z".repeat(20));
        for reply in [Reply::new(ReplyCode::OK, long.clone()), Reply::multi(ReplyCode::OK, [long.as_str(), "end"])] {
            let bytes = reply.emit();
            assert!(bytes.split(|&b| b == b'\n').all(|line| line.len() < MAX_REPLY_LINE), "{reply:?}");
            assert!(reply.text().ends_with("y..."), "{}", reply.text());
            assert_eq!(Reply::parse(&bytes), Ok((reply.clone(), bytes.len())));
        }
    }

    #[test]
    fn truncated_replies_are_incomplete() {
        for bytes in [&b""[..], b"25", b"250 OK", b"250 OK\r", b"250-a\r\n", b"250-a\r\n250 b"] {
            assert_eq!(Reply::parse(bytes), Err(ReplyError::Incomplete), "{bytes:?}");
        }
    }

    #[test]
    fn malformed_replies_are_framed_at_the_bad_line() {
        let bad = |bytes: &[u8]| match Reply::parse(bytes) {
            Err(ReplyError::Invalid { len, .. }) => len,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(b"hello\r\n250 OK\r\n"), 7);
        assert_eq!(bad(b"250-a\r\n251 b\r\n"), 14);
        assert_eq!(bad(b"250xOK\r\n"), 8);
        assert_eq!(bad(b"250 OK\n"), 7);
        assert_eq!(bad(b"199 no\r\n"), 8);
        let long = [b"250 ".as_slice(), &[b'x'; 600], b"\r\n"].concat();
        assert_eq!(bad(&long), long.len());
    }

    #[test]
    fn lines_end_in_crlf_or_bare_lf() {
        assert_eq!(next_line(b"a\r\nb"), Some((&b"a"[..], LineEnd::Crlf, 3)));
        assert_eq!(next_line(b"a\nb"), Some((&b"a"[..], LineEnd::BareLf, 2)));
        assert_eq!(next_line(b"\n"), Some((&b""[..], LineEnd::BareLf, 1)));
        assert_eq!(next_line(b"a\r"), None);
    }
}
