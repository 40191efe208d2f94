//! The lab's SMTP client: the classic dialogue, one command at a time (RFC 5321 §3.3, App. D):
//! greeting, EHLO (HELO if refused), MAIL FROM, RCPT TO, DATA, the message text, QUIT.
//!
//! Against a real server it stops cleanly at the first refusal (say a 530 asking for AUTH): it
//! sends QUIT and reports the refusal in one line. Every read has a time limit.

use super::message::{dot_stuff, rfc5322_date};
use super::wire::{Reply, ReplyCode, ReplyError};
use crate::locale::{en, term};
use crate::net::Stream;
use crate::net::lines::ClientLines;
use color_eyre::eyre::{Report, Result, eyre};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

/// How long the client waits for any one reply (RFC 5321 §4.5.3.2 allows minutes; a lab does not wait that long).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest reply the client reads (a multi-line reply of many lines included).
const MAX_REPLY: usize = 64 * 1024;

/// How long the client waits for the server to close after a refusal and QUIT.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// The name the client gives in EHLO.
pub const CLIENT_DOMAIN: &str = "client.lab";
/// The envelope sender.
pub const SENDER: &str = "alice@client.lab";
/// The envelope recipient: a mailbox of the lab server's domain.
pub const RECIPIENT: &str = "bob@protolab.test";
/// A recipient elsewhere, which a server that does not relay refuses (`.invalid` is a domain
/// that never exists, RFC 2606). Tried with our own server only.
pub const ELSEWHERE: &str = "carol@elsewhere.invalid";

/// The message the client sends: RFC 5322 header fields and a short body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The `From:` the reader sees (not the envelope sender, though here they agree).
    pub from: String,
    /// The `To:` the reader sees (the envelope recipient is in RCPT TO).
    pub to: String,
    /// The `Subject:`, which the data step's summary shows.
    pub subject: String,
    /// RFC 5322 date, e.g. `Tue, 14 Nov 2023 22:13:20 +0000`.
    pub date: String,
    /// `<random@client.lab>`: new for every run, so each message is told apart.
    pub message_id: String,
    /// Body lines, without line ends.
    pub body: Vec<String>,
}

impl Letter {
    /// Today's letter from Alice to Bob, with a fresh Message-ID.
    pub fn new(now: SystemTime) -> Self {
        let unix = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Letter {
            from: format!("Alice <{SENDER}>"),
            to: format!("Bob <{RECIPIENT}>"),
            subject: "Hello from protolab".into(),
            date: rfc5322_date(unix),
            message_id: format!("<{:016x}@{CLIENT_DOMAIN}>", rand::random::<u64>()),
            body: vec![
                "Hi Bob,".into(),
                "".into(),
                "this message crossed the wire one SMTP command at a time.".into(),
                ".This line starts with a dot, so the client sent it with two (dot-stuffing).".into(),
                "".into(),
                "Alice".into(),
            ],
        }
    }

    /// The message text, CRLF lines, before dot-stuffing.
    pub fn text(&self) -> Vec<u8> {
        let mut out = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: {}\r\n\r\n",
            self.from, self.to, self.subject, self.date, self.message_id
        );
        for line in &self.body {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.into_bytes()
    }
}

/// One message to send: the name to give in EHLO, the envelope, and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub helo: String,
    pub sender: String,
    pub recipient: String,
    /// The message text, CRLF lines, before dot-stuffing.
    pub text: Vec<u8>,
    /// Against our own server, first show what it refuses: a MAIL in the clear on submission
    /// (530), a recipient elsewhere (a relay attempt).
    pub probes: bool,
}

impl Envelope {
    /// The lab's: today's letter from alice@client.lab to bob@protolab.test.
    pub fn lab(now: SystemTime) -> Self {
        Envelope {
            helo: CLIENT_DOMAIN.into(),
            sender: SENDER.into(),
            recipient: RECIPIENT.into(),
            text: Letter::new(now).text(),
            probes: true,
        }
    }
}

/// The server refused a command or the message (an error a caller can tell from the others:
/// the mail lab's forger expects one).
#[derive(Debug, Clone)]
pub struct Refused {
    /// What was refused (`MAIL FROM`, `the message`).
    pub what: String,
    pub reply: Reply,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, code, text) = (&self.what, &self.reply.code, self.reply.text());
        f.write_str(&en("server refused {what}: {code} {text}", &[("what", what), ("code", code), ("text", &text)]))
    }
}

