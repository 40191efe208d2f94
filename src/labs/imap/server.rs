//! The IMAP lab server's session, sans-IO: RFC 9051's states named (not authenticated,
//! authenticated, selected, logout), tagged commands in, untagged data and a tagged completion
//! out, over the mailbox the SMTP lab fills. Mail stays on the server: FETCH reads it (setting
//! `\Seen` unless it PEEKs), STORE changes flags, COPY and MOVE file it in folders, EXPUNGE
//! removes what is marked `\Deleted`. A client in IDLE is told of every change another client
//! makes (`* n EXISTS`, `* n FETCH (FLAGS ...)`, `* n EXPUNGE`) as it happens.
//!
//! ```text
//!  greeting ─LOGIN / AUTHENTICATE─▶ authenticated ─SELECT / EXAMINE─▶ selected
//!                                         ▲                    │  ▲ SELECT
//!                                         └──── CLOSE ─────────┘──┘
//!  any state ─LOGOUT─▶ logout (* BYE, the tagged OK, then the server closes)
//! ```

use super::wire::{
    Command, CommandError, MAX_COMMAND_LITERAL, MAX_LINE, Scan, SequenceSet, StoreMode, astring, parse_command, scan,
};
use crate::labs::smtp::mailbox::{ACCOUNTS, Account, FolderView, Kept, Listed, Mailbox, canonical, flag};
use crate::labs::smtp::message::{header_end, header_fields};
use crate::locale::en;
use crate::net::Stream;
use crate::net::lines::close;
use base64::Engine;
use color_eyre::eyre::{Result, eyre};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the server waits for a client that says nothing: RFC 9051 §5.4 asks for at least 30
/// minutes (a client in IDLE says DONE and IDLE again within 29).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The most one answer may hold (a FETCH of many whole messages): past it, the rest is refused.
pub const MAX_ANSWER: usize = 32 * 1024 * 1024;

/// RFC 9051's connection states (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    NotAuthenticated,
    Authenticated,
    Selected,
    Logout,
}

impl State {
    /// As RFC 9051 §3 names it.
    pub fn name(self) -> &'static str {
        match self {
            State::NotAuthenticated => "not authenticated",
            State::Authenticated => "authenticated",
            State::Selected => "selected",
            State::Logout => "logout",
        }
    }
}

/// What the server says in CAPABILITY and in its greeting, besides what TLS changes.
pub const CAPABILITIES: &str = "IMAP4rev2 IMAP4rev1 IDLE MOVE ENABLE";

/// The folder a client selected, as it last told the client: the UID of each message number,
/// and the flags it last reported for it.
#[derive(Debug, Clone)]
struct Selected {
    name: String,
    read_only: bool,
    uids: Vec<u32>,
    flags: Vec<u8>,
}

/// The answer to one input: bytes to send, and whether the server then closes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub close: bool,
}

impl Output {
    fn line(&mut self, line: impl AsRef<str>) {
        // The client's words may hold a CR or LF (a literal): never a line break of ours.
        let line = line.as_ref().replace(['\r', '\n'], " ");
        self.bytes.extend_from_slice(line.as_bytes());
        // A line ending in `}` reads as a literal's announcement: a text that echoes the
        // client's words (a folder named `x{9}`) must never end so.
        if line.ends_with('}') {
            self.bytes.push(b'.');
        }
        self.bytes.extend_from_slice(b"\r\n");
    }
}

/// What the session waits for besides a command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    /// The client's SASL response to AUTHENTICATE (tag).
    Sasl(String),
    /// DONE, ending IDLE (tag).
    Done(String),
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    mailbox: Mailbox,
    state: State,
    account: Option<Account>,
    selected: Option<Selected>,
    waiting: Option<Waiting>,
    /// The client ENABLEd IMAP4rev2: SEARCH answers with ESEARCH.
    rev2: bool,
    /// TLS on this connection: active, required before a login, being started.
    tls: crate::tls::ServerTls,
}

impl Session {
    pub fn new(mailbox: Mailbox) -> Session {
        Session {
            mailbox,
            state: State::NotAuthenticated,
            account: None,
            selected: None,
            waiting: None,
            rev2: false,
            tls: crate::tls::ServerTls::default(),
        }
    }

    /// A session on a connection that uses TLS as `mode` says: inside it from the start (993),
    /// or with STARTTLS required before a login (the STARTTLS story).
    pub fn with_tls(mut self, mode: crate::tls::Mode) -> Session {
        self.tls = crate::tls::ServerTls::new(mode);
        self
    }

    /// TLS on this connection: the socket loop starts the handshake when the session agreed.
    pub fn tls(&mut self) -> &mut crate::tls::ServerTls {
        &mut self.tls
    }

