//! Limits on one outside client's session (`serve`): a client that reads nothing must not hold
//! its slot forever (its writes stall), nor one that sends a byte a minute (the session's whole
//! length is capped). Each lab keeps its own idle timeout, which answers in the protocol's words
//! (SMTP's 421); these limits are the floor under every lab.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a session may go on, and how long a write may wait for the client to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole session, however busy.
    pub session: Duration,
    /// One write waiting for room (the client reads nothing).
    pub write_stall: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { session: Duration::from_secs(15 * 60), write_stall: Duration::from_secs(60) }
    }
}

/// The reason a session ended at one of its [`Limits`]: the server's decision, not the
/// client's, so the steps show it as the server's (see [`reached`]).
#[derive(Debug)]
pub struct LimitReached(String);

impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitReached {}

fn limit_error(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, LimitReached(reason))
}

/// Whether `e` is a session ended at its limit (and not a fault of the connection).
pub fn reached(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<LimitReached>())
}

/// A stream whose session ends (with a `TimedOut` error, for reads and writes alike) once its
/// time is up or a write has waited too long.
pub struct Limited<S> {
    inner: S,
    limits: Limits,
    /// When the session's time is up.
    end: Pin<Box<Sleep>>,
    /// While a write waits for room: when it gives up.
    stall: Option<Pin<Box<Sleep>>>,
}

impl<S> Limited<S> {
    pub fn new(inner: S, limits: Limits) -> Self {
        Limited { inner, limits, end: Box::pin(tokio::time::sleep(limits.session)), stall: None }
    }

    /// The error once the session's time is up, if it is.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let limit = self.limits.session;
        self.end
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| limit_error(format!("the session reached its limit of {limit:?}")))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx) {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                this.stall = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = this.limits.write_stall;
                let stall =
                    this.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
                if stall.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(limit_error(format!(
                        "the client read nothing for {limit:?}: its writes could not go"
                    ))));
                }
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_client_that_reads_nothing_ends_its_session() {
        let (a, _b) = tokio::io::duplex(16);
        let limits = Limits { session: Duration::from_secs(3600), write_stall: Duration::from_secs(60) };
        let mut s = Limited::new(a, limits);
        let err = s.write_all(&[0u8; 1024]).await.expect_err("the peer never reads");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(reached(&err) && err.to_string().contains("read nothing"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_at_its_limit_however_busy() {
        let (a, mut b) = tokio::io::duplex(1024);
        let limits = Limits { session: Duration::from_secs(600), write_stall: Duration::from_secs(60) };
        let start = Instant::now();
        let mut s = Limited::new(a, limits);
        // A byte a minute keeps a read-idle timer happy forever; not this one.
        let feeder = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if b.write_all(b"x").await.is_err() {
                    return;
                }
            }
        });
        let mut byte = [0u8; 1];
        let ended = loop {
            match s.read(&mut byte).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(ended.kind(), io::ErrorKind::TimedOut);
        let lasted = start.elapsed();
        assert!((600..660).contains(&lasted.as_secs()), "it lasted {lasted:?}");
        feeder.abort();
    }
}
