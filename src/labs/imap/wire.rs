//! IMAP on the wire (RFC 9051; RFC 3501 clients accepted), sans-IO: where a command or a
//! response ends (lines, and literals `{n}` whose octets follow the line that announces them),
//! the values a line is made of (atoms, quoted strings, literals, parenthesized lists), each
//! with the bytes it lies in, and the commands the lab's server knows.

use crate::locale::{en, term};
use std::ops::Range;

/// The longest line of a command, its literals not counted.
pub const MAX_LINE: usize = 8 * 1024;
/// The largest literal a command may carry (the lab takes no APPEND: a name or a password).
pub const MAX_COMMAND_LITERAL: u64 = 64 * 1024;
/// The largest literal a response may carry (a message: the SMTP lab takes up to 10 MiB).
pub const MAX_RESPONSE_LITERAL: u64 = 16 * 1024 * 1024;

/// How far the bytes at the start of a buffer go towards one whole command or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Whole, this long (its last CRLF included).
    Whole(usize),
    /// More bytes are needed.
    Incomplete,
    /// The bytes so far end with a synchronizing literal's announcement (`{n}` CRLF), `len`
    /// octets up to it: the client waits for the server's `+` before it sends the `octets`.
    Awaits { len: usize, octets: u64 },
    /// A line longer than [`MAX_LINE`] (`len` octets so far, and no end yet).
    TooLong(usize),
    /// A literal larger than the cap: the announcement ends at `len`.
    TooBig { len: usize, octets: u64 },
}

/// The literal a line announces at its end (`{12}`, or `{12+}` which does not wait for `+`).
pub fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let (digits, sync) = match digits.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (digits, true),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some((n, sync))
}

/// Where the command (or response) that starts `buf` ends. `max_literal` caps each literal.
pub fn scan(buf: &[u8], max_literal: u64) -> Scan {
    let mut at = 0;
    loop {
        let Some(end) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            let so_far = buf.len() - at;
            return if so_far > MAX_LINE { Scan::TooLong(buf.len()) } else { Scan::Incomplete };
        };
        if end > MAX_LINE {
            return Scan::TooLong(at + end + 2);
        }
        let line = &buf[at..at + end];
        at += end + 2;
        let Some((octets, sync)) = literal_at_end(line) else { return Scan::Whole(at) };
        if octets > max_literal {
            return Scan::TooBig { len: at, octets };
        }
        if (buf.len() as u64) < at as u64 + octets {
            return if sync && buf.len() == at { Scan::Awaits { len: at, octets } } else { Scan::Incomplete };
        }
        at += octets as usize;
    }
}

/// One value of a line, and the bytes it lies in (for a literal: its octets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub value: Value,
    pub range: Range<usize>,
}

/// The values IMAP's lines are made of (RFC 9051 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom, or something written as one: a number, a flag (`\Seen`), a sequence set
    /// (`1:*`), a fetch item with its section (`BODY.PEEK[HEADER]<0.100>`), `NIL`.
    Atom(String),
    /// A quoted string, its escapes undone.
    Quoted(String),
    /// A literal's octets.
    Literal(Vec<u8>),
    /// A parenthesized list.
    List(Vec<Item>),
}

impl Value {
    /// The value as text: an atom's, a string's (quoted or literal), lossily.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Atom(s) | Value::Quoted(s) => Some(s.clone()),
            Value::Literal(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::List(_) => None,
        }
    }

    /// A string (astring, RFC 9051 §9): an atom, a quoted string or a literal.
    pub fn string(&self) -> Option<String> {
        self.text()
    }
}