impl std::error::Error for Refused {}

/// The client's side of the socket: whole command lines out, whole replies in.
struct Connection {
    lines: ClientLines,
    /// The name it gives in EHLO.
    helo: String,
}

impl Connection {
    async fn send(&mut self, bytes: &[u8], what: &str) -> Result<()> {
        self.lines.send(bytes, what).await
    }

    /// The next reply; `what` names what it answers, for errors.
    async fn reply(&mut self, what: &str) -> Result<Reply> {
        self.lines
            .read(what, |buf| match Reply::parse(buf) {
                Ok(done) => Ok(Some(done)),
                Err(ReplyError::Incomplete) => Ok(None),
                Err(ReplyError::Invalid { reason, .. }) => Err(reason.to_string()),
            })
            .await
    }

    /// EHLO (HELO if refused): the extensions the server lists.
    async fn hello(&mut self) -> Result<Vec<String>> {
        let hello = self.command(&format!("EHLO {}", self.helo)).await?;
        if hello.code.is_permanent_negative() {
            // An old server without ESMTP: fall back to HELO (§3.2).
            let hello = self.command(&format!("HELO {}", self.helo)).await?;
            if !hello.code.is_positive_completion() {
                return Err(self.refused("HELO", &hello).await);
            }
            return Ok(Vec::new());
        }
        if !hello.code.is_positive_completion() {
            return Err(self.refused("EHLO", &hello).await);
        }
        Ok(hello.lines[1..].to_vec())
    }

    /// Sends a command line and reads its reply.
    async fn command(&mut self, line: &str) -> Result<Reply> {
        let what = line.split(':').next().unwrap_or(line).to_string();
        self.send(format!("{line}\r\n").as_bytes(), &what).await?;
        self.reply(&what).await
    }

    async fn close(&mut self, limit: Duration) -> Result<()> {
        self.lines.close(limit).await
    }

    /// The server refused `what`: say goodbye politely (QUIT, its reply, the close), then report it.
    async fn refused(&mut self, what: &str, reply: &Reply) -> Report {
        let report = Report::new(Refused { what: what.to_string(), reply: reply.clone() });
        if reply.code != ReplyCode::SERVICE_NOT_AVAILABLE && self.command("QUIT").await.is_ok() {
            let _ = self.close(GOODBYE_TIMEOUT).await;
        } else {
            let _ = self.lines.io.shutdown().await;
        }
        report
    }
}

/// How the client talks to its server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// In the clear, STARTTLS (submission, 587), or TLS from the first byte (465); whether the
    /// server is our own (it may be shown a refusal).
    pub tls: crate::tls::ClientTls,
    /// Log in with AUTH PLAIN as this account once inside TLS (our server: alice's).
    pub account: Option<(String, String)>,
}

/// Runs the client scenario on `io`. `Ok` once the message was accepted and
/// the session closed. Against our own server, it first tries a recipient elsewhere, which the
/// server refuses (a relay attempt), and on submission a MAIL before STARTTLS (530).
pub async fn run(io: Stream, options: Options) -> Result<()> {
    send(io, options, Envelope::lab(SystemTime::now())).await
}

