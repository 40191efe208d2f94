//! The POP3 lab server's session, sans-IO: a state machine with RFC 1939's states named, over
//! the mail the SMTP lab delivered. In AUTHORIZATION a client names an account (USER) and
//! gives its password (PASS); the maildrop is then locked in TRANSACTION, where STAT, LIST,
//! UIDL, TOP and RETR read it and DELE only marks a message; QUIT enters UPDATE, and only then
//! are the marked messages really removed. A QUIT in AUTHORIZATION, or a connection that just
//! ends, removes nothing. [`serve`] is the small loop that reads command lines from the socket
//! and writes the session's answers.

use super::wire::{Command, CommandError, MAX_COMMAND_LINE, stuff};
use crate::labs::smtp::{Mail, Mailbox};
use crate::locale::en;
use crate::net::Stream;
use crate::net::lines::{Input, ReadError, ServerLines};
use color_eyre::eyre::{Result, eyre};
use std::time::Duration;

/// How long the server waits for the next command: RFC 1939 §3 asks for an autologout timer of
/// at least 10 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// RFC 1939's session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Authorization,
    Transaction,
    Update,
}

impl State {
    /// As RFC 1939 writes it.
    pub fn name(self) -> &'static str {
        match self {
            State::Authorization => "AUTHORIZATION",
            State::Transaction => "TRANSACTION",
            State::Update => "UPDATE",
        }
    }
}

pub use crate::labs::smtp::mailbox::{ACCOUNTS, Account};

/// What the server answers: the status and its text, the lines of a multi-line answer (ready to
/// send: dot-stuffed, ended by the `.` line), and whether the connection then closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub ok: bool,
    pub text: String,
    pub body: Option<Vec<u8>>,
    pub close: bool,
}

impl Response {
    fn ok(text: impl Into<String>) -> Response {
        Response { ok: true, text: text.into(), body: None, close: false }
    }

    fn err(text: impl Into<String>) -> Response {
        Response { ok: false, text: text.into(), body: None, close: false }
    }

    fn with_body(mut self, text: &[u8]) -> Response {
        self.body = Some(stuff(text));
        self
    }

    /// The bytes on the wire.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = if self.ok { b"+OK".to_vec() } else { b"-ERR".to_vec() };
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.text.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        out
    }
}

/// One message of a locked maildrop, and whether DELE marked it.
#[derive(Debug, Clone)]
struct Entry {
    mail: Mail,
    deleted: bool,
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    mailbox: Mailbox,
    state: State,
    /// The account USER named, waiting for its PASS.
    user: Option<Account>,
    /// The maildrop as PASS locked it (message numbers count from 1).
    drop: Vec<Entry>,
    /// TLS on this connection: active, required before a login, being started.
    tls: crate::tls::ServerTls,
    /// The greeting's timestamp, `<...>`, where the server offers APOP (RFC 1939 §7).
    timestamp: Option<String>,
}

impl Session {
    pub fn new(mailbox: Mailbox) -> Session {
        Session {
            mailbox,
            state: State::Authorization,
            user: None,
            drop: Vec::new(),
            tls: crate::tls::ServerTls::default(),
            timestamp: None,
        }
    }

    /// A session on a connection that uses TLS as `mode` says: inside it from the start (995),
    /// or with STLS required before USER and PASS (the STLS story).
    pub fn with_tls(mut self, mode: crate::tls::Mode) -> Session {
        self.tls = crate::tls::ServerTls::new(mode);
        self
    }

    /// The server offers APOP: its greeting carries a timestamp unique to this session, which
    /// the client's digest must cover (RFC 1939 §7).
    pub fn with_apop(mut self) -> Session {
        self.timestamp = Some(format!("<{:016x}.{}@protolab.test>", rand::random::<u64>(), std::process::id()));
        self
    }