/// Reads the values of `bytes` from `at` up to the end of the line (nested lists included),
/// jumping over literals. Returns the values and where the line's CRLF starts.
pub fn items(bytes: &[u8], mut at: usize) -> Result<(Vec<Item>, usize), String> {
    let mut stack: Vec<(Vec<Item>, usize)> = Vec::new();
    let mut out: Vec<Item> = Vec::new();
    loop {
        while bytes.get(at) == Some(&b' ') {
            at += 1;
        }
        let Some(&b) = bytes.get(at) else {
            return Err(en("the line ends without CR LF", &[]));
        };
        let item = match b {
            b'\r' if bytes.get(at + 1) == Some(&b'\n') => {
                if !stack.is_empty() {
                    return Err(en("a list is not closed: a ')' is missing", &[]));
                }
                return Ok((out, at));
            }
            b'(' => {
                stack.push((std::mem::take(&mut out), at));
                at += 1;
                continue;
            }
            b')' => {
                let Some((outer, start)) = stack.pop() else {
                    return Err(en("a ')' closes no list", &[]));
                };
                let list = std::mem::replace(&mut out, outer);
                at += 1;
                Item { value: Value::List(list), range: start..at }
            }
            b'"' => {
                let start = at;
                let mut text = Vec::new();
                at += 1;
                loop {
                    match bytes.get(at) {
                        Some(b'"') => break,
                        Some(b'\\') if matches!(bytes.get(at + 1), Some(b'"' | b'\\')) => {
                            text.push(bytes[at + 1]);
                            at += 2;
                        }
                        Some(b'\r' | b'\n') | None => {
                            return Err(en("a quoted string is not closed on its line", &[]));
                        }
                        Some(&c) => {
                            text.push(c);
                            at += 1;
                        }
                    }
                }
                at += 1;
                Item { value: Value::Quoted(String::from_utf8_lossy(&text).into_owned()), range: start..at }
            }
            b'{' => {
                let close = bytes[at..].iter().position(|&c| c == b'}').map(|i| at + i);
                let Some(close) = close.filter(|&c| bytes.get(c + 1..c + 3) == Some(b"\r\n".as_slice())) else {
                    return Err(en("a '{' that does not announce a literal", &[]));
                };
                let Some((n, _)) = literal_at_end(&bytes[at..=close]) else {
                    return Err(en("a '{' that does not announce a literal", &[]));
                };
                let start = close + 3;
                let end = usize::try_from(n).ok().and_then(|n| start.checked_add(n)).filter(|&e| e <= bytes.len());
                let Some(end) = end else { return Err(en("the literal is cut short", &[])) };
                at = end;
                Item { value: Value::Literal(bytes[start..end].to_vec()), range: start..end }
            }
            _ => {
                let start = at;
                // An atom; a `[section]` may hold spaces and lists, and `<partial>` may follow.
                let mut depth = 0usize;
                while let Some(&c) = bytes.get(at) {
                    match c {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b'\r' | b'\n' => break,
                        b' ' | b'(' | b')' | b'"' | b'{' if depth == 0 => break,
                        _ => {}
                    }
                    at += 1;
                }
                if at == start {
                    return Err(en("an unexpected character {c}", &[("c", &format!("{:?}", bytes[at] as char))]));
                }
                Item { value: Value::Atom(String::from_utf8_lossy(&bytes[start..at]).into_owned()), range: start..at }
            }
        };
        out.push(item);
    }
}

/// A set of message numbers or UIDs (RFC 9051 §9 `sequence-set`): ranges, `*` the largest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<(u32, u32)>);

impl SequenceSet {
    /// Parses `1:3,7,9:*`; `*` stands for `largest`.
    pub fn parse(s: &str, largest: u32) -> Option<SequenceSet> {
        let number = |p: &str| if p == "*" { Some(largest) } else { p.parse::<u32>().ok().filter(|n| *n > 0) };
        let mut out = Vec::new();
        for part in s.split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(part)?, number(part)?),
            };
            out.push((a.min(b), a.max(b)));
        }
        (!out.is_empty()).then_some(SequenceSet(out))
    }

    pub fn contains(&self, n: u32) -> bool {
        self.0.iter().any(|&(a, b)| (a..=b).contains(&n))
    }
}

/// Why a command line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// No tag: the line cannot even be answered with a tagged BAD.
    NoTag,
    /// A known command with the wrong arguments, or a line that does not read.
    Syntax(String),
    /// No such command.
    Unknown(String),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&match self {
            CommandError::NoTag => en("a command starts with a tag, then a space and the command", &[]),
            CommandError::Syntax(why) => why.clone(),
            CommandError::Unknown(verb) => en("no IMAP command {verb}", &[("verb", verb)]),
        })
    }
}

/// What STORE does to the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Add,
    Remove,
    Replace,
}

