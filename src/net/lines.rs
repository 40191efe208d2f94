//! Line protocols over a [`Stream`] (SMTP, POP3): the server's reader, which takes a line at a
//! time up to a cap and gives up on a client that idles, and the client's side, which sends a
//! command in one write and reads its answer, with a time limit and a size limit on each.

use super::Stream;
use crate::locale::en;
use color_eyre::eyre::{Result, eyre};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a server's reader found next on the socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A line, up to and with its LF.
    Line(Vec<u8>),
    /// A line over the limit, its bytes dropped: how long it was.
    TooLong(usize),
}

/// Why a server's reader stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed its side.
    Closed,
    /// The client sent nothing for the idle timeout.
    Idle,
    Io(std::io::Error),
}

/// How long a server that closed waits for the client's own close (its FIN, on the ladder).
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A server's side of one connection: buffered line reading with a cap and an idle timeout.
pub struct ServerLines {
    pub io: Stream,
    /// Bytes read and not yet taken as lines.
    buf: Vec<u8>,
    /// Dropping an over-long line until its end: octets dropped so far.
    dropping: Option<usize>,
    idle_timeout: Duration,
}

impl ServerLines {
    pub fn new(io: Stream, idle_timeout: Duration) -> Self {
        ServerLines { io, buf: Vec::new(), dropping: None, idle_timeout }
    }

    /// The next line, or an over-long line's length; never holds more than `limit` bytes of one
    /// line.
    pub async fn next(&mut self, limit: usize) -> std::result::Result<Input, ReadError> {
        loop {
            if let Some(dropped) = self.dropping {
                if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                    self.buf.drain(..=lf);
                    self.dropping = None;
                    return Ok(Input::TooLong(dropped + lf + 1));
                }
                self.dropping = Some(dropped + self.buf.len());
                self.buf.clear();
            } else if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                return Ok(Input::Line(self.buf.drain(..=lf).collect()));
            } else if self.buf.len() > limit {
                self.dropping = Some(self.buf.len());
                self.buf.clear();
                continue;
            }
            let mut chunk = [0u8; 8192];
            let n = match super::timeout(self.idle_timeout, self.io.read(&mut chunk)).await {
                Err(_) => return Err(ReadError::Idle),
                Ok(Err(e)) => return Err(ReadError::Io(e)),
                Ok(Ok(0)) => return Err(ReadError::Closed),
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one answer in one write, so the gate sees one message.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let written = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        written.await.map_err(|e| eyre!(en("writing to the client: {error}", &[("error", &e)])))
    }

    /// Closes our side after the last answer: see [`close`].
    pub async fn close(self) -> Result<()> {
        close(self.io).await
    }

    /// Turns the connection into TLS, the server's side (after STARTTLS or STLS, or at once on
    /// an implicit-TLS port). Bytes the client sent ahead of the handshake are dropped: they came
    /// in the clear, and a server that ran them inside TLS could run an attacker's commands
    /// (RFC 3207 §5). Returns how many were dropped.
    pub async fn start_tls(&mut self) -> Result<usize> {
        let dropped = self.buf.len();
        self.buf.clear();
        self.dropping = None;
        let io = std::mem::replace(&mut self.io, placeholder());
        let handshake = super::timeout(self.idle_timeout, crate::tls::accept(io));
        let secs = self.idle_timeout.as_secs();
        self.io = handshake.await.map_err(|_| {
            eyre!(en("the client did not finish the TLS handshake within {secs} s", &[("secs", &secs)]))
        })??;
        Ok(dropped)
    }
}

/// A stream that stands in while a connection is handed to TLS.
fn placeholder() -> Stream {
    Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()))
}

/// A server closes its side after its last answer, then waits briefly for the client's own
/// close, so its FIN is seen; whatever the client still sends is dropped.
pub async fn close(mut io: Stream) -> Result<()> {
    io.shutdown().await.map_err(|e| eyre!(en("closing the connection: {error}", &[("error", &e)])))?;
    let mut chunk = [0u8; 4096];
    let eof = async { while io.read(&mut chunk).await.is_ok_and(|n| n > 0) {} };
    let _ = super::timeout(CLOSE_WAIT, eof).await;
    Ok(())
}

/// What a client's reader makes of the bytes so far: an answer and its length, not yet
/// (`Ok(None)`), or why they are not an answer.
pub type Parsed<T> = std::result::Result<Option<(T, usize)>, String>;

/// A client's side of one connection: commands out, answers in.
pub struct ClientLines {
    pub io: Stream,
    /// Bytes read and not yet taken as answers.
    buf: Vec<u8>,
    /// How long the client waits for any one answer.
    timeout: Duration,
    /// The longest answer it reads.
    max: usize,
}

impl ClientLines {
    pub fn new(io: Stream, timeout: Duration, max: usize) -> Self {
        ClientLines { io, buf: Vec::new(), timeout, max }
    }