    /// TLS on this connection: the socket loop starts the handshake when the session agreed.
    pub fn tls(&mut self) -> &mut crate::tls::ServerTls {
        &mut self.tls
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The greeting the server sends first.
    pub fn greeting(&self) -> Response {
        match &self.timestamp {
            Some(stamp) => Response::ok(format!("protolab POP3 server ready (accounts: bob / lab) {stamp}")),
            None => Response::ok("protolab POP3 server ready (accounts: bob / lab)"),
        }
    }

    /// The answer to one line as it came, up to and with its LF.
    pub fn line(&mut self, line: &[u8]) -> Response {
        match line.strip_suffix(b"\r\n") {
            Some(command) => self.input(command, line.len()),
            None => Response::err(en("a command line ends with CR LF, not a bare LF", &[])),
        }
    }

    /// The answer to one command line (without its CRLF; `full` is its length with it).
    pub fn input(&mut self, line: &[u8], full: usize) -> Response {
        let command = match Command::parse(line, full) {
            Ok(command) => command,
            Err(e) => return Response::err(e.to_string()),
        };
        match (self.state, command) {
            (_, Command::Capa) => {
                // STLS only in the clear, and only before logging in (RFC 2595 §4).
                let stls = if self.tls.active || self.state != State::Authorization { "" } else { "STLS\r\n" };
                let body = format!("USER\r\n{stls}TOP\r\nUIDL\r\nRESP-CODES\r\nIMPLEMENTATION protolab\r\n");
                Response::ok("capabilities follow").with_body(body.as_bytes())
            }
            (State::Authorization, Command::User(_) | Command::Pass(_)) if self.tls.refuses_login() => {
                Response::err("[AUTH] STLS first: a password in the clear can be read on the way")
            }
            (_, Command::Noop) if self.state == State::Transaction => Response::ok(""),
            (State::Authorization, Command::User(name)) => match ACCOUNTS.iter().find(|a| a.user == name) {
                Some(account) => {
                    self.user = Some(*account);
                    Response::ok(format!("{name} is known here: now PASS"))
                }
                None => Response::err(format!("no account {name} here (the lab's is bob)")),
            },
            (State::Authorization, Command::Pass(password)) => self.login(&password),
            (State::Authorization, Command::Apop(name, digest)) => match &self.timestamp {
                None => Response::err("APOP is not offered here (no timestamp in the greeting): USER and PASS"),
                Some(stamp) => {
                    let account = ACCOUNTS.iter().find(|a| a.user == name);
                    match account.filter(|a| apop_digest(stamp, a.password) == digest) {
                        Some(account) => {
                            self.user = Some(*account);
                            let password = account.password;
                            self.login(password)
                        }
                        None => Response::err("[AUTH] APOP: no such account, or the digest does not match"),
                    }
                }
            },
            (State::Authorization, Command::Quit) => {
                Response { close: true, ..Response::ok("protolab POP3 server signing off") }
            }
            (State::Authorization, Command::Stls) if self.tls.active => Response::err("TLS is already active"),
            (State::Authorization, Command::Stls) => {
                self.tls.agree();
                Response::ok("begin TLS negotiation")
            }
            (State::Authorization, other) => {
                Response::err(format!("{} only after logging in (USER, then PASS)", other.verb()))
            }
            (State::Transaction, command) => self.transaction(command),
            (State::Update, _) => Response::err("the session is over"),
        }
    }

    /// PASS: the account's password locks its maildrop (a snapshot of its mail now).
    fn login(&mut self, password: &str) -> Response {
        let Some(account) = self.user.take() else { return Response::err("PASS goes after USER") };
        if password != account.password {
            return Response::err("[AUTH] wrong password: give USER again");
        }
        self.drop = self
            .mailbox
            .for_recipient(account.address)
            .into_iter()
            .map(|mail| Entry { mail, deleted: false })
            .collect();
        self.state = State::Transaction;
        let (n, octets) = self.totals();
        Response::ok(format!("{}'s maildrop has {} ({octets} octets)", account.user, messages(n)))
    }

    /// Messages not marked deleted, and their size.
    fn totals(&self) -> (usize, usize) {
        let live = self.drop.iter().filter(|e| !e.deleted);
        (live.clone().count(), live.map(|e| e.mail.content.len()).sum())
    }

    /// The message numbered `n`, unless it does not exist or is marked deleted.
    fn message(&self, n: u32) -> Result<&Entry, Response> {
        match self.drop.get((n as usize).wrapping_sub(1)) {
            None => Err(Response::err(format!("no message {n} (the maildrop has {})", self.drop.len()))),
            Some(e) if e.deleted => Err(Response::err(format!("message {n} is already deleted"))),
            Some(e) => Ok(e),
        }
    }

    fn transaction(&mut self, command: Command) -> Response {
        let answer = |r: Result<Response, Response>| r.unwrap_or_else(|e| e);
        match command {
            Command::Stat => {
                let (n, octets) = self.totals();
                Response::ok(format!("{n} {octets}"))
            }
            Command::List(Some(n)) => {
                answer(self.message(n).map(|e| Response::ok(format!("{n} {}", e.mail.content.len()))))
            }
            Command::List(None) => {
                let (n, octets) = self.totals();
                let lines = self.listing(|e| e.mail.content.len().to_string());
                Response::ok(format!("{} ({octets} octets)", messages(n))).with_body(&lines)
            }
            Command::Uidl(Some(n)) => answer(self.message(n).map(|e| Response::ok(format!("{n} {}", e.mail.id)))),
            Command::Uidl(None) => {
                Response::ok("unique-id listing follows").with_body(&self.listing(|e| e.mail.id.clone()))
            }
            Command::Retr(n) => answer(
                self.message(n)
                    .map(|e| Response::ok(format!("{} octets", e.mail.content.len())).with_body(&e.mail.content)),
            ),
            Command::Top(n, lines) => answer(self.message(n).map(|e| {
                let text = match lines {
                    0 => "the header alone".to_string(),
                    1 => "the header and the body's first line".to_string(),
                    n => format!("the header and the body's first {n} lines"),
                };
                Response::ok(text).with_body(&top(&e.mail.content, lines))
            })),
            Command::Dele(n) => match self.message(n) {
                Ok(_) => {
                    self.drop[n as usize - 1].deleted = true;
                    Response::ok(format!("message {n} marked deleted: it goes at QUIT (UPDATE)"))
                }
                Err(e) => e,
            },
            Command::Rset => {
                self.drop.iter_mut().for_each(|e| e.deleted = false);
                let (n, octets) = self.totals();
                Response::ok(format!("maildrop has {} ({octets} octets)", messages(n)))
            }
            Command::Quit => {
                // UPDATE: the marked messages really go now.
                self.state = State::Update;
                let gone: Vec<String> = self.drop.iter().filter(|e| e.deleted).map(|e| e.mail.id.clone()).collect();
                let removed = self.mailbox.remove(&gone);
                let left = self.drop.len() - gone.len();
                Response {
                    close: true,
                    ..Response::ok(format!("{} deleted, {left} left: signing off", messages(removed)))
                }
            }
            Command::Noop => Response::ok(""),
            Command::User(_) | Command::Pass(_) | Command::Apop(..) => Response::err("already logged in"),
            Command::Stls => Response::err("STLS only before logging in"),
            Command::Capa => unreachable!("answered in every state"),
        }
    }

    /// One line per message not deleted: its number and `what`.
    fn listing(&self, what: impl Fn(&Entry) -> String) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, e) in self.drop.iter().enumerate().filter(|(_, e)| !e.deleted) {
            out.extend_from_slice(format!("{} {}\r\n", i + 1, what(e)).as_bytes());
        }
        out
    }
}