/// A command the lab's server knows, its arguments read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    /// STARTTLS (RFC 9051 §6.2.1): TLS on this connection, before logging in.
    StartTls,
    Noop,
    Logout,
    Enable(Vec<String>),
    Login {
        user: String,
        password: String,
    },
    /// AUTHENTICATE PLAIN, with its initial response (base64) if it came on the line.
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    List {
        reference: String,
        pattern: String,
    },
    Select {
        mailbox: String,
        read_only: bool,
    },
    Create(String),
    Status {
        mailbox: String,
        items: Vec<String>,
    },
    /// FETCH (UID FETCH with `uid`): which messages, and the items asked, as written.
    Fetch {
        set: String,
        items: Vec<String>,
        uid: bool,
    },
    Store {
        set: String,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        uid: bool,
    },
    Search {
        criteria: Vec<String>,
        uid: bool,
    },
    Copy {
        set: String,
        mailbox: String,
        uid: bool,
        remove: bool,
    },
    Expunge,
    Close,
    Idle,
}

impl Command {
    /// The command's name as the steps' kinds say it (`FETCH`, `UID FETCH` as `FETCH`).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::StartTls => "STARTTLS",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::Enable(_) => "ENABLE",
            Command::Login { .. } => "LOGIN",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::List { .. } => "LIST",
            Command::Select { read_only: false, .. } => "SELECT",
            Command::Select { read_only: true, .. } => "EXAMINE",
            Command::Create(_) => "CREATE",
            Command::Status { .. } => "STATUS",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Search { .. } => "SEARCH",
            Command::Copy { remove: false, .. } => "COPY",
            Command::Copy { remove: true, .. } => "MOVE",
            Command::Expunge => "EXPUNGE",
            Command::Close => "CLOSE",
            Command::Idle => "IDLE",
        }
    }
}

/// A command as it came: its tag, the command, and where tag and verb lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub tag_range: Range<usize>,
    pub verb_range: Range<usize>,
    /// The values after the verb (after `UID` and its verb, for UID commands).
    pub args: Vec<Item>,
    pub command: Result<Command, CommandError>,
}

/// Whether these bytes can be a command's tag: the characters of an atom (and `]`), never
/// `+` (RFC 9051 §9 `tag`).
pub fn is_tag(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= 64 && bytes.iter().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\+".contains(b))
}

/// Reads a whole command (from [`scan`]): its tag, then its command. `Err` only when there is
/// no tag to answer to.
pub fn parse_command(bytes: &[u8]) -> Result<Tagged, CommandError> {
    let tag_end = bytes.iter().position(|&b| b == b' ').ok_or(CommandError::NoTag)?;
    if !is_tag(&bytes[..tag_end]) {
        return Err(CommandError::NoTag);
    }
    let tag = (String::from_utf8_lossy(&bytes[..tag_end]).into_owned(), 0..tag_end);
    let failed = |why: String| Tagged {
        tag: tag.0.clone(),
        tag_range: tag.1.clone(),
        verb_range: 0..0,
        args: Vec::new(),
        command: Err(CommandError::Syntax(why)),
    };
    let all = match items(bytes, tag_end + 1) {
        Ok((all, _)) => all,
        Err(why) => return Ok(failed(why)),
    };
    let mut it = all.into_iter();
    let Some(Item { value: Value::Atom(verb), range: verb_range }) = it.next() else {
        return Ok(failed(en("a tag without a command", &[])));
    };
    let mut args: Vec<Item> = it.collect();
    let mut verb = verb.to_ascii_uppercase();
    let mut uid = false;
    let mut verb_range = verb_range;
    if verb == "UID" && !args.is_empty() {
        let inner = args.remove(0);
        verb = inner.value.text().unwrap_or_default().to_ascii_uppercase();
        verb_range = verb_range.start..inner.range.end;
        uid = true;
    }
    let command = command(&verb, &args, uid);
    Ok(Tagged { tag: tag.0, tag_range: tag.1, verb_range, args, command })
}

/// The text of every value of a list, or of a single value.
fn words(item: &Item) -> Vec<String> {
    match &item.value {
        Value::List(list) => list.iter().filter_map(|i| i.value.text()).collect(),
        other => other.text().into_iter().collect(),
    }
}

