//! The lab's SMTP server (RFC 5321): a [`Session`] state machine that turns each line the client
//! sends into a reply, with no I/O inside, and [`serve`], the small async loop that reads lines
//! from the socket, hands them to the session and writes its replies.
//!
//! The session's states follow the mail transaction of §3.3:
//!
//! ```text
//!  Greeted ─EHLO/HELO─▶ Ready ─MAIL─▶ MailFrom ─RCPT─▶ RcptTo ─DATA─▶ Data
//!                        ▲ ▲                          │ ▲ RCPT     │
//!                        │ └──────── RSET, EHLO ──────┘ └──┘         │
//!                        └─────────── "." ends the text: 250 ────────┘
//!  any command state ─QUIT─▶ Quit (221, then the server closes its side)
//! ```
//!
//! Mail for the lab domain goes into the in-memory [`Mailbox`]; nothing is ever relayed.

use super::mailbox::{ACCOUNTS, Mail, Mailbox};
use super::message::rfc5322_date;
use super::wire::{Command, CommandError, LineEnd, MAX_COMMAND_LINE, MAX_TEXT_LINE, Reply, ReplyCode, next_line};
use crate::locale::en;
use crate::net::Stream;
use crate::net::lines::{Input, ReadError, ServerLines};
use color_eyre::eyre::{Result, eyre};
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

/// State changes a session remembers: enough to read one transaction, bounded for a long session.
pub const MAX_TRANSITIONS: usize = 64;

/// The lab server's name and its limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// The name the server gives itself in the greeting and replies.
    pub hostname: String,
    /// The only domain the server takes mail for: it delivers locally and never relays (§3.6).
    pub local_domain: String,
    /// Largest message text accepted, in octets; advertised as `SIZE` (RFC 1870).
    pub max_message_size: usize,
    /// Most recipients in one transaction (§4.5.3.1.8 asks servers to take at least 100).
    pub max_recipients: usize,
    /// How long the server waits for the client's next line (§4.5.3.2.7: at least 5 minutes).
    pub idle_timeout: Duration,
    /// STARTTLS is offered (RFC 3207): the lab CA's certificate is made on first use.
    pub starttls: bool,
    /// TLS from the first byte (port 465, RFC 8314): no STARTTLS.
    pub implicit_tls: bool,
    /// Submission (RFC 6409, port 587): MAIL needs a client that logged in with AUTH, and AUTH
    /// needs TLS first.
    pub submission: bool,
    /// A client that logged in may send to any domain (submission on an MSA, RFC 6409 §3.1):
    /// the message waits in the mailbox for the server's MTA to relay it. Only the mail lab's
    /// `mail.a.lab` does this, on the lab network.
    pub relay: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "protolab.test".into(),
            local_domain: "protolab.test".into(),
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(300),
            starttls: true,
            implicit_tls: false,
            submission: false,
            relay: false,
        }
    }
}

/// Where the dialogue is (§3.3 and §4.1.4 say which commands may come when).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The 220 greeting went out; the client has not said EHLO or HELO yet.
    Greeted,
    /// The client introduced itself; no mail transaction is open.
    Ready,
    /// MAIL FROM was accepted: the transaction has its sender and waits for recipients.
    MailFrom,
    /// At least one RCPT TO was accepted: more recipients may come, or DATA.
    RcptTo,
    /// 354 went out: every line is message text until the line with a single `.`.
    Data,
    /// QUIT was answered with 221: the server closes the connection.
    Quit,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Greeted => "GREETED",
            State::Ready => "READY",
            State::MailFrom => "MAIL-FROM",
            State::RcptTo => "RCPT-TO",
            State::Data => "DATA",
            State::Quit => "QUIT",
        })
    }
}

/// The mail transaction in progress (§3.3): its envelope and text.
#[derive(Debug, Default)]
struct Transaction {
    /// From MAIL FROM; empty for the null reverse-path.
    reverse_path: String,
    /// From each accepted RCPT TO.
    forward_paths: Vec<String>,
    /// The message text so far, dot-stuffing undone.
    text: Vec<u8>,
    /// The text outgrew the size limit: the rest is read and dropped, then 552.
    too_big: bool,
    /// A text line was over 1000 octets: the text is read to its end, then refused.
    line_too_long: bool,
    /// The last text line ended with CR LF: a `.` line here ends the text. After a bare LF it
    /// does not: only CR LF . CR LF ends DATA (§4.1.1.4), or bytes after a bare LF and a dot
    /// would run as commands (SMTP smuggling).
    at_line_start: bool,
    /// The text has a bare LF or a bare CR: it is read to its end, then refused.
    bare_line_end: bool,
}