    /// The capabilities now (RFC 9051 §6.2.1, §7.2.2): STARTTLS only in the clear; a login only
    /// where a password would be sealed, when TLS is required (LOGINDISABLED before it).
    pub fn capabilities(&self) -> String {
        let mut out = CAPABILITIES.to_string();
        if !self.tls.active {
            out.push_str(" STARTTLS");
        }
        if self.tls.refuses_login() {
            out.push_str(" LOGINDISABLED");
        } else {
            out.push_str(" AUTH=PLAIN");
        }
        out
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the next line is not a command but an answer to a `+` (SASL) or DONE (IDLE).
    pub fn continuing(&self) -> bool {
        self.waiting.is_some()
    }

    /// In IDLE: the server tells the client of every change as it happens.
    pub fn idling(&self) -> bool {
        matches!(self.waiting, Some(Waiting::Done(_)))
    }

    pub fn greeting(&self) -> Output {
        let mut out = Output::default();
        let caps = self.capabilities();
        out.line(format!("* OK [CAPABILITY {caps}] protolab IMAP server ready (accounts: bob / lab)"));
        out
    }

    /// The answer to a whole command (from [`super::wire::scan`]), or to the line a `+` asked for.
    pub fn input(&mut self, bytes: &[u8]) -> Output {
        match self.waiting.take() {
            Some(Waiting::Sasl(tag)) => return self.sasl(&tag, bytes),
            Some(Waiting::Done(tag)) => {
                let mut out = Output::default();
                if bytes.eq_ignore_ascii_case(b"DONE\r\n") {
                    out.line(format!("{tag} OK IDLE terminated"));
                } else {
                    out.line(format!("{tag} BAD expected DONE to end IDLE"));
                }
                return out;
            }
            None => {}
        }
        let mut out = Output::default();
        let tagged = match parse_command(bytes) {
            Ok(tagged) => tagged,
            Err(e) => {
                out.line(format!("* BAD {e}"));
                return out;
            }
        };
        let tag = tagged.tag;
        match tagged.command {
            Ok(command) => self.command(&tag, command, &mut out),
            Err(e @ CommandError::Unknown(_)) => out.line(format!("{tag} BAD {e}")),
            Err(e) => out.line(format!("{tag} BAD {e}")),
        }
        out
    }

    /// A command too long to read, or with a literal over the cap: BAD, and for a literal the
    /// client may already be sending, the connection ends.
    pub fn refuse(&mut self, bytes: &[u8], why: &str, close: bool) -> Output {
        let mut out = Output::default();
        let tag = bytes.split(|&b| b == b' ').next().filter(|t| super::wire::is_tag(t));
        let tag = tag.map_or("*".to_string(), |t| String::from_utf8_lossy(t).into_owned());
        if close {
            out.line(format!("* BYE {why}"));
            self.state = State::Logout;
        }
        out.line(format!("{tag} BAD {why}"));
        out.close = close;
        out
    }

    fn command(&mut self, tag: &str, command: Command, out: &mut Output) {
        use State::*;
        let verb = command.verb();
        match (self.state, command) {
            (_, Command::Capability) => {
                out.line(format!("* CAPABILITY {}", self.capabilities()));
                out.line(format!("{tag} OK CAPABILITY completed"));
            }
            (_, Command::Noop) => {
                self.updates(out);
                out.line(format!("{tag} OK NOOP completed"));
            }
            (_, Command::Logout) => {
                out.line("* BYE protolab IMAP server logging out");
                out.line(format!("{tag} OK LOGOUT completed"));
                self.state = Logout;
                out.close = true;
            }
            (NotAuthenticated, Command::StartTls) if self.tls.active => {
                out.line(format!("{tag} BAD TLS is already active"));
            }
            (NotAuthenticated, Command::StartTls) => {
                self.tls.agree();
                out.line(format!("{tag} OK begin TLS negotiation now"));
            }
            (NotAuthenticated, Command::Login { .. } | Command::Authenticate { .. }) if self.tls.refuses_login() => {
                out.line(format!(
                    "{tag} NO [PRIVACYREQUIRED] STARTTLS first: a password in the clear can be read on the way"
                ));
            }
            (NotAuthenticated, Command::Login { user, password }) => self.login(tag, &user, &password, out),
            (NotAuthenticated, Command::Authenticate { mechanism, initial }) => {
                if mechanism != "PLAIN" {
                    out.line(format!("{tag} NO [CANNOT] only AUTHENTICATE PLAIN here"));
                } else if let Some(initial) = initial {
                    *out = self.sasl(tag, format!("{initial}\r\n").as_bytes());
                } else {
                    out.line("+ ");
                    self.waiting = Some(Waiting::Sasl(tag.to_string()));
                }
            }
            (NotAuthenticated, _) => {
                out.line(format!("{tag} BAD {verb} only after logging in (LOGIN or AUTHENTICATE)"));
            }
            (_, Command::Login { .. } | Command::Authenticate { .. }) => {
                out.line(format!("{tag} BAD already logged in"));
            }
            (_, Command::StartTls) => out.line(format!("{tag} BAD STARTTLS only before logging in")),
            (_, Command::Enable(what)) => {
                self.rev2 |= what.iter().any(|w| w.eq_ignore_ascii_case("IMAP4rev2"));
                if self.rev2 {
                    out.line("* ENABLED IMAP4rev2");
                }
                out.line(format!("{tag} OK ENABLE completed"));
            }
            (_, Command::List { reference, pattern }) => {
                for name in self.mailbox.folders() {
                    if matches(&format!("{reference}{pattern}"), &name) {
                        out.line(format!("* LIST () \"/\" {}", astring(&name)));
                    }
                }
                out.line(format!("{tag} OK LIST completed"));
            }
            (_, Command::Create(name)) => {
                if name.is_empty() || name.contains(['*', '%', '/']) {
                    out.line(format!("{tag} BAD a folder name without / * or %"));
                } else if self.mailbox.create(&name) {
                    out.line(format!("{tag} OK CREATE completed"));
                } else {
                    out.line(format!("{tag} NO [ALREADYEXISTS] {name} exists"));
                }
            }
            (_, Command::Status { mailbox, items }) => match self.view(&mailbox) {
                Some(view) => {
                    let mut parts = Vec::new();
                    for item in items.iter().map(|i| i.to_ascii_uppercase()) {
                        let n = match item.as_str() {
                            "MESSAGES" => view.messages.len() as u32,
                            "UIDNEXT" => view.uid_next,
                            "UIDVALIDITY" => view.uid_validity,
                            "UNSEEN" => view.messages.iter().filter(|k| k.flags & flag::SEEN == 0).count() as u32,
                            _ => continue,
                        };
                        parts.push(format!("{item} {n}"));
                    }
                    out.line(format!("* STATUS {} ({})", astring(&mailbox), parts.join(" ")));
                    out.line(format!("{tag} OK STATUS completed"));
                }
                None => out.line(format!("{tag} NO [NONEXISTENT] no folder {mailbox}")),
            },
            (_, Command::Select { mailbox, read_only }) => self.select(tag, &mailbox, read_only, out),
            (Authenticated, _) => out.line(format!("{tag} BAD {verb} only with a folder selected (SELECT)")),
            (Selected, Command::Close) => {
                if !self.read_only() {
                    let folder = self.folder();
                    self.mailbox.expunge(&folder, None);
                }
                self.selected = None;
                self.state = Authenticated;
                out.line(format!("{tag} OK CLOSE completed"));
            }
            (Selected, Command::Idle) => {
                out.line("+ idling");
                self.updates(out);
                self.waiting = Some(Waiting::Done(tag.to_string()));
            }
            (Selected, Command::Fetch { set, items, uid }) => self.fetch(tag, &set, &items, uid, out),
            (Selected, Command::Store { set, mode, silent, flags, uid }) => {
                self.store(tag, &set, mode, silent, &flags, uid, out)
            }
            (Selected, Command::Search { criteria, uid }) => self.search(tag, &criteria, uid, out),
            (Selected, Command::Copy { set, mailbox, uid, remove }) => self.copy(tag, &set, &mailbox, uid, remove, out),
            (Selected, Command::Expunge) => {
                if self.read_only() {
                    out.line(format!("{tag} NO [READ-ONLY] the folder was EXAMINEd"));
                    return;
                }
                let folder = self.folder();
                self.mailbox.expunge(&folder, None);
                self.updates(out);
                out.line(format!("{tag} OK EXPUNGE completed"));
            }
            (Logout, _) => out.line(format!("{tag} BAD logging out")),
        }
    }

    /// The selected folder's name (empty when none is).
    fn folder(&self) -> String {
        self.selected.as_ref().map(|s| s.name.clone()).unwrap_or_default()
    }

    fn read_only(&self) -> bool {
        self.selected.as_ref().is_some_and(|s| s.read_only)
    }

    fn address(&self) -> &'static str {
        self.account.map_or("", |a| a.address)
    }

