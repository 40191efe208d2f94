//! The lab's POP3 client: "download and delete" one command at a time (RFC 1939 §10): the
//! greeting, CAPA (STLS and CAPA again in the STLS story), USER and PASS, or APOP where the
//! greeting offers it (a wrong password first, against our own server, to show the `-ERR`), STAT, LIST, UIDL, TOP n 0 (the header alone), RETR of the newest message, DELE, and
//! QUIT, where the server deletes. Against a real server it unmarks with RSET before QUIT, so a
//! demonstration never deletes anyone's mail. Every read has a time limit.

use super::server::ACCOUNTS;
use super::wire::{MAX_STATUS_LINE, Status, multi_line_end, unstuff};
use crate::locale::{en, term};
use crate::net::Stream;
use crate::net::lines::{ClientLines, Parsed};
use color_eyre::eyre::{Report, Result, eyre};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long the client waits for any one response.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest response the client reads (a whole message for RETR).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// The password the client tries first against our own server, which refuses it.
pub const WRONG_PASSWORD: &str = "guess";

/// A response: its status, its text, and for a multi-line one its lines (unstuffed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ok: bool,
    pub text: String,
    pub body: Option<Vec<u8>>,
}

/// The response at the start of `buf`; `multi`: a positive one has lines up to a `.` line.
pub fn answer(buf: &[u8], multi: bool) -> Parsed<Answer> {
    let Some((line, n)) = crate::wire::crlf_line(buf) else {
        return if buf.len() > MAX_STATUS_LINE {
            Err(super::wire::StatusError::TooLong(buf.len()).to_string())
        } else {
            Ok(None)
        };
    };
    let status = Status::parse(line, n).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&line[status.text]).into_owned();
    if !(status.ok && multi) {
        return Ok(Some((Answer { ok: status.ok, text, body: None }, n)));
    }
    Ok(multi_line_end(buf).map(|len| {
        let (body, _) = unstuff(&buf[n..len - 3]);
        (Answer { ok: true, text, body: Some(body) }, len)
    }))
}

/// Who logs in: the lab's account, or the one given with `--user` for a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl Login {
    /// The lab server's account (bob / lab).
    pub fn lab() -> Login {
        Login { user: ACCOUNTS[0].user.into(), password: ACCOUNTS[0].password.into() }
    }
}

struct Connection {
    lines: ClientLines,
}

impl Connection {
    /// Sends a command line and reads its response.
    async fn command(&mut self, line: &str, multi: bool) -> Result<Answer> {
        let what = line.split(' ').next().unwrap_or(line).to_string();
        self.lines.send(format!("{line}\r\n").as_bytes(), &what).await?;
        self.lines.read(&what, |buf| answer(buf, multi)).await
    }

    /// The server refused `what`: QUIT, its answer, the close, then the report.
    async fn refused(&mut self, what: &str, answer: &Answer) -> Report {
        let report = eyre!(en("server refused {what}: -ERR {text}", &[("what", &what), ("text", &answer.text)]));
        if self.command("QUIT", false).await.is_ok() {
            let _ = self.lines.close(REPLY_TIMEOUT).await;
        } else {
            let _ = self.lines.io.shutdown().await;
        }
        report
    }
}

/// What the client shows besides reading the newest message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tour {
    /// Try a wrong password first, to show the `-ERR`.
    pub wrong_password: bool,
    /// Really delete the message read (else RSET unmarks it before QUIT).
    pub delete: bool,
}

/// Runs the client on `io` as `login`. Against our own embedded server (`tls.ours`) a wrong
/// password is tried first and the newest message is really deleted. `Ok` once QUIT was
/// answered and the connection closed.
/// `tls`: in the clear, STLS after CAPA (RFC 2595), or TLS from the first byte (port 995).
pub async fn run(io: Stream, login: Login, tls: crate::tls::ClientTls) -> Result<()> {
    let tour = Tour { wrong_password: tls.ours, delete: tls.ours };
    take(io, login, tls, tour).await
}