/// One client's SMTP session, sans-IO: lines in, replies out. Time comes in as an argument.
#[derive(Debug)]
pub struct Session {
    /// The server's name and limits.
    config: Arc<Config>,
    /// Where accepted mail goes.
    mailbox: Mailbox,
    /// The client's address, for the `Received:` line.
    peer: SocketAddr,
    /// Where the dialogue is; changed only by [`Session::enter`].
    state: State,
    /// The name given in EHLO/HELO.
    client_domain: String,
    /// EHLO rather than HELO: the client may use the extensions (SIZE, 8BITMIME).
    extended: bool,
    transaction: Transaction,
    /// The latest state changes, `(from, to)`, oldest first, for tests and a curious reader.
    transitions: VecDeque<(State, State)>,
    /// TLS on this connection: active (after STARTTLS, or on port 465), required before MAIL
    /// (submission), being started (STARTTLS was answered 220).
    tls: crate::tls::ServerTls,
    /// The account the client logged in as with AUTH.
    user: Option<String>,
    /// An AUTH exchange in progress: the client's next line is a SASL response.
    sasl: Option<Sasl>,
    /// Each message, once its text is complete, waits for checks before the reply (an MTA that
    /// checks SPF, DKIM and DMARC): see [`Session::checked`].
    checked: bool,
    /// A message whose text is complete, waiting for the checks.
    finished: Option<Finished>,
}

/// A message whose text is complete, as the checks see it: its envelope, who sent it, its text.
#[derive(Debug, Clone)]
pub struct Finished {
    pub reverse_path: String,
    pub forward_paths: Vec<String>,
    /// The name the client gave in EHLO/HELO.
    pub client_domain: String,
    pub peer: SocketAddr,
    pub text: Vec<u8>,
}

/// What the checks say of a finished message: take it, with header fields to put on top of it
/// (`Authentication-Results:`), or refuse it with this reply.
#[derive(Debug, Clone)]
pub enum Judgement {
    Accept { header: String },
    Refuse(Reply),
}

/// Where an AUTH exchange is (RFC 4954 §4): the server sent 334 and waits for a response.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sasl {
    /// PLAIN (RFC 4616) without an initial response: `\0user\0password` comes next.
    Plain,
    /// LOGIN: the user name comes next.
    LoginUser,
    /// LOGIN: the password comes next.
    LoginPassword(String),
}

impl Session {
    pub fn new(config: Arc<Config>, mailbox: Mailbox, peer: SocketAddr) -> Self {
        Session {
            tls: crate::tls::ServerTls::new(match (config.implicit_tls, config.submission) {
                (true, _) => crate::tls::Mode::Implicit,
                (false, true) => crate::tls::Mode::StartTls,
                (false, false) => crate::tls::Mode::Plain,
            }),
            config,
            mailbox,
            peer,
            state: State::Greeted,
            client_domain: String::new(),
            extended: false,
            transaction: Transaction::default(),
            transitions: VecDeque::new(),
            user: None,
            sasl: None,
            checked: false,
            finished: None,
        }
    }

    /// Each finished message waits for checks before the reply: [`Session::take_finished`], then
    /// [`Session::judged`].
    pub fn checked(mut self) -> Self {
        self.checked = true;
        self
    }

    /// Whether STARTTLS was just agreed (once): the socket loop starts the handshake.
    pub fn take_starting_tls(&mut self) -> bool {
        self.tls.take_starting()
    }

    /// The TLS handshake finished: the session starts over, as if just greeted, and forgets what
    /// the client said in the clear (RFC 3207 §4.2).
    pub fn tls_started(&mut self) {
        self.tls.started();
        self.extended = false;
        self.client_domain.clear();
        self.transaction = Transaction::default();
        self.enter(State::Greeted);
    }