    fn view(&self, name: &str) -> Option<FolderView> {
        self.mailbox.view(name, self.address())
    }

    fn login(&mut self, tag: &str, user: &str, password: &str, out: &mut Output) {
        match ACCOUNTS.iter().find(|a| a.user == user && a.password == password) {
            Some(account) => {
                self.account = Some(*account);
                self.state = State::Authenticated;
                out.line(format!("{tag} OK [CAPABILITY {}] logged in as {user}", self.capabilities()));
            }
            None => out.line(format!("{tag} NO [AUTHENTICATIONFAILED] wrong user name or password")),
        }
    }

    /// The SASL PLAIN response (RFC 4616): base64 of `authzid NUL user NUL password`.
    fn sasl(&mut self, tag: &str, line: &[u8]) -> Output {
        let mut out = Output::default();
        let text = line.strip_suffix(b"\r\n").unwrap_or(line);
        if text == b"*" {
            out.line(format!("{tag} BAD AUTHENTICATE cancelled"));
            return out;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(text).ok();
        let parts: Option<Vec<String>> = decoded.and_then(|d| {
            let parts: Vec<&[u8]> = d.split(|&b| b == 0).collect();
            (parts.len() == 3).then(|| parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect())
        });
        match parts {
            Some(p) => self.login(tag, &p[1], &p[2], &mut out),
            None => out.line(format!("{tag} BAD not base64 of authzid NUL user NUL password")),
        }
        out
    }

    fn select(&mut self, tag: &str, name: &str, read_only: bool, out: &mut Output) {
        let Some(view) = self.view(name) else {
            // A failed SELECT leaves no folder selected (§6.3.2).
            self.selected = None;
            self.state = State::Authenticated;
            out.line(format!("{tag} NO [NONEXISTENT] no folder {name}"));
            return;
        };
        let names: Vec<&str> = flag::NAMES.iter().map(|(_, n)| *n).collect();
        out.line(format!("* {} EXISTS", view.messages.len()));
        if !self.rev2 {
            out.line("* 0 RECENT");
        }
        out.line(format!("* FLAGS ({})", names.join(" ")));
        out.line(format!("* OK [PERMANENTFLAGS ({})] flags stay", names.join(" ")));
        out.line(format!("* OK [UIDVALIDITY {}] UIDs valid", view.uid_validity));
        out.line(format!("* OK [UIDNEXT {}] next UID", view.uid_next));
        out.line(format!("* LIST () \"/\" {}", astring(&canonical(name))));
        let access = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        out.line(format!("{tag} OK [{access}] {verb} completed"));
        self.selected = Some(Selected {
            name: canonical(name),
            read_only,
            uids: view.messages.iter().map(|k| k.uid).collect(),
            flags: view.messages.iter().map(|k| k.flags).collect(),
        });
        self.state = State::Selected;
    }

    /// What changed in the selected folder since the client was last told: messages gone
    /// (`EXPUNGE`, highest number first so the others keep theirs), flags changed (`FETCH`),
    /// messages new (`EXISTS`).
    pub fn updates(&mut self, out: &mut Output) {
        let Some(sel) = &self.selected else { return };
        let Some(view) = self.mailbox.view(&sel.name, self.address()) else { return };
        let sel = self.selected.as_mut().expect("checked");
        for i in (0..sel.uids.len()).rev() {
            if !view.messages.iter().any(|k| k.uid == sel.uids[i]) {
                out.line(format!("* {} EXPUNGE", i + 1));
                sel.uids.remove(i);
                sel.flags.remove(i);
            }
        }
        for (i, uid) in sel.uids.iter().enumerate() {
            let now = view.messages.iter().find(|k| k.uid == *uid).map_or(0, |k| k.flags);
            if now != sel.flags[i] {
                out.line(format!("* {} FETCH (UID {uid} FLAGS {})", i + 1, flag::list(now)));
                sel.flags[i] = now;
            }
        }
        let known = sel.uids.last().copied().unwrap_or(0);
        let new: Vec<&Listed> = view.messages.iter().filter(|k| k.uid > known).collect();
        if !new.is_empty() {
            sel.uids.extend(new.iter().map(|k| k.uid));
            sel.flags.extend(new.iter().map(|k| k.flags));
            out.line(format!("* {} EXISTS", sel.uids.len()));
        }
    }

    /// The messages of a set, as (message number, UID), in order; `Err` for a set that does
    /// not read.
    fn resolve(&self, set: &str, uid: bool) -> Result<Vec<(u32, u32)>, String> {
        let sel = self.selected.as_ref().expect("selected");
        let largest = if uid { sel.uids.last().copied().unwrap_or(0) } else { sel.uids.len() as u32 };
        let parsed = SequenceSet::parse(set, largest.max(1)).ok_or_else(|| format!("{set:?} is not a message set"))?;
        let mut out = Vec::new();
        for (i, &u) in sel.uids.iter().enumerate() {
            let n = i as u32 + 1;
            if parsed.contains(if uid { u } else { n }) {
                out.push((n, u));
            }
        }
        if !uid && parsed.0.iter().any(|&(_, b)| b > largest) {
            return Err(format!("no message {set} (the folder has {largest})"));
        }
        Ok(out)
    }

    fn kept(&self, uid: u32) -> Option<Kept> {
        let sel = self.selected.as_ref()?;
        self.mailbox.get(&sel.name, uid)
    }

    fn fetch(&mut self, tag: &str, set: &str, items: &[String], uid: bool, out: &mut Output) {
        let messages = match self.resolve(set, uid) {
            Ok(m) => m,
            Err(why) => return out.line(format!("{tag} BAD {why}")),
        };
        let mut items: Vec<String> = items
            .iter()
            .flat_map(|i| match i.to_ascii_uppercase().as_str() {
                "FAST" => vec!["FLAGS".into(), "INTERNALDATE".into(), "RFC822.SIZE".into()],
                "ALL" => vec!["FLAGS".into(), "INTERNALDATE".into(), "RFC822.SIZE".into(), "ENVELOPE".into()],
                "FULL" => {
                    vec!["FLAGS".into(), "INTERNALDATE".into(), "RFC822.SIZE".into(), "ENVELOPE".into(), "BODY".into()]
                }
                _ => vec![i.clone()],
            })
            .collect();
        if uid && !items.iter().any(|i| i.eq_ignore_ascii_case("UID")) {
            items.insert(0, "UID".into());
        }
        for (n, u) in messages {
            if out.bytes.len() > MAX_ANSWER {
                // RFC 5530's LIMIT: the answer is bounded; the client asks for fewer at a time.
                return out.line(format!("{tag} NO [LIMIT] over {MAX_ANSWER} octets: fetch fewer messages at a time"));
            }
            let Some(kept) = self.kept(u) else { continue };
            let mut parts: Vec<u8> = Vec::new();
            let mut seen = false;
            for item in &items {
                if !parts.is_empty() {
                    parts.push(b' ');
                }
                match fetch_item(item, &kept, &mut seen) {
                    Some(bytes) => parts.extend(bytes),
                    None => return out.line(format!("{tag} BAD no FETCH item {item}")),
                }
            }
            if seen && kept.flags & flag::SEEN == 0 && !self.read_only() {
                let folder = kept.folder.clone();
                self.mailbox.set_flags(&folder, &[u], |f| f | flag::SEEN);
                if !items.iter().any(|i| i.eq_ignore_ascii_case("FLAGS")) {
                    parts.extend(format!(" FLAGS {}", flag::list(kept.flags | flag::SEEN)).as_bytes());
                }
                self.remember(u, kept.flags | flag::SEEN);
            }
            out.bytes.extend(format!("* {n} FETCH (").as_bytes());
            out.bytes.extend(parts);
            out.bytes.extend(b")\r\n");
        }
        out.line(format!("{tag} OK FETCH completed"));
    }

    /// The client now knows these flags of this message.
    fn remember(&mut self, uid: u32, flags: u8) {
        if let Some(sel) = self.selected.as_mut()
            && let Some(i) = sel.uids.iter().position(|&u| u == uid)
        {
            sel.flags[i] = flags;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        tag: &str,
        set: &str,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
        uid: bool,
        out: &mut Output,
    ) {
        if self.read_only() {
            return out.line(format!("{tag} NO [READ-ONLY] the folder was EXAMINEd"));
        }
        let messages = match self.resolve(set, uid) {
            Ok(m) => m,
            Err(why) => return out.line(format!("{tag} BAD {why}")),
        };
        let mut bits = 0u8;
        for f in flags {
            match flag::named(f) {
                Some(b) => bits |= b,
                None => return out.line(format!("{tag} NO [CANNOT] only the system flags here, not {f}")),
            }
        }
        let folder = self.folder();
        let uids: Vec<u32> = messages.iter().map(|m| m.1).collect();
        self.mailbox.set_flags(&folder, &uids, |old| match mode {
            StoreMode::Add => old | bits,
            StoreMode::Remove => old & !bits,
            StoreMode::Replace => bits,
        });
        let listing = self.view(&folder).map(|v| v.messages).unwrap_or_default();
        for (n, u) in messages {
            let now = listing.iter().find(|k| k.uid == u).map_or(0, |k| k.flags);
            self.remember(u, now);
            if !silent {
                let uid_part = if uid { format!("UID {u} ") } else { String::new() };
                out.line(format!("* {n} FETCH ({uid_part}FLAGS {})", flag::list(now)));
            }
        }
        out.line(format!("{tag} OK STORE completed"));
    }

    fn search(&mut self, tag: &str, criteria: &[String], uid: bool, out: &mut Output) {
        let Some(sel) = self.selected.clone() else { return };
        let listing = self.view(&sel.name).map(|v| v.messages).unwrap_or_default();
        let mut found = Vec::new();
        for (i, &u) in sel.uids.iter().enumerate() {
            let n = i as u32 + 1;
            let flags = listing.iter().find(|k| k.uid == u).map_or(0, |k| k.flags);
            let mut all = true;
            for c in criteria {
                let c = c.to_ascii_uppercase();
                let ok = match c.as_str() {
                    "ALL" => true,
                    "SEEN" => flags & flag::SEEN != 0,
                    "UNSEEN" => flags & flag::SEEN == 0,
                    "FLAGGED" => flags & flag::FLAGGED != 0,
                    "UNFLAGGED" => flags & flag::FLAGGED == 0,
                    "DELETED" => flags & flag::DELETED != 0,
                    "UNDELETED" => flags & flag::DELETED == 0,
                    "ANSWERED" => flags & flag::ANSWERED != 0,
                    "UNANSWERED" => flags & flag::ANSWERED == 0,
                    set => match SequenceSet::parse(set, sel.uids.len() as u32) {
                        Some(s) => s.contains(n),
                        None => {
                            return out.line(format!("{tag} BAD SEARCH here knows flags and message sets, not {c}"));
                        }
                    },
                };
                all &= ok;
            }
            if all {
                found.push(if uid { u } else { n });
            }
        }
        let list: Vec<String> = found.iter().map(u32::to_string).collect();
        if self.rev2 {
            let uid_part = if uid { " UID" } else { "" };
            let all = if list.is_empty() { String::new() } else { format!(" ALL {}", list.join(",")) };
            out.line(format!("* ESEARCH (TAG \"{tag}\"){uid_part}{all}"));
        } else {
            out.line(format!("* SEARCH{}", list.iter().map(|n| format!(" {n}")).collect::<String>()));
        }
        out.line(format!("{tag} OK SEARCH completed"));
    }

    fn copy(&mut self, tag: &str, set: &str, to: &str, uid: bool, remove: bool, out: &mut Output) {
        let verb = if remove { "MOVE" } else { "COPY" };
        if remove && self.read_only() {
            return out.line(format!("{tag} NO [READ-ONLY] the folder was EXAMINEd"));
        }
        let messages = match self.resolve(set, uid) {
            Ok(m) => m,
            Err(why) => return out.line(format!("{tag} BAD {why}")),
        };
        let folder = self.folder();
        let uids: Vec<u32> = messages.iter().map(|m| m.1).collect();
        let Some(copied) = self.mailbox.copy(&folder, &uids, to) else {
            return out.line(format!("{tag} NO [TRYCREATE] no folder {to}: CREATE it first"));
        };
        if remove {
            // MOVE (RFC 6851): copy, then mark and expunge only those.
            self.mailbox.set_flags(&folder, &uids, |f| f | flag::DELETED);
            self.mailbox.expunge(&folder, Some(&uids));
            self.updates(out);
        }
        out.line(format!("{tag} OK {verb} completed: {} message(s) to {to}", copied.len()));
    }
}

/// Serves one client on `io` until LOGOUT (then `Ok`), or until it vanishes or idles (an error
/// saying which). In IDLE it tells the client of every change to the selected folder as it
/// happens.
pub async fn serve(mut io: Stream, mailbox: Mailbox, idle_timeout: Duration, tls: crate::tls::Mode) -> Result<()> {
    let mut session = Session::new(mailbox.clone()).with_tls(tls);
    let handshake = async |io: Stream| {
        let secs = idle_timeout.as_secs();
        crate::net::timeout(idle_timeout, crate::tls::accept(io))
            .await
            .map_err(|_| eyre!(en("the client did not finish the TLS handshake within {secs} s", &[("secs", &secs)])))?
    };
    if tls == crate::tls::Mode::Implicit {
        io = handshake(io).await?;
    }
    let mut changes = mailbox.changes();
    changes.borrow_and_update();
    let send = async |io: &mut Stream, out: &Output| -> Result<()> {
        io.write_all(&out.bytes).await?;
        io.flush().await.map_err(|e| eyre!(en("writing to the client: {error}", &[("error", &e)])))
    };
    send(&mut io, &session.greeting()).await?;
    let mut buf: Vec<u8> = Vec::new();
    // A line over the limit is being dropped up to its end.
    let mut dropping = false;
    // The literal announcement the server already answered with `+`.
    let mut answered = 0usize;
    loop {
        // Every whole input in the buffer first.
        loop {
            if dropping {
                match buf.windows(2).position(|w| w == b"\r\n") {
                    Some(end) => {
                        buf.drain(..end + 2);
                        dropping = false;
                    }
                    None => {
                        let keep = buf.len().min(1);
                        buf.drain(..buf.len() - keep);
                        break;
                    }
                }
                continue;
            }
            let out = if session.continuing() {
                match buf.windows(2).position(|w| w == b"\r\n") {
                    Some(end) => {
                        let line: Vec<u8> = buf.drain(..end + 2).collect();
                        session.input(&line)
                    }
                    None if buf.len() > MAX_LINE => {
                        let out = session.refuse(&buf, &en("line too long", &[]), false);
                        dropping = true;
                        out
                    }
                    None => break,
                }
            } else {
                match scan(&buf, MAX_COMMAND_LITERAL) {
                    Scan::Whole(n) => {
                        let command: Vec<u8> = buf.drain(..n).collect();
                        answered = 0;
                        session.input(&command)
                    }
                    Scan::Incomplete => break,
                    Scan::Awaits { len, .. } => {
                        if len > answered {
                            answered = len;
                            let mut out = Output::default();
                            out.line("+ go ahead");
                            send(&mut io, &out).await?;
                        }
                        break;
                    }
                    Scan::TooLong(len) => {
                        let why = en("command line over {max} octets", &[("max", &MAX_LINE)]);
                        let out = session.refuse(&buf, &why, false);
                        // The whole line came: it goes; else the rest of it goes as it comes.
                        if buf[..len].ends_with(b"\r\n") {
                            buf.drain(..len);
                        } else {
                            dropping = true;
                            buf.clear();
                        }
                        out
                    }
                    Scan::TooBig { len, octets } => {
                        let why = en(
                            "a literal of {n} octets, over the {max} this server takes",
                            &[("n", &octets), ("max", &MAX_COMMAND_LITERAL)],
                        );
                        // A synchronizing literal is refused before the client sends it; a
                        // non-synchronizing one is on its way: the connection ends (RFC 7888).
                        let sync = super::wire::literal_at_end(&buf[..len - 2]).is_some_and(|(_, s)| s);
                        let out = session.refuse(&buf, &why, !sync);
                        buf.drain(..len);
                        out
                    }
                }
            };
            send(&mut io, &out).await?;
            if out.close {
                return close(io).await;
            }
            if session.tls().take_starting() {
                // Bytes sent ahead of the handshake came in the clear: dropped (RFC 9051 §11.1).
                buf.clear();
                io = handshake(io).await?;
                session.tls().started();
            }
        }
        let state = session.state().name();
        let mut chunk = [0u8; 8192];
        let read = tokio::select! {
            read = crate::net::timeout(idle_timeout, io.read(&mut chunk)) => read,
            changed = changes.changed(), if session.idling() => {
                if changed.is_ok() {
                    let mut out = Output::default();
                    session.updates(&mut out);
                    send(&mut io, &out).await?;
                }
                continue;
            }
        };
        match read {
            Err(_) => {
                let mut out = Output::default();
                out.line("* BYE autologout: idle for too long");
                let _ = send(&mut io, &out).await;
                let _ = close(io).await;
                let secs = idle_timeout.as_secs_f64();
                return Err(eyre!(en(
                    "the client sent nothing for {secs} s (in state {state}); closed with BYE",
                    &[("secs", &secs), ("state", &state)]
                )));
            }
            Ok(Err(e)) => {
                return Err(eyre!(en(
                    "reading from the client (in state {state}): {error}",
                    &[("state", &state), ("error", &e)]
                )));
            }
            Ok(Ok(0)) => {
                return Err(eyre!(en(
                    "the client closed the connection without LOGOUT (in state {state})",
                    &[("state", &state)]
                )));
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What the server says to a client it has no room for, before it closes.
pub fn busy() -> Vec<u8> {
    b"* BYE too many connections: try again later\r\n".to_vec()
}

/// Whether LIST's `pattern` matches `name`: `*` matches anything, `%` anything but `/`.
fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'%') => (0..=n.len()).take_while(|&i| i == 0 || n[i - 1] != b'/').any(|i| go(&p[1..], &n[i..])),
            Some(&c) => n.first().is_some_and(|&d| d.eq_ignore_ascii_case(&c)) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// A string for a response: NIL, quoted, or a literal.
fn nstring(s: Option<&str>) -> String {
    s.map_or("NIL".to_string(), astring)
}

/// A literal's bytes: `{n}` CRLF and the octets.
fn literal(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}}}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

/// One FETCH item's part of the response, or `None` for an item the lab does not know.
/// `seen`: the item reads the body without PEEK, so the message becomes \Seen.
fn fetch_item(item: &str, kept: &Kept, seen: &mut bool) -> Option<Vec<u8>> {
    let upper = item.to_ascii_uppercase();
    let content = &kept.mail.content;
    let text = |s: String| Some(s.into_bytes());
    match upper.as_str() {
        "UID" => return text(format!("UID {}", kept.uid)),
        "FLAGS" => return text(format!("FLAGS {}", flag::list(kept.flags))),
        "RFC822.SIZE" => return text(format!("RFC822.SIZE {}", content.len())),
        "INTERNALDATE" => {
            let unix = kept.mail.received.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            return text(format!("INTERNALDATE \"{}\"", internal_date(unix)));
        }
        "ENVELOPE" => return text(format!("ENVELOPE {}", envelope(content))),
        "BODY" | "BODYSTRUCTURE" => {
            let body = &content[header_end(content)..];
            let lines = body.split(|&b| b == b'\n').count().saturating_sub(1);
            return text(format!(
                "{upper} (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"8BIT\" {} {lines})",
                body.len()
            ));
        }
        "RFC822" => {
            *seen = true;
            return Some([b"RFC822 ".as_slice(), &literal(content)].concat());
        }
        "RFC822.HEADER" => {
            return Some([b"RFC822.HEADER ".as_slice(), &literal(&content[..header_end(content)])].concat());
        }
        "RFC822.TEXT" => {
            *seen = true;
            return Some([b"RFC822.TEXT ".as_slice(), &literal(&content[header_end(content)..])].concat());
        }
        _ => {}
    }
    // BODY[section]<partial> and BODY.PEEK[section]<partial>.
    let (peek, rest) =
        if let Some(r) = upper.strip_prefix("BODY.PEEK[") { (true, r) } else { (false, upper.strip_prefix("BODY[")?) };
    let close = rest.find(']')?;
    let section = &rest[..close];
    let partial = &rest[close + 1..];
    let (start, count) = if partial.is_empty() {
        (0usize, None)
    } else {
        let inner = partial.strip_prefix('<')?.strip_suffix('>')?;
        let (a, b) = inner.split_once('.')?;
        (a.parse().ok()?, Some(b.parse::<usize>().ok()?))
    };
    let end = header_end(content);
    let whole: &[u8] = match section {
        "" => content,
        "HEADER" => &content[..end],
        "TEXT" => &content[end..],
        s if s.starts_with("HEADER.FIELDS") => {
            let names_at = s.find('(')?;
            let names: Vec<&str> = s[names_at + 1..].trim_end_matches(')').split(' ').collect();
            let not = s.starts_with("HEADER.FIELDS.NOT");
            let mut picked = Vec::new();
            for f in header_fields(content) {
                if names.iter().any(|n| n.eq_ignore_ascii_case(f.name)) != not {
                    // The field as it is kept, folded lines and all (RFC 9051 §6.4.5).
                    picked.extend_from_slice(&content[f.range]);
                    picked.extend_from_slice(b"\r\n");
                }
            }
            picked.extend_from_slice(b"\r\n");
            let mut out = format!("BODY[{section}] ").into_bytes();
            out.extend(literal(&picked));
            *seen |= !peek;
            return Some(out);
        }
        _ => return None,
    };
    *seen |= !peek;
    let from = start.min(whole.len());
    let to = count.map_or(whole.len(), |c| (from + c).min(whole.len()));
    let origin = if count.is_some() { format!("<{start}>") } else { String::new() };
    let mut out = format!("BODY[{section}]{origin} ").into_bytes();
    out.extend(literal(&whole[from..to]));
    Some(out)
}

/// IMAP's date-time (`07-Dec-2026 09:23:37 +0000`).
fn internal_date(unix: u64) -> String {
    let rfc = crate::labs::smtp::message::rfc5322_date(unix);
    // "Mon, 07 Dec 2026 09:23:37 +0000" → "07-Dec-2026 09:23:37 +0000"
    let parts: Vec<&str> = rfc.split(' ').collect();
    match parts.as_slice() {
        [_, d, m, y, t, z] => format!("{d}-{m}-{y} {t} {z}"),
        _ => rfc,
    }
}

/// The ENVELOPE of a message (RFC 9051 §7.5.2): date, subject, from, sender, reply-to, to, cc,
/// bcc, in-reply-to, message-id.
fn envelope(content: &[u8]) -> String {
    let fields = header_fields(content);
    let get = |name: &str| fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)).map(|f| f.value.clone());
    let addresses = |name: &str| match get(name) {
        None => "NIL".to_string(),
        Some(v) => {
            let list: Vec<String> = v.split(',').map(|a| address(a.trim())).collect();
            format!("({})", list.join(""))
        }
    };
    let from = addresses("From");
    let sender = if get("Sender").is_some() { addresses("Sender") } else { from.clone() };
    let reply_to = if get("Reply-To").is_some() { addresses("Reply-To") } else { from.clone() };
    format!(
        "({} {} {from} {sender} {reply_to} {} {} {} {} {})",
        nstring(get("Date").as_deref()),
        nstring(get("Subject").as_deref()),
        addresses("To"),
        addresses("Cc"),
        addresses("Bcc"),
        nstring(get("In-Reply-To").as_deref()),
        nstring(get("Message-ID").as_deref()),
    )
}

/// One address as IMAP writes it: `(name NIL mailbox host)`.
fn address(a: &str) -> String {
    let (name, addr) = match (a.find('<'), a.rfind('>')) {
        (Some(l), Some(r)) if l < r => (Some(a[..l].trim().trim_matches('"')), &a[l + 1..r]),
        _ => (None, a),
    };
    let (local, host) = addr.split_once('@').unwrap_or((addr, ""));
    format!("({} NIL {} {})", nstring(name.filter(|n| !n.is_empty())), astring(local), nstring(Some(host)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(n: usize) -> Mailbox {
        crate::labs::smtp::mailbox::filled(n, |i| {
            format!(
                "From: Alice <alice@client.lab>\r\nTo: bob@protolab.test\r\nSubject: {i}\r\nMessage-ID: <{i}@lab>\r\n\r\nline one\r\nline two\r\n"
            )
        })
    }

    fn say(s: &mut Session, line: &str) -> String {
        String::from_utf8(s.input(format!("{line}\r\n").as_bytes()).bytes).unwrap()
    }

    #[test]
    fn header_fields_come_as_kept_folded_lines_and_all() {
        let mb = crate::labs::smtp::mailbox::filled(1, |_| {
            "Authentication-Results: mail.b.lab;\r\n\tspf=pass\r\nTo: bob@protolab.test\r\n\r\nhi\r\n".to_string()
        });
        let mut s = Session::new(mb);
        say(&mut s, "a1 LOGIN bob lab");
        say(&mut s, "a2 SELECT INBOX");
        assert_eq!(
            say(&mut s, "a3 FETCH 1 BODY.PEEK[HEADER.FIELDS (AUTHENTICATION-RESULTS)]"),
            "* 1 FETCH (BODY[HEADER.FIELDS (AUTHENTICATION-RESULTS)] {50}\r\n\
             Authentication-Results: mail.b.lab;\r\n\tspf=pass\r\n\r\n)\r\na3 OK FETCH completed\r\n"
        );
    }

    #[test]
    fn login_select_fetch_store_search() {
        let mb = mailbox(2);
        let mut s = Session::new(mb.clone());
        assert!(String::from_utf8(s.greeting().bytes).unwrap().starts_with("* OK [CAPABILITY IMAP4rev2"));
        assert_eq!(say(&mut s, "a1 SELECT INBOX"), "a1 BAD SELECT only after logging in (LOGIN or AUTHENTICATE)\r\n");
        assert_eq!(say(&mut s, "a2 LOGIN bob nope"), "a2 NO [AUTHENTICATIONFAILED] wrong user name or password\r\n");
        assert!(say(&mut s, "a3 LOGIN bob lab").starts_with("a3 OK"));
        assert_eq!(s.state(), State::Authenticated);
        let select = say(&mut s, "a4 SELECT inbox");
        assert!(select.starts_with("* 2 EXISTS\r\n* 0 RECENT\r\n* FLAGS ("), "{select}");
        assert!(select.contains("* OK [UIDVALIDITY 1]") && select.contains("* OK [UIDNEXT 3]"), "{select}");
        assert!(select.ends_with("a4 OK [READ-WRITE] SELECT completed\r\n"));
        // PEEK leaves \Seen alone; BODY[TEXT] sets it; a partial fetch says where it starts.
        let head = say(&mut s, "a5 FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])");
        assert_eq!(
            head,
            "* 1 FETCH (FLAGS () BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: 0\r\n\r\n)\r\na5 OK FETCH completed\r\n"
        );
        assert_eq!(say(&mut s, "a6 SEARCH UNSEEN"), "* SEARCH 1 2\r\na6 OK SEARCH completed\r\n");
        let text = say(&mut s, "a7 FETCH 2 BODY[TEXT]<0.4>");
        assert_eq!(text, "* 2 FETCH (BODY[TEXT]<0> {4}\r\nline FLAGS (\\Seen))\r\na7 OK FETCH completed\r\n");
        assert_eq!(say(&mut s, "a8 SEARCH UNSEEN"), "* SEARCH 1\r\na8 OK SEARCH completed\r\n");
        assert_eq!(
            say(&mut s, "a9 UID STORE 1 +FLAGS (\\Flagged)"),
            "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\na9 OK STORE completed\r\n"
        );
        let env = say(&mut s, "b1 FETCH 1 ENVELOPE");
        assert!(env.contains("((\"Alice\" NIL \"alice\" \"client.lab\"))"), "{env}");
        assert!(env.contains("\"<0@lab>\""), "{env}");
        assert!(say(&mut s, "b2 FETCH 9 FLAGS").starts_with("b2 BAD no message 9"));
        assert!(say(&mut s, "b3 LOGOUT").starts_with("* BYE"));
    }

    #[test]
    fn folders_move_expunge_and_a_second_client_in_idle_hears_it_all() {
        let mb = mailbox(2);
        let (mut a, mut b) = (Session::new(mb.clone()), Session::new(mb.clone()));
        for s in [&mut a, &mut b] {
            say(s, "x LOGIN bob lab");
            say(s, "y SELECT INBOX");
        }
        assert_eq!(say(&mut b, "i1 IDLE"), "+ idling\r\n");
        assert!(b.idling());
        assert_eq!(say(&mut a, "c1 CREATE Archive"), "c1 OK CREATE completed\r\n");
        assert_eq!(
            say(&mut a, "c2 CREATE archive"),
            "c2 OK CREATE completed\r\n",
            "names are case-sensitive but INBOX"
        );
        assert!(say(&mut a, "c3 CREATE Archive").starts_with("c3 NO [ALREADYEXISTS]"));
        assert_eq!(say(&mut a, "c4 STORE 1 +FLAGS.SILENT (\\Seen)"), "c4 OK STORE completed\r\n");
        let moved = say(&mut a, "c5 MOVE 2 Archive");
        assert_eq!(moved, "* 2 EXPUNGE\r\nc5 OK MOVE completed: 1 message(s) to Archive\r\n");
        mb.deliver(mailbox(1).messages().remove(0));
        // The idle client hears: message 2 gone, 1 now \Seen, a new one.
        let mut out = Output::default();
        b.updates(&mut out);
        let heard = String::from_utf8(out.bytes).unwrap();
        assert_eq!(heard, "* 2 EXPUNGE\r\n* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 EXISTS\r\n");
        assert_eq!(say(&mut b, "DONE"), "i1 OK IDLE terminated\r\n");
        assert!(say(&mut a, "c6 LIST \"\" *").starts_with("* LIST () \"/\" \"INBOX\"\r\n* LIST () \"/\" \"Archive\""));
        assert_eq!(
            say(&mut a, "c7 STATUS Archive (MESSAGES UNSEEN)"),
            "* STATUS \"Archive\" (MESSAGES 1 UNSEEN 1)\r\nc7 OK STATUS completed\r\n"
        );
        say(&mut a, "c8 STORE 1 +FLAGS (\\Deleted)");
        let gone = say(&mut a, "c9 EXPUNGE");
        assert!(gone.starts_with("* 1 EXPUNGE\r\n"), "{gone}");
        assert!(say(&mut a, "d1 COPY 1 Nope").starts_with("d1 NO [TRYCREATE]"));
    }

    #[test]
    fn authenticate_plain_with_and_without_an_initial_response() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"\0bob\0lab");
        let mut s = Session::new(mailbox(0));
        assert!(say(&mut s, &format!("a AUTHENTICATE PLAIN {b64}")).starts_with("a OK"));
        let mut s = Session::new(mailbox(0));
        assert_eq!(say(&mut s, "a AUTHENTICATE PLAIN"), "+ \r\n");
        assert!(s.continuing());
        assert!(say(&mut s, &b64).starts_with("a OK"));
        let mut s = Session::new(mailbox(0));
        say(&mut s, "a AUTHENTICATE PLAIN");
        assert_eq!(say(&mut s, "*"), "a BAD AUTHENTICATE cancelled\r\n");
        assert!(matches("*", "Archive/2024") && matches("%", "Archive") && !matches("%", "Archive/2024"));
    }
}