/// Serves one client on `io` until QUIT (then `Ok`), or until it vanishes or idles (an error
/// saying which; either way nothing is deleted, as RFC 1939 §6 wants).
pub async fn serve(
    io: Stream,
    mailbox: Mailbox,
    idle_timeout: Duration,
    tls: crate::tls::Mode,
    apop: bool,
) -> Result<()> {
    let mut session = Session::new(mailbox).with_tls(tls);
    if apop {
        session = session.with_apop();
    }
    let mut conn = ServerLines::new(io, idle_timeout);
    if tls == crate::tls::Mode::Implicit {
        conn.start_tls().await?;
    }
    conn.send(&session.greeting().emit()).await?;
    loop {
        let state = session.state().name();
        let response = match conn.next(MAX_COMMAND_LINE).await {
            Ok(Input::Line(line)) => session.line(&line),
            Ok(Input::TooLong(octets)) => Response::err(CommandError::TooLong(octets).to_string()),
            Err(ReadError::Closed) => {
                return Err(eyre!(en(
                    "the client closed the connection without QUIT (in state {state}): nothing was deleted",
                    &[("state", &state)]
                )));
            }
            Err(ReadError::Io(e)) => {
                return Err(eyre!(en(
                    "reading from the client (in state {state}): {error}",
                    &[("state", &state), ("error", &e)]
                )));
            }
            Err(ReadError::Idle) => {
                // §3: the autologout timer closes without a word and without UPDATE.
                let _ = conn.close().await;
                let secs = idle_timeout.as_secs_f64();
                return Err(eyre!(en(
                    "the client sent nothing for {secs} s (in state {state}): closed without UPDATE, nothing deleted",
                    &[("secs", &secs), ("state", &state)]
                )));
            }
        };
        conn.send(&response.emit()).await?;
        if response.close {
            return conn.close().await;
        }
        if session.tls().take_starting() {
            conn.start_tls().await?;
            session.tls().started();
        }
    }
}