    /// The account the client logged in as, if it did.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The latest state changes (at most [`MAX_TRANSITIONS`]), oldest first.
    pub fn transitions(&self) -> impl Iterator<Item = (State, State)> + '_ {
        self.transitions.iter().copied()
    }

    /// The one place the state changes.
    fn enter(&mut self, next: State) {
        if next != self.state {
            if self.transitions.len() == MAX_TRANSITIONS {
                self.transitions.pop_front();
            }
            self.transitions.push_back((self.state, next));
            self.state = next;
        }
    }

    /// The 220 the server sends first, before the client says anything (§4.3.1).
    pub fn greeting(&self) -> Reply {
        Reply::new(ReplyCode::SERVICE_READY, format!("{} ESMTP protolab lab server", self.config.hostname))
    }

    /// The longest line the session expects now: a command line, or a line of text.
    pub fn line_limit(&self) -> usize {
        if self.state == State::Data { MAX_TEXT_LINE } else { MAX_COMMAND_LINE }
    }

    /// One line from the client, its line end included. Returns the reply to send, if any
    /// (lines of message text get none until the `.` line).
    pub fn input(&mut self, line: &[u8], now: SystemTime) -> Option<Reply> {
        if let Some(sasl) = self.sasl.take() {
            return Some(self.sasl_response(sasl, line));
        }
        match self.state {
            State::Quit => None,
            State::Data => self.text_line(line, now),
            _ => Some(match Command::parse_line(line) {
                Ok(cmd) => self.command(cmd),
                Err(e) => e.reply(),
            }),
        }
    }

    /// A line too long to keep arrived (`octets` with its end); the reader dropped its bytes.
    pub fn too_long(&mut self, octets: usize) -> Option<Reply> {
        match self.state {
            State::Quit => None,
            State::Data => {
                self.transaction.line_too_long = true;
                None
            }
            _ => Some(CommandError::TooLong { octets }.reply()),
        }
    }

    /// A command, in a command state: the heart of the server.
    pub fn command(&mut self, cmd: Command<'_>) -> Reply {
        use ReplyCode as C;
        let host = self.config.hostname.clone();
        match cmd {
            Command::Ehlo { domain } | Command::Helo { domain } => {
                // A new EHLO/HELO also clears any transaction (§4.1.4).
                self.extended = matches!(cmd, Command::Ehlo { .. });
                self.client_domain = domain.to_string();
                self.transaction = Transaction::default();
                self.enter(State::Ready);
                let hello = format!("{host} greets {domain}");
                if self.extended {
                    let size = format!("SIZE {}", self.config.max_message_size);
                    let mut lines = vec![hello, size, "8BITMIME".into(), "PIPELINING".into()];
                    // RFC 3207 §4.2: STARTTLS is not offered again inside TLS; AUTH only inside
                    // it, where the password it carries is sealed.
                    if self.config.starttls && !self.tls.active {
                        lines.push("STARTTLS".into());
                    }
                    if self.tls.active {
                        lines.push("AUTH PLAIN LOGIN".into());
                    }
                    lines.push("HELP".into());
                    Reply::multi(C::OK, lines)
                } else {
                    Reply::new(C::OK, hello)
                }
            }
            Command::Mail { from, params } => match self.state {
                State::Greeted => Reply::new(C::BAD_SEQUENCE, "bad sequence of commands: send EHLO or HELO first"),
                State::MailFrom | State::RcptTo => {
                    Reply::new(C::BAD_SEQUENCE, "bad sequence of commands: a transaction is open (RSET ends it)")
                }
                _ if self.tls.refuses_login() => {
                    Reply::new(C::ACCESS_REQUIRED, "5.7.0 Must issue a STARTTLS command first")
                }
                _ if self.config.submission && self.user.is_none() => {
                    Reply::new(C::ACCESS_REQUIRED, "5.7.0 Authentication required")
                }
                _ => {
                    for p in &params {
                        if let Some(refusal) = self.mail_param(p.keyword, p.value) {
                            return refusal;
                        }
                    }
                    self.transaction = Transaction { reverse_path: from.mailbox.to_string(), ..Transaction::default() };
                    self.enter(State::MailFrom);
                    Reply::new(C::OK, format!("sender <{}> OK", from.mailbox))
                }
            },
            Command::Rcpt { to, params } => match self.state {
                State::MailFrom | State::RcptTo => {
                    if let Some(p) = params.first() {
                        return Reply::new(
                            C::PARAMETERS_NOT_RECOGNIZED,
                            format!("RCPT parameter {} not recognized", p.keyword),
                        );
                    }
                    let local = to.is_postmaster()
                        || to.domain().is_some_and(|d| d.eq_ignore_ascii_case(&self.config.local_domain))
                        || (self.config.relay && self.user.is_some());
                    if !local {
                        return Reply::new(
                            C::MAILBOX_UNAVAILABLE,
                            format!(
                                "<{}>: relay denied, this lab server takes mail for @{} only",
                                to.mailbox, self.config.local_domain
                            ),
                        );
                    }
                    if self.transaction.forward_paths.len() >= self.config.max_recipients {
                        return Reply::new(C::INSUFFICIENT_STORAGE, "too many recipients");
                    }
                    self.transaction.forward_paths.push(to.mailbox.to_string());
                    self.enter(State::RcptTo);
                    Reply::new(C::OK, format!("recipient <{}> OK", to.mailbox))
                }
                _ => Reply::new(C::BAD_SEQUENCE, "bad sequence of commands: send MAIL FROM first"),
            },
            Command::Data => match self.state {
                State::RcptTo => {
                    self.enter(State::Data);
                    self.transaction.at_line_start = true;
                    Reply::new(C::START_MAIL_INPUT, "end data with <CR><LF>.<CR><LF>")
                }
                // §3.3: DATA with no accepted recipient may get 503 or 554.
                State::MailFrom => Reply::new(C::TRANSACTION_FAILED, "no valid recipients"),
                _ => Reply::new(C::BAD_SEQUENCE, "bad sequence of commands: send MAIL FROM and RCPT TO first"),
            },
            Command::Rset => {
                self.transaction = Transaction::default();
                if self.state != State::Greeted {
                    self.enter(State::Ready);
                }
                Reply::new(C::OK, "OK")
            }
            Command::Noop => Reply::new(C::OK, "OK"),
            // §3.5.3: a server that will not say whether a mailbox exists answers 252.
            Command::Vrfy { .. } => {
                Reply::new(C::CANNOT_VRFY, "cannot VRFY user, but will accept message and attempt delivery")
            }
            Command::Help { topic } => Reply::multi(C::HELP_MESSAGE, help(topic)),
            Command::Quit => {
                self.enter(State::Quit);
                Reply::new(C::SERVICE_CLOSING, format!("{host} closing connection"))
            }
            Command::StartTls => match self.state {
                _ if self.tls.active => Reply::new(C::BAD_SEQUENCE, "5.5.1 TLS is already active"),
                _ if !self.config.starttls => Reply::new(C::NOT_IMPLEMENTED, "5.5.1 STARTTLS is not offered here"),
                State::Greeted => Reply::new(C::BAD_SEQUENCE, "5.5.1 send EHLO first"),
                State::MailFrom | State::RcptTo => {
                    Reply::new(C::BAD_SEQUENCE, "5.5.1 a transaction is open (RSET ends it)")
                }
                _ => {
                    self.tls.agree();
                    Reply::new(C::SERVICE_READY, "2.0.0 Ready to start TLS")
                }
            },
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial),
            Command::NotImplemented { verb } => {
                Reply::new(C::NOT_IMPLEMENTED, format!("{} not implemented in this lab", verb.to_ascii_uppercase()))
            }
            Command::Unknown { verb } => Reply::new(
                C::SYNTAX_ERROR,
                format!("unknown command {:?}", crate::wire::printable(verb.as_bytes(), 40)),
            ),
        }
    }

    /// AUTH (RFC 4954): only inside TLS, once, outside a transaction; PLAIN and LOGIN.
    fn auth(&mut self, mechanism: &str, initial: Option<&str>) -> Reply {
        use ReplyCode as C;
        if !self.tls.active {
            return Reply::new(C::ACCESS_REQUIRED, "5.7.0 Must issue a STARTTLS command first");
        }
        match self.state {
            State::Greeted | State::Quit => return Reply::new(C::BAD_SEQUENCE, "5.5.1 send EHLO first"),
            State::MailFrom | State::RcptTo | State::Data => {
                return Reply::new(C::BAD_SEQUENCE, "5.5.1 AUTH is not allowed during a mail transaction");
            }
            State::Ready => {}
        }
        if self.user.is_some() {
            return Reply::new(C::BAD_SEQUENCE, "5.5.1 already authenticated");
        }
        match (mechanism.to_ascii_uppercase().as_str(), initial) {
            ("PLAIN", Some(response)) => self.sasl_response(Sasl::Plain, response.as_bytes()),
            ("PLAIN", None) => {
                self.sasl = Some(Sasl::Plain);
                Reply::new(C::AUTH_CONTINUE, "")
            }
            ("LOGIN", Some(user)) => self.sasl_response(Sasl::LoginUser, user.as_bytes()),
            ("LOGIN", None) => {
                self.sasl = Some(Sasl::LoginUser);
                // base64 of "Username:", as LOGIN servers ask.
                Reply::new(C::AUTH_CONTINUE, "VXNlcm5hbWU6")
            }
            _ => Reply::new(C::PARAMETER_NOT_IMPLEMENTED, "5.5.4 unrecognized authentication mechanism (PLAIN, LOGIN)"),
        }
    }

    /// One SASL response line (base64, or `*` to cancel).
    fn sasl_response(&mut self, sasl: Sasl, line: &[u8]) -> Reply {
        use ReplyCode as C;
        let text = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")).unwrap_or(line);
        if text == b"*" {
            return Reply::new(C::SYNTAX_ERROR_IN_ARGUMENTS, "5.7.0 authentication cancelled");
        }
        // RFC 4954 §4: "=" is an empty initial response.
        let decoded = if text == b"=" { Ok(Vec::new()) } else { sasl_decode(text) };
        let Ok(decoded) = decoded else {
            return Reply::new(C::SYNTAX_ERROR_IN_ARGUMENTS, "5.5.2 cannot decode the response (not base64)");
        };
        let (user, password) = match sasl {
            Sasl::Plain => {
                // RFC 4616: [authzid] NUL authcid NUL passwd.
                let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
                match parts.as_slice() {
                    [authz, user, password] if authz.is_empty() || authz == user => {
                        (String::from_utf8_lossy(user).into_owned(), String::from_utf8_lossy(password).into_owned())
                    }
                    _ => return Reply::new(C::SYNTAX_ERROR_IN_ARGUMENTS, "5.5.2 PLAIN needs \\0user\\0password"),
                }
            }
            Sasl::LoginUser => {
                self.sasl = Some(Sasl::LoginPassword(String::from_utf8_lossy(&decoded).into_owned()));
                // base64 of "Password:".
                return Reply::new(C::AUTH_CONTINUE, "UGFzc3dvcmQ6");
            }
            Sasl::LoginPassword(user) => (user, String::from_utf8_lossy(&decoded).into_owned()),
        };
        match ACCOUNTS.iter().find(|a| a.user == user && a.password == password) {
            Some(account) => {
                self.user = Some(account.user.to_string());
                Reply::new(C::AUTH_SUCCEEDED, format!("2.7.0 authenticated as {}", account.user))
            }
            None => Reply::new(C::AUTH_FAILED, "5.7.8 authentication credentials invalid"),
        }
    }

    /// Checks one MAIL FROM parameter; the refusal, if it is refused.
    fn mail_param(&self, keyword: &str, value: Option<&str>) -> Option<Reply> {
        use ReplyCode as C;
        let max = self.config.max_message_size;
        match (keyword.to_ascii_uppercase().as_str(), value) {
            _ if !self.extended => Some(Reply::new(C::PARAMETERS_NOT_RECOGNIZED, "parameters need EHLO, not HELO")),
            // RFC 1870: the client says the size ahead, so a too-big message is refused before it is sent.
            ("SIZE", Some(v)) => match v.parse::<u64>() {
                Ok(n) if n > max as u64 => {
                    Some(Reply::new(C::EXCEEDED_STORAGE, format!("message size {n} exceeds the limit of {max}")))
                }
                Ok(_) => None,
                Err(_) => Some(Reply::new(C::SYNTAX_ERROR_IN_ARGUMENTS, "SIZE needs a number of octets")),
            },
            // RFC 6152: 8BITMIME is advertised, so both bodies are fine.
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => None,
            _ => Some(Reply::new(C::PARAMETERS_NOT_RECOGNIZED, format!("MAIL parameter {keyword} not recognized"))),
        }
    }

    /// A line of message text, in the Data state.
    fn text_line(&mut self, line: &[u8], now: SystemTime) -> Option<Reply> {
        let (body, end, _) = next_line(line).unwrap_or((line, LineEnd::Crlf, line.len()));
        if line.len() > MAX_TEXT_LINE {
            self.transaction.line_too_long = true;
            return None;
        }
        let t = &mut self.transaction;
        let starts_line = std::mem::replace(&mut t.at_line_start, end == LineEnd::Crlf);
        t.bare_line_end |= end == LineEnd::BareLf || body.contains(&b'\r');
        let kept = match end {
            LineEnd::Crlf if body == b"." && starts_line => return self.end_of_text(now),
            // §4.5.2: the client doubled a leading dot; take one away.
            LineEnd::Crlf => body.strip_prefix(b".").unwrap_or(body).len() + 2,
            // A bare LF does not end a line in SMTP: keep the bytes as they came.
            LineEnd::BareLf => line.len(),
        };
        if t.too_big || t.text.len() + kept > self.config.max_message_size {
            t.too_big = true;
            t.text = Vec::new();
            return None;
        }
        match end {
            LineEnd::Crlf if starts_line => {
                t.text.extend_from_slice(body.strip_prefix(b".").unwrap_or(body));
                t.text.extend_from_slice(b"\r\n");
            }
            // After a bare LF this is not the start of a line: no dot to undo.
            LineEnd::Crlf => {
                t.text.extend_from_slice(body);
                t.text.extend_from_slice(b"\r\n");
            }
            LineEnd::BareLf => t.text.extend_from_slice(line),
        }
        None
    }

    /// The `.` line: the text is complete. Deliver it, or say why not; either way the
    /// transaction ends (§4.1.1.4). With checks ([`Session::checked`]), no reply yet: the message waits
    /// in [`Session::take_finished`] for its judgement.
    fn end_of_text(&mut self, now: SystemTime) -> Option<Reply> {
        let t = std::mem::take(&mut self.transaction);
        self.enter(State::Ready);
        if let Some(refusal) = Self::refusal(&t, self.config.max_message_size) {
            return Some(refusal);
        }
        let finished = Finished {
            reverse_path: t.reverse_path,
            forward_paths: t.forward_paths,
            client_domain: self.client_domain.clone(),
            peer: self.peer,
            text: t.text,
        };
        if self.checked {
            self.finished = Some(finished);
            return None;
        }
        Some(self.deliver(finished, "", now))
    }

    /// A message whose text is complete and waits for the checks (once).
    pub fn take_finished(&mut self) -> Option<Finished> {
        self.finished.take()
    }

    /// The checks' judgement on `finished`: delivered (their header fields on top), or refused.
    pub fn judged(&mut self, finished: Finished, judgement: Judgement, now: SystemTime) -> Reply {
        match judgement {
            Judgement::Accept { header } => self.deliver(finished, &header, now),
            Judgement::Refuse(reply) => reply,
        }
    }

    /// Why a complete text is refused before anything else, if it is.
    fn refusal(t: &Transaction, max: usize) -> Option<Reply> {
        if t.line_too_long {
            return Some(Reply::new(
                ReplyCode::SYNTAX_ERROR,
                format!("line too long (text lines are at most {MAX_TEXT_LINE} octets)"),
            ));
        }
        if t.too_big {
            return Some(Reply::new(ReplyCode::EXCEEDED_STORAGE, format!("message exceeds the limit of {max} octets")));
        }
        if t.bare_line_end {
            // A line may end only in CR LF (§2.3.8); a server that took a bare LF as a line end
            // could be made to end the text early and run the rest as commands.
            return Some(Reply::new(
                ReplyCode::TRANSACTION_FAILED,
                "message refused: a bare LF or CR in the text (only CR LF ends a line)",
            ));
        }
        None
    }

    /// Keeps `t` in the mailbox under a `Received:` line (and `extra` header fields), and says so.
    fn deliver(&mut self, t: Finished, extra: &str, now: SystemTime) -> Reply {
        let id = self.mailbox.next_id();
        let unix = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        // §4.4: the server adds a trace line on top of every message it accepts.
        let for_rcpt = match t.forward_paths.as_slice() {
            [one] => format!("\r\n\tfor <{one}>"),
            _ => String::new(),
        };
        let received = format!(
            "Received: from {} ([{}])\r\n\tby {} with {} id {id}{for_rcpt};\r\n\t{}\r\n",
            t.client_domain,
            t.peer.ip(),
            self.config.hostname,
            if self.extended { "ESMTP" } else { "SMTP" },
            rfc5322_date(unix)
        );
        let mut content = received.into_bytes();
        content.extend_from_slice(extra.as_bytes());
        content.extend_from_slice(&t.text);
        self.mailbox.deliver(Mail {
            id: id.clone(),
            reverse_path: t.reverse_path,
            forward_paths: t.forward_paths,
            client_domain: t.client_domain,
            peer: t.peer,
            received: now,
            content,
        });
        Reply::new(ReplyCode::OK, format!("OK queued as {id}"))
    }
}