/// Sends `envelope` on `io` as [`run`] does the lab's letter; a refusal is a [`Refused`].
pub async fn send(io: Stream, options: Options, envelope: Envelope) -> Result<()> {
    let mut conn = Connection { lines: ClientLines::new(io, REPLY_TIMEOUT, MAX_REPLY), helo: envelope.helo.clone() };
    let sender = envelope.sender.as_str();
    let tls = &options.tls;
    if tls.mode == crate::tls::Mode::Implicit {
        conn.lines.start_tls(tls).await?;
    }
    let greeting = conn.reply(term("the connection (the greeting)")).await?;
    if greeting.code != ReplyCode::SERVICE_READY {
        return Err(conn.refused(term("the connection"), &greeting).await);
    }
    let mut extensions = conn.hello().await?;
    if tls.mode == crate::tls::Mode::StartTls {
        if tls.ours && envelope.probes {
            // Submission asks for TLS before anything else: a MAIL in the clear is refused.
            let reply = conn.command(&format!("MAIL FROM:<{sender}>")).await?;
            if reply.code.is_positive_completion() {
                let _ = conn.lines.io.shutdown().await;
                return Err(eyre!(en("the server took MAIL in the clear: submission needs STARTTLS first", &[])));
            }
        }
        if !offers(&extensions, "STARTTLS") {
            let _ = conn.command("QUIT").await;
            return Err(eyre!(en("the server does not offer STARTTLS (its EHLO reply does not list it)", &[])));
        }
        let reply = conn.command("STARTTLS").await?;
        if reply.code != ReplyCode::SERVICE_READY {
            return Err(conn.refused("STARTTLS", &reply).await);
        }
        conn.lines.start_tls(tls).await?;
        // RFC 3207 §4.2: everything learned in the clear is forgotten; say EHLO again.
        extensions = conn.hello().await?;
    }
    if let Some((user, password)) = &options.account {
        if !offers(&extensions, "AUTH") {
            let _ = conn.command("QUIT").await;
            return Err(eyre!(en("the server does not offer AUTH (its EHLO reply does not list it)", &[])));
        }
        use base64::Engine;
        let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        let reply = conn.command(&format!("AUTH PLAIN {plain}")).await?;
        if reply.code != ReplyCode::AUTH_SUCCEEDED {
            return Err(conn.refused("AUTH", &reply).await);
        }
    }
    let refused_recipient = tls.ours && envelope.probes;

    let text = &envelope.text;
    // RFC 1870: where the server takes SIZE, say the size ahead so a too-big message is refused early.
    let size = offers(&extensions, "SIZE");
    let mail = if size { format!("MAIL FROM:<{sender}> SIZE={}", text.len()) } else { format!("MAIL FROM:<{sender}>") };
    let reply = conn.command(&mail).await?;
    if !reply.code.is_positive_completion() {
        return Err(conn.refused("MAIL FROM", &reply).await);
    }
    if refused_recipient {
        // One refused recipient does not end the transaction: the server decides per address.
        let reply = conn.command(&format!("RCPT TO:<{ELSEWHERE}>")).await?;
        if reply.code.is_positive_completion() {
            let _ = conn.lines.io.shutdown().await;
            return Err(eyre!(en(
                "the server took mail for {rcpt}: it should refuse to relay",
                &[("rcpt", &ELSEWHERE)]
            )));
        }
    }
    let reply = conn.command(&format!("RCPT TO:<{}>", envelope.recipient)).await?;
    if !reply.code.is_positive_completion() {
        return Err(conn.refused("RCPT TO", &reply).await);
    }
    let reply = conn.command("DATA").await?;
    if reply.code != ReplyCode::START_MAIL_INPUT {
        return Err(conn.refused("DATA", &reply).await);
    }
    conn.send(&dot_stuff(text), term("the message text")).await?;
    let reply = conn.reply(term("the message text")).await?;
    if !reply.code.is_positive_completion() {
        return Err(conn.refused(term("the message"), &reply).await);
    }
    let reply = conn.command("QUIT").await?;
    if reply.code != ReplyCode::SERVICE_CLOSING {
        let _ = conn.lines.io.shutdown().await;
        return Err(eyre!(en(
            "server answered QUIT with {code} {text}",
            &[("code", &reply.code), ("text", &reply.text())]
        )));
    }
    conn.close(REPLY_TIMEOUT).await
}

/// Whether an EHLO reply lists `keyword` (`STARTTLS`, `AUTH PLAIN LOGIN`).
fn offers(extensions: &[String], keyword: &str) -> bool {
    extensions.iter().any(|e| e.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case(keyword)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_letter_has_its_headers_and_a_fresh_id() {
        let a = Letter::new(UNIX_EPOCH);
        let b = Letter::new(UNIX_EPOCH);
        assert_ne!(a.message_id, b.message_id);
        let text = String::from_utf8(a.text()).unwrap();
        assert!(text.starts_with("From: Alice <alice@client.lab>\r\nTo: Bob <bob@protolab.test>\r\n"));
        assert!(text.contains("\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
        assert!(text.contains("\r\n\r\nHi Bob,\r\n"));
        assert!(dot_stuff(text.as_bytes()).windows(6).any(|w| w == b"\r\n..Th"));
    }
}