/// [`run`], showing what `tour` says.
pub async fn take(io: Stream, login: Login, tls: crate::tls::ClientTls, tour: Tour) -> Result<()> {
    let mut conn = Connection { lines: ClientLines::new(io, REPLY_TIMEOUT, MAX_RESPONSE) };
    if tls.mode == crate::tls::Mode::Implicit {
        conn.lines.start_tls(&tls).await?;
    }
    let what = term("the connection (the greeting)");
    let greeting = conn.lines.read(what, |buf| answer(buf, false)).await?;
    if !greeting.ok {
        let _ = conn.lines.io.shutdown().await;
        return Err(eyre!(en("the server's greeting is -ERR {text}", &[("text", &greeting.text)])));
    }
    // RFC 2449: CAPA lists what the server offers; a server from before it answers -ERR.
    let capa = conn.command("CAPA", true).await?;
    if tls.mode == crate::tls::Mode::StartTls {
        let body = capa.body.as_deref().unwrap_or_default();
        if !capa.ok || !body.split(|&b| b == b'\n').any(|l| l.trim_ascii().eq_ignore_ascii_case(b"STLS")) {
            let _ = conn.command("QUIT", false).await;
            return Err(eyre!(en("the server does not offer STLS (its CAPA does not list it)", &[])));
        }
        let stls = conn.command("STLS", false).await?;
        if !stls.ok {
            return Err(conn.refused("STLS", &stls).await);
        }
        conn.lines.start_tls(&tls).await?;
        // RFC 2595 §4: what the server offers may change inside TLS; ask again.
        conn.command("CAPA", true).await?;
    }
    // RFC 1939 §7: a timestamp in the greeting offers APOP, where the password never crosses.
    let timestamp = greeting
        .text
        .find('<')
        .and_then(|a| greeting.text[a..].find('>').map(|b| greeting.text[a..=a + b].to_string()));
    if let Some(stamp) = timestamp {
        let apop = |password: &str| format!("APOP {} {}", login.user, super::server::apop_digest(&stamp, password));
        if tour.wrong_password {
            let wrong = conn.command(&apop(WRONG_PASSWORD), false).await?;
            if wrong.ok {
                let _ = conn.lines.io.shutdown().await;
                return Err(eyre!(en("the server took a wrong password", &[])));
            }
        }
        let answer = conn.command(&apop(&login.password), false).await?;
        if !answer.ok {
            return Err(conn.refused("APOP", &answer).await);
        }
    } else {
        if tour.wrong_password {
            conn.command(&format!("USER {}", login.user), false).await?;
            let wrong = conn.command(&format!("PASS {WRONG_PASSWORD}"), false).await?;
            if wrong.ok {
                let _ = conn.lines.io.shutdown().await;
                return Err(eyre!(en("the server took a wrong password", &[])));
            }
        }
        let user = conn.command(&format!("USER {}", login.user), false).await?;
        if !user.ok {
            return Err(conn.refused("USER", &user).await);
        }
        let pass = conn.command(&format!("PASS {}", login.password), false).await?;
        if !pass.ok {
            return Err(conn.refused("PASS", &pass).await);
        }
    }
    let stat = conn.command("STAT", false).await?;
    let count = stat.text.split(' ').next().and_then(|n| n.parse::<u32>().ok());
    let Some(count) = count.filter(|_| stat.ok) else {
        return Err(conn.refused("STAT", &stat).await);
    };
    conn.command("LIST", true).await?;
    conn.command("UIDL", true).await?;
    if count > 0 {
        // The newest message: on our server, the one the SMTP tab sent last.
        conn.command(&format!("TOP {count} 0"), true).await?;
        let retr = conn.command(&format!("RETR {count}"), true).await?;
        if !retr.ok {
            return Err(conn.refused("RETR", &retr).await);
        }
        conn.command(&format!("DELE {count}"), false).await?;
        if !tour.delete {
            // Somebody's real mail: unmark it, so QUIT deletes nothing.
            conn.command("RSET", false).await?;
        }
    }
    let quit = conn.command("QUIT", false).await?;
    if !quit.ok {
        let _ = conn.lines.io.shutdown().await;
        return Err(eyre!(en("server answered QUIT with -ERR {text}", &[("text", &quit.text)])));
    }
    conn.lines.close(REPLY_TIMEOUT).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_single_and_multi_line() {
        let ok =
            |text: &str, body: Option<&[u8]>| Answer { ok: true, text: text.into(), body: body.map(<[u8]>::to_vec) };
        assert_eq!(answer(b"+OK 2 320\r\nmore", false), Ok(Some((ok("2 320", None), 11))));
        assert_eq!(answer(b"+OK 2 320", false), Ok(None));
        let list = b"+OK 2 messages\r\n1 120\r\n..2 200\r\n.\r\n";
        assert_eq!(answer(list, true), Ok(Some((ok("2 messages", Some(b"1 120\r\n.2 200\r\n")), list.len()))));
        assert_eq!(answer(b"+OK\r\n.\r\n", true), Ok(Some((ok("", Some(b"")), 8))));
        assert_eq!(answer(b"+OK x\r\n1 1\r\n", true), Ok(None));
        // A -ERR is one line even where +OK would have more.
        let err = Answer { ok: false, text: "no".into(), body: None };
        assert_eq!(answer(b"-ERR no\r\n", true), Ok(Some((err, 9))));
        assert_eq!(answer(b"220 smtp\r\n", false), Err("a POP3 response starts with +OK or -ERR".into()));
        assert!(answer(&[b'+'; 600], false).unwrap_err().contains("over POP3's 512"));
    }
}