/// HELP's lines (§4.1.1.8).
fn help(topic: Option<&str>) -> Vec<String> {
    let about = |t: &str| -> Option<&'static str> {
        Some(match t.to_ascii_uppercase().as_str() {
            "EHLO" => "EHLO <domain>: say who you are and list the extensions",
            "HELO" => "HELO <domain>: say who you are (no extensions)",
            "MAIL" => "MAIL FROM:<sender> [SIZE=n]: start a message",
            "RCPT" => "RCPT TO:<recipient>: add a recipient (@protolab.test only)",
            "DATA" => "DATA: send the text, end with a line holding a single '.'",
            "RSET" => "RSET: forget the message in progress",
            "NOOP" => "NOOP: do nothing, get a 250",
            "VRFY" => "VRFY <name>: ask about a mailbox (answered with 252)",
            "QUIT" => "QUIT: end the session",
            _ => return None,
        })
    };
    match topic.and_then(about) {
        Some(line) => vec![line.into(), "end of HELP".into()],
        None => vec![
            "protolab lab server, RFC 5321".into(),
            "commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT".into(),
            "HELP <command> says more".into(),
            "end of HELP".into(),
        ],
    }
}

/// Serves one client on `io` until QUIT (then `Ok`), or until it vanishes or idles (an error
/// saying which).
pub async fn serve(io: Stream, peer: SocketAddr, config: Arc<Config>, mailbox: Mailbox) -> Result<()> {
    serve_checked(io, peer, config, mailbox, None).await
}

