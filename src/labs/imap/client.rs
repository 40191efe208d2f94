//! The lab's IMAP client: what POP3 cannot do, one tagged command at a time. CAPABILITY,
//! LOGIN, LIST, SELECT INBOX, then the newest message: its flags and envelope (a list view),
//! its header (PEEK: still unseen), the first 100 octets of its text (a partial fetch, which
//! sets `\Seen`), a `\Flagged` flag, SEARCH UNSEEN, a copy filed in `Archive` (made if it is
//! missing), LOGOUT. The mail stays on the server.
//!
//! Against a real server it only looks: EXAMINE (read-only), no flags, no folders, no copies.

use super::wire::{MAX_RESPONSE_LITERAL, Scan, astring, scan};
use crate::locale::{en, term};
use crate::net::Stream;
use crate::net::lines::{ClientLines, Parsed};
use color_eyre::eyre::{Result, eyre};
use std::time::Duration;

/// How long the client waits for any one completion.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a command's responses may hold, all together.
const MAX_RESPONSES: usize = 32 * 1024 * 1024;
/// The folder the client files a copy in.
pub const ARCHIVE: &str = "Archive";

/// The responses to one command: the untagged ones, then the tagged completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub untagged: Vec<Vec<u8>>,
    /// `OK`, `NO` or `BAD`.
    pub status: String,
    pub line: String,
}

impl Completion {
    pub fn ok(&self) -> bool {
        self.status == "OK"
    }

    /// The number before `what` in an untagged response (`* 3 EXISTS` → 3).
    pub fn number(&self, what: &str) -> Option<u32> {
        self.untagged.iter().find_map(|l| {
            let text = String::from_utf8_lossy(l);
            let mut words = text.split(' ');
            let (_, n, w) = (words.next()?, words.next()?, words.next()?);
            w.trim_end().eq_ignore_ascii_case(what).then(|| n.parse().ok()).flatten()
        })
    }
}

/// The responses at the start of `buf` up to the completion tagged `tag`.
pub fn completion(buf: &[u8], tag: &str) -> Parsed<Completion> {
    let mut at = 0;
    let mut untagged = Vec::new();
    loop {
        let len = match scan(&buf[at..], MAX_RESPONSE_LITERAL) {
            Scan::Whole(len) => len,
            Scan::Incomplete | Scan::Awaits { .. } => return Ok(None),
            Scan::TooLong(_) => return Err(en("response line over {max} octets", &[("max", &super::wire::MAX_LINE)])),
            Scan::TooBig { octets, .. } => {
                return Err(en(
                    "a literal of {n} octets, over the {max} this lab reads",
                    &[("n", &octets), ("max", &MAX_RESPONSE_LITERAL)],
                ));
            }
        };
        let response = &buf[at..at + len];
        at += len;
        if let Some(rest) = response.strip_prefix(format!("{tag} ").as_bytes()) {
            let line = String::from_utf8_lossy(&rest[..rest.len() - 2]).into_owned();
            let status = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
            if !matches!(status.as_str(), "OK" | "NO" | "BAD") {
                return Err(en("a tagged response says OK, NO or BAD after its tag", &[]));
            }
            return Ok(Some((Completion { untagged, status, line }, at)));
        }
        if !response.starts_with(b"* ") && !response.starts_with(b"+") {
            return Err(en("a response starts with *, + or the command's tag", &[]));
        }
        untagged.push(response.to_vec());
    }
}

/// A client's connection: tagged commands out, their responses in.
pub struct Connection {
    lines: ClientLines,
    next: u32,
}

impl Connection {
    /// Connects over `io` and reads the greeting, which must be an untagged OK.
    pub async fn greeted(io: Stream) -> Result<Connection> {
        Connection::greeted_over(io, &crate::tls::ClientTls::default()).await
    }

    /// Connects over `io`, inside TLS from the first byte if `tls` says so, and reads the greeting.
    pub async fn greeted_over(io: Stream, tls: &crate::tls::ClientTls) -> Result<Connection> {
        let mut conn = Connection { lines: ClientLines::new(io, REPLY_TIMEOUT, MAX_RESPONSES), next: 0 };
        if tls.mode == crate::tls::Mode::Implicit {
            conn.lines.start_tls(tls).await?;
        }
        let greeting = conn.response(term("the connection (the greeting)")).await?;
        if !greeting.starts_with(b"* OK") {
            let text = String::from_utf8_lossy(&greeting).trim_end().to_string();
            return Err(eyre!(en("the server's greeting is {text}", &[("text", &text)])));
        }
        Ok(conn)
    }

    /// The next single response (untagged data, a continuation, a completion).
    async fn response(&mut self, what: &str) -> Result<Vec<u8>> {
        self.lines
            .read(what, |buf| match scan(buf, MAX_RESPONSE_LITERAL) {
                Scan::Whole(len) => Ok(Some((buf[..len].to_vec(), len))),
                Scan::Incomplete | Scan::Awaits { .. } => Ok(None),
                _ => Err(en("a response line over the limits", &[])),
            })
            .await
    }

    /// Sends a tagged command and reads everything up to its completion.
    pub async fn command(&mut self, command: &str) -> Result<Completion> {
        self.next += 1;
        let tag = format!("a{}", self.next);
        let what = command.split(' ').next().unwrap_or(command).to_string();
        self.lines.send(format!("{tag} {command}\r\n").as_bytes(), &what).await?;
        self.lines.read(&what, |buf| completion(buf, &tag)).await
    }