fn command(verb: &str, args: &[Item], uid: bool) -> Result<Command, CommandError> {
    let bad = |verb: &str, takes: &'static str| {
        CommandError::Syntax(en("{verb} takes {takes}", &[("verb", &verb), ("takes", &takes)]))
    };
    let text = |i: usize| args.get(i).and_then(|a| a.value.string());
    let uid_ok = matches!(verb, "FETCH" | "STORE" | "SEARCH" | "COPY" | "MOVE" | "EXPUNGE");
    if uid && !uid_ok {
        return Err(CommandError::Syntax(en("UID goes before FETCH, STORE, SEARCH, COPY or MOVE", &[])));
    }
    Ok(match (verb, args.len()) {
        ("CAPABILITY", 0) => Command::Capability,
        ("STARTTLS", 0) => Command::StartTls,
        ("NOOP", 0) => Command::Noop,
        ("LOGOUT", 0) => Command::Logout,
        ("IDLE", 0) => Command::Idle,
        ("EXPUNGE", 0) => Command::Expunge,
        ("CLOSE", 0) => Command::Close,
        ("ENABLE", n) if n > 0 => Command::Enable(args.iter().filter_map(|a| a.value.text()).collect()),
        ("LOGIN", 2) => match (text(0), text(1)) {
            (Some(user), Some(password)) => Command::Login { user, password },
            _ => return Err(bad(verb, term("a user name and a password"))),
        },
        ("AUTHENTICATE", 1 | 2) => {
            Command::Authenticate { mechanism: text(0).unwrap_or_default().to_ascii_uppercase(), initial: text(1) }
        }
        ("LIST", 2) => match (text(0), text(1)) {
            (Some(reference), Some(pattern)) => Command::List { reference, pattern },
            _ => return Err(bad(verb, term("a reference and a mailbox pattern"))),
        },
        ("SELECT" | "EXAMINE", 1) => {
            Command::Select { mailbox: text(0).unwrap_or_default(), read_only: verb == "EXAMINE" }
        }
        ("CREATE", 1) => Command::Create(text(0).unwrap_or_default()),
        ("STATUS", 2) => Command::Status { mailbox: text(0).unwrap_or_default(), items: words(&args[1]) },
        ("FETCH", 2) => Command::Fetch { set: text(0).unwrap_or_default(), items: words(&args[1]), uid },
        ("STORE", 3) => {
            let what = text(1).unwrap_or_default().to_ascii_uppercase();
            let (mode, rest) = match what.as_bytes().first() {
                Some(b'+') => (StoreMode::Add, &what[1..]),
                Some(b'-') => (StoreMode::Remove, &what[1..]),
                _ => (StoreMode::Replace, what.as_str()),
            };
            let silent = match rest {
                "FLAGS" => false,
                "FLAGS.SILENT" => true,
                _ => return Err(bad(verb, term("a message set, FLAGS (+FLAGS, -FLAGS) and flags"))),
            };
            Command::Store { set: text(0).unwrap_or_default(), mode, silent, flags: words(&args[2]), uid }
        }
        ("SEARCH", n) if n > 0 => Command::Search { criteria: args.iter().flat_map(words).collect(), uid },
        ("COPY" | "MOVE", 2) => Command::Copy {
            set: text(0).unwrap_or_default(),
            mailbox: text(1).unwrap_or_default(),
            uid,
            remove: verb == "MOVE",
        },
        (
            "CAPABILITY" | "NOOP" | "LOGOUT" | "IDLE" | "EXPUNGE" | "CLOSE" | "ENABLE" | "LOGIN" | "AUTHENTICATE"
            | "LIST" | "SELECT" | "EXAMINE" | "CREATE" | "STATUS" | "FETCH" | "STORE" | "SEARCH" | "COPY" | "MOVE",
            _,
        ) => return Err(bad(verb, term("other arguments"))),
        _ => return Err(CommandError::Unknown(verb.to_string())),
    })
}