/// What judges each finished message before the server replies to its text (the mail lab's
/// SPF, DKIM and DMARC).
pub type Checks =
    Arc<dyn Fn(Finished) -> std::pin::Pin<Box<dyn std::future::Future<Output = Judgement> + Send>> + Send + Sync>;

/// [`serve`], with `checks` (if any) judging each finished message before the server replies to
/// its text.
pub async fn serve_checked(
    io: Stream,
    peer: SocketAddr,
    config: Arc<Config>,
    mailbox: Mailbox,
    checks: Option<Checks>,
) -> Result<()> {
    let mut session = Session::new(config.clone(), mailbox, peer);
    if checks.is_some() {
        session = session.checked();
    }
    let mut conn = ServerLines::new(io, config.idle_timeout);
    if config.implicit_tls {
        conn.start_tls().await?;
    }
    conn.send(&session.greeting().emit()).await?;
    while session.state() != State::Quit {
        let input = match conn.next(session.line_limit()).await {
            Ok(input) => input,
            Err(ReadError::Closed) => {
                let state = session.state();
                return Err(eyre!(en(
                    "the client closed the connection without QUIT (in state {state})",
                    &[("state", &state)]
                )));
            }
            Err(ReadError::Io(e)) => {
                let state = session.state();
                return Err(eyre!(en(
                    "reading from the client (in state {state}): {error}",
                    &[("state", &state), ("error", &e)]
                )));
            }
            Err(ReadError::Idle) => {
                let secs = config.idle_timeout.as_secs_f64();
                let bye = Reply::new(
                    ReplyCode::SERVICE_NOT_AVAILABLE,
                    format!("{} idle for {secs} s, closing connection", config.hostname),
                );
                let _ = conn.send(&bye.emit()).await;
                let _ = conn.io.shutdown().await;
                let state = session.state();
                return Err(eyre!(en(
                    "the client sent nothing for {secs} s (in state {state}); closed with 421",
                    &[("secs", &secs), ("state", &state)]
                )));
            }
        };
        let mut reply = match input {
            Input::Line(line) => session.input(&line, SystemTime::now()),
            Input::TooLong(octets) => session.too_long(octets),
        };
        if let (Some(finished), Some(checks)) = (session.take_finished(), &checks) {
            let judgement = checks(finished.clone()).await;
            reply = Some(session.judged(finished, judgement, SystemTime::now()));
        }
        if let Some(reply) = reply {
            conn.send(&reply.emit()).await?;
        }
        if session.take_starting_tls() {
            conn.start_tls().await?;
            session.tls_started();
        }
    }
    conn.close().await
}