    /// The command must succeed; if not, LOGOUT, then the report.
    pub async fn must(&mut self, command: &str) -> Result<Completion> {
        let done = self.command(command).await?;
        if done.ok() {
            return Ok(done);
        }
        let what = command.split(' ').next().unwrap_or(command).to_string();
        let _ = self.command("LOGOUT").await;
        let _ = self.lines.close(REPLY_TIMEOUT).await;
        Err(eyre!(en("server refused {what}: {text}", &[("what", &what), ("text", &done.line)])))
    }

    /// IDLE: sends it and waits for the server's `+`. Returns its tag, for [`Connection::done`].
    pub async fn idle(&mut self) -> Result<String> {
        self.next += 1;
        let tag = format!("a{}", self.next);
        self.lines.send(format!("{tag} IDLE\r\n").as_bytes(), "IDLE").await?;
        let plus = self.response("IDLE").await?;
        if !plus.starts_with(b"+") {
            let text = String::from_utf8_lossy(&plus).trim_end().to_string();
            return Err(eyre!(en("server refused {what}: {text}", &[("what", &"IDLE"), ("text", &text)])));
        }
        Ok(tag)
    }

    /// In IDLE: the next news the server sends (an untagged line).
    pub async fn news(&mut self) -> Result<String> {
        let line = self.response("IDLE").await?;
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    /// Ends IDLE with DONE and reads the completion.
    pub async fn done(&mut self, tag: &str) -> Result<Completion> {
        self.lines.send(b"DONE\r\n", "DONE").await?;
        self.lines.read("DONE", |buf| completion(buf, tag)).await
    }

    /// LOGOUT, its BYE and completion, then the close.
    pub async fn logout(mut self) -> Result<()> {
        let bye = self.command("LOGOUT").await?;
        if !bye.ok() {
            return Err(eyre!(en("server answered LOGOUT with {text}", &[("text", &bye.line)])));
        }
        self.lines.close(REPLY_TIMEOUT).await
    }

    /// The tour of bob's INBOX, after the greeting: CAPABILITY, LOGIN, LIST, SELECT (EXAMINE on
    /// a real server), and the newest message looked at, flagged and filed (ours only).
    pub async fn tour(&mut self, user: &str, password: &str, own_server: bool) -> Result<()> {
        self.must("CAPABILITY").await?;
        self.must(&format!("LOGIN {} {}", astring(user), astring(password))).await?;
        let list = self.must("LIST \"\" \"*\"").await?;
        let select = if own_server { "SELECT INBOX" } else { "EXAMINE INBOX" };
        let folder = self.must(select).await?;
        let newest = folder.number("EXISTS").unwrap_or(0);
        if newest == 0 {
            return Ok(());
        }
        self.must(&format!("FETCH {newest} (FLAGS ENVELOPE RFC822.SIZE)")).await?;
        self.must(&format!("FETCH {newest} BODY.PEEK[HEADER]")).await?;
        self.must(&format!("FETCH {newest} BODY[TEXT]<0.100>")).await?;
        if own_server {
            self.must(&format!("STORE {newest} +FLAGS (\\Flagged)")).await?;
        }
        self.must("SEARCH UNSEEN").await?;
        if own_server {
            let archived = list.untagged.iter().any(|l| {
                let line = String::from_utf8_lossy(l);
                let name = line.trim_end().rsplit(' ').next().unwrap_or_default().trim_matches('"').to_string();
                name == ARCHIVE
            });
            if !archived {
                self.must(&format!("CREATE {ARCHIVE}")).await?;
            }
            self.must(&format!("COPY {newest} {ARCHIVE}")).await?;
        }
        Ok(())
    }
}

/// Runs the client on `io` as `user`/`password`. `own_server`: our embedded server, where the
/// client changes flags and files a copy; elsewhere it only looks.
/// `tls`: in the clear, STARTTLS first (the capabilities asked again inside), or TLS from the
/// first byte (port 993).
pub async fn run(io: Stream, user: &str, password: &str, tls: crate::tls::ClientTls) -> Result<()> {
    let mut conn = Connection::greeted_over(io, &tls).await?;
    if tls.mode == crate::tls::Mode::StartTls {
        let caps = conn.must("CAPABILITY").await?;
        let offered = caps
            .untagged
            .iter()
            .any(|l| l.split(|&b| b == b' ').any(|w| w.trim_ascii().eq_ignore_ascii_case(b"STARTTLS")));
        if !offered {
            let _ = conn.logout().await;
            return Err(eyre!(en("the server does not offer STARTTLS (its CAPABILITY does not list it)", &[])));
        }
        conn.must("STARTTLS").await?;
        conn.lines.start_tls(&tls).await?;
    }
    conn.tour(user, password, tls.ours).await?;
    conn.logout().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_gather_their_untagged_data() {
        let buf = b"* 2 EXISTS\r\n* 1 FETCH (BODY[] {3}\r\nabc)\r\na1 OK done\r\nnext";
        let (done, len) = completion(buf, "a1").unwrap().unwrap();
        assert_eq!(len, buf.len() - 4);
        assert_eq!(done.untagged.len(), 2);
        assert_eq!(done.number("EXISTS"), Some(2));
        assert!(done.ok());
        assert_eq!(completion(b"* 2 EXISTS\r\n", "a1"), Ok(None));
        assert!(completion(b"a1 MAYBE\r\n", "a1").is_err());
        assert!(completion(b"220 smtp\r\n", "a1").is_err());
    }
}