/// A string as IMAP writes it: quoted, or as a literal if it cannot be (a CR, LF or a
/// non-ASCII octet).
pub fn astring(s: &str) -> String {
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b >= 0x80) {
        format!("{{{}}}\r\n{s}", s.len())
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_end_at_their_line_or_after_their_literals() {
        assert_eq!(scan(b"a1 NOOP\r\nnext", MAX_COMMAND_LITERAL), Scan::Whole(9));
        assert_eq!(scan(b"a1 NOOP", MAX_COMMAND_LITERAL), Scan::Incomplete);
        let login = b"a2 LOGIN {3}\r\nbob {3}\r\nlab\r\n";
        assert_eq!(scan(login, MAX_COMMAND_LITERAL), Scan::Whole(login.len()));
        assert_eq!(scan(&login[..14], MAX_COMMAND_LITERAL), Scan::Awaits { len: 14, octets: 3 });
        assert_eq!(scan(&login[..16], MAX_COMMAND_LITERAL), Scan::Incomplete);
        // LITERAL+ does not wait.
        assert_eq!(scan(b"a3 LOGIN {3+}\r\n", MAX_COMMAND_LITERAL), Scan::Incomplete);
        assert_eq!(
            scan(b"a4 LOGIN {4294967295}\r\n", MAX_COMMAND_LITERAL),
            Scan::TooBig { len: 23, octets: 4_294_967_295 }
        );
        let long = vec![b'x'; MAX_LINE + 10];
        assert_eq!(scan(&long, MAX_COMMAND_LITERAL), Scan::TooLong(MAX_LINE + 10));
    }

    #[test]
    fn values_with_their_bytes() {
        let line = b"* 1 FETCH (FLAGS (\\Seen) BODY[HEADER.FIELDS (FROM)] {7}\r\nFrom:\r\n \"a \\\"q\\\"\" NIL)\r\n";
        let (read, end) = items(line, 0).unwrap();
        assert_eq!(end, line.len() - 2);
        assert_eq!(read[0].value, Value::Atom("*".into()));
        let Value::List(fetch) = &read[3].value else { panic!("{read:?}") };
        assert_eq!(fetch[0].value, Value::Atom("FLAGS".into()));
        assert_eq!(fetch[2].value, Value::Atom("BODY[HEADER.FIELDS (FROM)]".into()));
        assert_eq!(fetch[3].value, Value::Literal(b"From:\r\n".to_vec()));
        assert_eq!(&line[fetch[3].range.clone()], b"From:\r\n");
        assert_eq!(fetch[4].value, Value::Quoted("a \"q\"".into()));
        assert!(items(b"a (b\r\n", 0).is_err());
        assert!(items(b"a {99}\r\nxy\r\n", 0).is_err());
    }

    #[test]
    fn commands_of_rfc_9051() {
        let cmd = |s: &str| parse_command(s.as_bytes()).unwrap().command;
        assert_eq!(cmd("a1 login bob \"lab\"\r\n"), Ok(Command::Login { user: "bob".into(), password: "lab".into() }));
        assert_eq!(cmd("a2 LOGIN {3}\r\nbob {3}\r\nlab\r\n"), cmd("a1 login bob \"lab\"\r\n"));
        assert_eq!(
            cmd("a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER] BODY[TEXT]<0.100>)\r\n"),
            Ok(Command::Fetch {
                set: "1:*".into(),
                items: vec!["FLAGS".into(), "BODY.PEEK[HEADER]".into(), "BODY[TEXT]<0.100>".into()],
                uid: true
            })
        );
        assert_eq!(
            cmd("a4 STORE 2 +FLAGS.SILENT (\\Seen \\Flagged)\r\n"),
            Ok(Command::Store {
                set: "2".into(),
                mode: StoreMode::Add,
                silent: true,
                flags: vec!["\\Seen".into(), "\\Flagged".into()],
                uid: false
            })
        );
        assert_eq!(cmd("a5 SEARCH UNSEEN\r\n"), Ok(Command::Search { criteria: vec!["UNSEEN".into()], uid: false }));
        assert_eq!(cmd("a6 MOVE 1 Archive\r\n").unwrap().verb(), "MOVE");
        assert_eq!(cmd("a7 FROB\r\n"), Err(CommandError::Unknown("FROB".into())));
        assert_eq!(
            cmd("a8 UID LOGOUT\r\n").unwrap_err().to_string(),
            "UID goes before FETCH, STORE, SEARCH, COPY or MOVE"
        );
        assert_eq!(parse_command(b"\r\n"), Err(CommandError::NoTag));
        assert_eq!(SequenceSet::parse("1:3,7,9:*", 12), Some(SequenceSet(vec![(1, 3), (7, 7), (9, 12)])));
        assert_eq!(SequenceSet::parse("0", 3), None);
        assert_eq!(astring("a\"b"), "\"a\\\"b\"");
    }
}