    /// Writes one message in one write, so the gate holds it as one; `what` names it for errors.
    pub async fn send(&mut self, bytes: &[u8], what: &str) -> Result<()> {
        let sent = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        sent.await.map_err(|e| eyre!(en("cannot send {what}: {error}", &[("what", &what), ("error", &e)])))
    }

    /// The next answer as `parse` reads it; `what` names what it answers, for errors.
    pub async fn read<T>(&mut self, what: &str, mut parse: impl FnMut(&[u8]) -> Parsed<T>) -> Result<T> {
        loop {
            match parse(&self.buf) {
                Ok(Some((answer, len))) => {
                    self.buf.drain(..len);
                    return Ok(answer);
                }
                Err(reason) => {
                    return Err(eyre!(en(
                        "the server's answer to {what} is malformed: {reason}",
                        &[("what", &what), ("reason", &reason)]
                    )));
                }
                Ok(None) => {}
            }
            if self.buf.len() > self.max {
                return Err(eyre!(en(
                    "the server's answer to {what} runs past {max} bytes",
                    &[("what", &what), ("max", &self.max)]
                )));
            }
            let mut chunk = [0u8; 8192];
            let n = match super::timeout(self.timeout, self.io.read(&mut chunk)).await {
                Err(_) => {
                    let s = self.timeout.as_secs();
                    return Err(eyre!(en("no reply to {what} within {s} s", &[("what", &what), ("s", &s)])));
                }
                Ok(Err(e)) => {
                    return Err(eyre!(en("reading the reply to {what}: {error}", &[("what", &what), ("error", &e)])));
                }
                Ok(Ok(0)) => {
                    return Err(eyre!(en(
                        "the server closed the connection instead of answering {what}",
                        &[("what", &what)]
                    )));
                }
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Turns the connection into TLS, the client's side, as `tls` says (the name it asks for, the
    /// CAs it trusts). A server that sent anything after agreeing is refused: those bytes came
    /// in the clear and would pass for answers inside TLS (RFC 3207 §5).
    pub async fn start_tls(&mut self, tls: &crate::tls::ClientTls) -> Result<()> {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            return Err(eyre!(en(
                "the server sent {n} bytes in the clear after agreeing to start TLS: refused",
                &[("n", &n)]
            )));
        }
        let io = std::mem::replace(&mut self.io, placeholder());
        let secs = self.timeout.as_secs();
        self.io =
            super::timeout(self.timeout, crate::tls::connect(io, tls.name()?, tls.cafile.as_deref())).await.map_err(
                |_| eyre!(en("the server did not finish the TLS handshake within {secs} s", &[("secs", &secs)])),
            )??;
        Ok(())
    }

    /// Waits up to `limit` for the server to close (EOF), then closes our side.
    pub async fn close(&mut self, limit: Duration) -> Result<()> {
        let mut chunk = [0u8; 4096];
        let eof = async {
            loop {
                match self.io.read(&mut chunk).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    // A TLS server that closes after its goodbye without close_notify (many
                    // mail servers do): the dialogue is over, nothing was cut short.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        };
        match super::timeout(limit, eof).await {
            Err(_) => {
                let _ = self.io.shutdown().await;
                let s = limit.as_secs();
                return Err(eyre!(en("the server did not close the connection within {s} s of QUIT", &[("s", &s)])));
            }
            Ok(Err(e)) => return Err(eyre!(en("waiting for the server to close: {error}", &[("error", &e)]))),
            Ok(Ok(())) => {}
        }
        self.io.shutdown().await.map_err(|e| eyre!(en("closing our side: {error}", &[("error", &e)])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_up_to_the_cap_and_over_long_ones_by_their_length() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut lines = ServerLines::new(Box::new(a), Duration::from_secs(5));
        let long = format!("{}\r\n", "x".repeat(20_000));
        b.write_all(format!("one\r\n{long}two\n").as_bytes()).await.unwrap();
        assert_eq!(lines.next(100).await.unwrap(), Input::Line(b"one\r\n".to_vec()));
        assert_eq!(lines.next(100).await.unwrap(), Input::TooLong(long.len()));
        assert_eq!(lines.next(100).await.unwrap(), Input::Line(b"two\n".to_vec()));
        drop(b);
        assert!(matches!(lines.next(100).await, Err(ReadError::Closed)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_says_nothing_is_idle_and_a_silent_server_times_out() {
        let (a, _b) = tokio::io::duplex(64);
        let mut lines = ServerLines::new(Box::new(a), Duration::from_secs(5));
        assert!(matches!(lines.next(100).await, Err(ReadError::Idle)));
        let (a, _b) = tokio::io::duplex(64);
        let mut client = ClientLines::new(Box::new(a), Duration::from_secs(3), 100);
        let e = client.read("STAT", |_| Ok(Some(((), 0)))).await;
        assert!(e.is_ok(), "an answer already complete needs no read");
        let e = client.read::<()>("STAT", |_| Ok(None)).await.unwrap_err();
        assert_eq!(e.to_string(), "no reply to STAT within 3 s");
    }
}