/// Base64 of a SASL response, strictly: the alphabet and padding of RFC 4648 §4.
pub fn sasl_decode(text: &[u8]) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let config = Config { max_message_size: 100, max_recipients: 2, ..Config::default() };
        Session::new(Arc::new(config), Mailbox::default(), "127.0.0.1:4000".parse().unwrap())
    }

    /// Feeds lines; returns each reply's code (0 for none).
    fn codes(s: &mut Session, lines: &[&str]) -> Vec<u16> {
        lines
            .iter()
            .map(|l| s.input(format!("{l}\r\n").as_bytes(), UNIX_EPOCH).map(|r| r.code.0).unwrap_or(0))
            .collect()
    }

    /// Found by the fuzzer: a RCPT whose "address" is 472 octets of spaces and a dot. The 501
    /// repeated it and was 521 octets long, past the 512 a reply line may have (RFC 5321
    /// §4.5.3.1.5), so our own client could not read it. Likewise a long EHLO domain.
    #[test]
    fn a_reply_that_repeats_a_long_argument_stays_within_512_octets() {
        let rcpt = format!("RCPT TO:<postmaster{}.{}>\r\n", " ".repeat(231), " ".repeat(240));
        let ehlo = format!("EHLO {}\r\n", "d".repeat(MAX_COMMAND_LINE - 7));
        let mut s = session();
        codes(&mut s, &["EHLO x", "MAIL FROM:<>"]);
        for line in [rcpt, ehlo] {
            assert!(line.len() <= MAX_COMMAND_LINE);
            let reply = s.input(line.as_bytes(), UNIX_EPOCH).unwrap();
            let bytes = reply.emit();
            assert_eq!(Reply::parse(&bytes), Ok((reply.clone(), bytes.len())), "{reply}");
        }
    }

    #[test]
    fn only_crlf_dot_crlf_ends_the_text_and_a_bare_lf_refuses_it() {
        let mut s = session();
        codes(&mut s, &["EHLO x", "MAIL FROM:<a@b.c>", "RCPT TO:<bob@protolab.test>", "DATA"]);
        // The smuggling attempt: LF . CR LF, then commands of a second, forged message.
        for line in ["Subject: hi\r\n", "body\n", ".\r\n", "MAIL FROM:<forged@bank.example>\r\n", "QUIT\r\n"] {
            assert_eq!(s.input(line.as_bytes(), UNIX_EPOCH), None, "{line:?} is text, not a command");
        }
        assert_eq!(s.state(), State::Data);
        let reply = s.input(b".\r\n", UNIX_EPOCH).expect("CR LF . CR LF ends the text");
        assert_eq!(reply.code.0, 554, "{reply}");
        assert_eq!(s.state(), State::Ready);
        assert!(s.mailbox.is_empty(), "nothing queued");
        // A bare CR is refused the same way; a clean text right after is accepted.
        codes(&mut s, &["MAIL FROM:<a@b.c>", "RCPT TO:<bob@protolab.test>", "DATA"]);
        assert_eq!(codes(&mut s, &["a\rb", "."]), [0, 554]);
        assert_eq!(
            codes(&mut s, &["MAIL FROM:<a@b.c>", "RCPT TO:<bob@protolab.test>", "DATA", "ok", "."]),
            [250, 250, 354, 0, 250]
        );
        assert_eq!(s.mailbox.len(), 1);
    }

    #[test]
    fn a_whole_transaction_lands_in_the_mailbox() {
        let mut s = session();
        assert_eq!(s.greeting().emit(), b"220 protolab.test ESMTP protolab lab server\r\n");
        let ehlo = s.input(b"EHLO client.lab\r\n", UNIX_EPOCH).unwrap();
        assert_eq!(
            ehlo.lines,
            ["protolab.test greets client.lab", "SIZE 100", "8BITMIME", "PIPELINING", "STARTTLS", "HELP"]
        );
        let got = codes(
            &mut s,
            &[
                "MAIL FROM:<alice@client.lab> SIZE=20",
                "RCPT TO:<bob@protolab.test>",
                "DATA",
                "Subject: Hi",
                "",
                "..dot",
                ".",
            ],
        );
        assert_eq!(got, [250, 250, 354, 0, 0, 0, 250]);
        let mail = s.mailbox.latest().unwrap();
        assert_eq!(mail.reverse_path, "alice@client.lab");
        assert_eq!(mail.forward_paths, ["bob@protolab.test"]);
        assert!(mail.content.ends_with(b"Subject: Hi\r\n\r\n.dot\r\n"), "{:?}", String::from_utf8_lossy(&mail.content));
        assert!(
            mail.content
                .starts_with(b"Received: from client.lab ([127.0.0.1])\r\n\tby protolab.test with ESMTP id 00000001")
        );
        assert_eq!(mail.header("Subject").as_deref(), Some("Hi"));
        assert_eq!(codes(&mut s, &["QUIT"]), [221]);
        use State::*;
        let states: Vec<_> = s.transitions().map(|t| t.1).collect();
        assert_eq!(states, [Ready, MailFrom, RcptTo, Data, Ready, Quit]);
    }

    #[test]
    fn commands_out_of_order_get_503() {
        let mut s = session();
        assert_eq!(codes(&mut s, &["MAIL FROM:<a@b.c>", "RCPT TO:<bob@protolab.test>", "DATA"]), [503, 503, 503]);
        assert_eq!(
            codes(&mut s, &["HELO x", "DATA", "MAIL FROM:<a@b.c>", "MAIL FROM:<a@b.c>", "DATA"]),
            [250, 503, 250, 503, 554]
        );
        assert_eq!(codes(&mut s, &["RSET", "RCPT TO:<bob@protolab.test>"]), [250, 503]);
        assert_eq!(s.state(), State::Ready);
    }

    #[test]
    fn errors_where_they_belong() {
        let mut s = session();
        let got = codes(
            &mut s,
            &[
                "GARBAGE",
                "EHLO",
                "STARTTLS",
                "EHLO client.lab",
                "MAIL FROM:<a@b.c> SIZE=1000",
                "MAIL FROM:<a@b.c> SMTPUTF8",
                "MAIL FROM:<a@b.c> SIZE=ten",
                "MAIL FROM:<a@b.c>",
                "RCPT TO:<x@elsewhere.example>",
                "RCPT TO:<bob>",
                "RCPT TO:<bob@protolab.test> NOTIFY=NEVER",
                "RCPT TO:<Postmaster>",
                "RCPT TO:<bob@PROTOLAB.test>",
                "RCPT TO:<carol@protolab.test>",
                "VRFY bob",
                "NOOP",
                "HELP",
            ],
        );
        assert_eq!(got, [500, 501, 503, 250, 552, 555, 501, 250, 550, 501, 555, 250, 250, 452, 252, 250, 214]);
        let long = format!("NOOP {}\r\n", "x".repeat(600));
        assert_eq!(s.input(long.as_bytes(), UNIX_EPOCH).unwrap().code, ReplyCode::SYNTAX_ERROR);
        assert_eq!(s.input(b"NOOP\n", UNIX_EPOCH).unwrap().code, ReplyCode::SYNTAX_ERROR);
    }

    #[test]
    fn submission_wants_tls_then_auth_then_mail() {
        let config = Config { submission: true, ..Config::default() };
        let mut s = Session::new(Arc::new(config), Mailbox::default(), "127.0.0.1:4000".parse().unwrap());
        // In the clear: AUTH and MAIL are refused with 530; STARTTLS is agreed.
        assert_eq!(codes(&mut s, &["EHLO c", "AUTH PLAIN AGFsaWNlAGxhYg==", "MAIL FROM:<a@b.c>"]), [250, 530, 530]);
        assert!(!s.take_starting_tls());
        assert_eq!(codes(&mut s, &["STARTTLS"]), [220]);
        assert!(s.take_starting_tls() && !s.take_starting_tls());
        s.tls_started();
        // Inside TLS the session starts over: EHLO first, STARTTLS no more, AUTH offered.
        assert_eq!(codes(&mut s, &["AUTH PLAIN AGFsaWNlAGxhYg=="]), [503]);
        let ehlo = s.input(b"EHLO c\r\n", UNIX_EPOCH).unwrap();
        assert!(ehlo.lines.contains(&"AUTH PLAIN LOGIN".into()) && !ehlo.lines.contains(&"STARTTLS".into()));
        assert_eq!(codes(&mut s, &["STARTTLS", "MAIL FROM:<a@b.c>", "AUTH CRAM-MD5"]), [503, 530, 504]);
        // A wrong password, an undecodable response, a cancelled LOGIN, then LOGIN for real.
        assert_eq!(codes(&mut s, &["AUTH PLAIN AGFsaWNlAHdyb25n", "AUTH PLAIN !!!"]), [535, 501]);
        assert_eq!(codes(&mut s, &["AUTH LOGIN", "*"]), [334, 501]);
        let user = s.input(b"AUTH LOGIN\r\n", UNIX_EPOCH).unwrap();
        assert_eq!((user.code.0, user.text()), (334, "VXNlcm5hbWU6"));
        assert_eq!(codes(&mut s, &["YWxpY2U=", "bGFi"]), [334, 235]);
        assert_eq!(s.user(), Some("alice"));
        assert_eq!(codes(&mut s, &["AUTH PLAIN AGFsaWNlAGxhYg==", "MAIL FROM:<alice@client.lab>"]), [503, 250]);
    }

    #[test]
    fn too_big_and_too_long_texts_are_refused_after_the_dot() {
        let mut s = session();
        codes(&mut s, &["EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<bob@protolab.test>", "DATA"]);
        let line = "y".repeat(60);
        assert_eq!(codes(&mut s, &[&line, &line, "."]), [0, 0, 552]);
        codes(&mut s, &["MAIL FROM:<a@b.c>", "RCPT TO:<bob@protolab.test>", "DATA"]);
        assert_eq!(s.too_long(2000), None);
        assert_eq!(codes(&mut s, &["."]), [500]);
        assert!(s.mailbox.is_empty());
        assert_eq!(s.state(), State::Ready);
    }
}