/// APOP's digest (RFC 1939 §7): MD5 of the greeting's timestamp and the password, in lower-case
/// hex. The password never crosses the wire; anyone who saw the exchange can still try
/// passwords against it offline, and MD5 is long broken: TLS is the real protection.
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    use md5::Digest;
    let sum = md5::Md5::digest(format!("{timestamp}{password}").as_bytes());
    sum.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the server says to a client it has no room for, before it closes (RFC 3206's SYS/TEMP).
pub fn busy() -> Vec<u8> {
    Response::err("[SYS/TEMP] too many connections: try again later").emit()
}

/// "1 message", "2 messages".
fn messages(n: usize) -> String {
    if n == 1 { "1 message".into() } else { format!("{n} messages") }
}

/// The header of a message, its blank line, and the first `lines` lines of its body.
fn top(content: &[u8], lines: u32) -> Vec<u8> {
    let body = crate::labs::smtp::message::header_end(content);
    let mut out = content[..body].to_vec();
    for line in content[body..].split_inclusive(|&b| b == b'\n').take(lines as usize) {
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1939 §7's example: the timestamp and the secret "tanstaaf" give this digest.
    #[test]
    fn the_apop_digest_of_the_rfc_example() {
        assert_eq!(apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"), "c4c9334bac560ecc979e58001b3e22fb");
    }

    #[test]
    fn apop_logs_in_only_with_the_digest_of_this_greeting() {
        let mut s = Session::new(Mailbox::default()).with_apop();
        let greeting = String::from_utf8(s.greeting().emit()).unwrap();
        let stamp = &greeting[greeting.find('<').unwrap()..greeting.rfind('>').unwrap() + 1];
        let wrong = format!("APOP bob {}\r\n", apop_digest("<other@x>", "lab"));
        assert!(String::from_utf8(s.line(wrong.as_bytes()).emit()).unwrap().starts_with("-ERR [AUTH]"));
        let right = format!("APOP bob {}\r\n", apop_digest(stamp, "lab"));
        assert!(String::from_utf8(s.line(right.as_bytes()).emit()).unwrap().starts_with("+OK bob's maildrop"));
        assert_eq!(s.state(), State::Transaction);
        let plain = Session::new(Mailbox::default());
        assert!(!String::from_utf8(plain.greeting().emit()).unwrap().contains('<'));
    }

    fn mailbox(n: usize) -> Mailbox {
        crate::labs::smtp::mailbox::filled(n, |i| {
            format!("Subject: {i}\r\nMessage-ID: <{i}@lab>\r\n\r\n.one\r\ntwo\r\nthree\r\n")
        })
    }

    fn say(s: &mut Session, line: &str) -> Response {
        s.input(line.as_bytes(), line.len() + 2)
    }

    #[test]
    fn a_whole_session_deletes_only_at_update() {
        let mb = mailbox(2);
        let mut s = Session::new(mb.clone());
        assert!(s.greeting().emit().starts_with(b"+OK "));
        assert_eq!(say(&mut s, "STAT"), Response::err("STAT only after logging in (USER, then PASS)"));
        assert!(!say(&mut s, "USER carol").ok);
        assert!(say(&mut s, "USER bob").ok);
        assert_eq!(say(&mut s, "PASS nope").text, "[AUTH] wrong password: give USER again");
        assert_eq!(say(&mut s, "PASS lab").text, "PASS goes after USER");
        assert!(say(&mut s, "USER bob").ok);
        assert_eq!(say(&mut s, "PASS lab").text, "bob's maildrop has 2 messages (106 octets)");
        assert_eq!(s.state(), State::Transaction);
        assert_eq!(say(&mut s, "STAT").text, "2 106");
        assert_eq!(say(&mut s, "LIST").emit(), b"+OK 2 messages (106 octets)\r\n1 53\r\n2 53\r\n.\r\n");
        assert_eq!(say(&mut s, "UIDL 2").text, "2 00000002");
        // The body line that starts with a dot goes with two.
        let retr = say(&mut s, "RETR 1").emit();
        assert!(retr.ends_with(b"\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n"), "{}", String::from_utf8_lossy(&retr));
        assert!(say(&mut s, "TOP 2 1").emit().ends_with(b"\r\n\r\n..one\r\n.\r\n"));
        assert!(say(&mut s, "DELE 1").ok);
        assert_eq!(say(&mut s, "DELE 1").text, "message 1 is already deleted");
        assert_eq!(say(&mut s, "RETR 3").text, "no message 3 (the maildrop has 2)");
        assert_eq!(say(&mut s, "STAT").text, "1 53");
        // Marked, not gone: the mailbox still has both until UPDATE.
        assert_eq!(mb.len(), 2);
        let bye = say(&mut s, "QUIT");
        assert!(bye.close && bye.ok);
        assert_eq!(s.state(), State::Update);
        assert_eq!(mb.len(), 1);
        assert_eq!(mb.messages()[0].id, "00000002");
    }

    #[test]
    fn rset_and_a_quit_before_login_keep_everything() {
        let mb = mailbox(1);
        let mut s = Session::new(mb.clone());
        say(&mut s, "USER bob");
        say(&mut s, "PASS lab");
        assert!(say(&mut s, "DELE 1").ok);
        assert!(say(&mut s, "RSET").ok);
        say(&mut s, "QUIT");
        assert_eq!(mb.len(), 1);
        let mut s = Session::new(mb.clone());
        assert!(say(&mut s, "QUIT").close);
        assert_eq!(mb.len(), 1);
        assert!(say(&mut s, "CAPA").emit().ends_with(b"UIDL\r\nRESP-CODES\r\nIMPLEMENTATION protolab\r\n.\r\n"));
        assert_eq!(say(&mut s, "FOO").text, "no POP3 command FOO");
    }
}
