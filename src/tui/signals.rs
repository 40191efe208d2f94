//! The signals that end the TUI from outside: SIGTERM, SIGINT (`kill -INT`: in raw mode Ctrl-C is
//! a key), SIGHUP (the terminal closed) and SIGQUIT. They are caught before the terminal changes
//! mode, arrive in the event loop like any other event, and, once the terminal is restored, the
//! process dies of the same signal, as if it had never been caught.

#[cfg(unix)]
use std::future::poll_fn;
#[cfg(unix)]
use std::task::Poll;

/// The terminating signals the TUI catches.
#[cfg(unix)]
pub const CAUGHT: [i32; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

/// Listeners for [`CAUGHT`]; from `catch` on, those signals no longer kill the process but wait
/// for [`Signals::recv`].
pub struct Signals {
    #[cfg(unix)]
    listeners: Vec<(i32, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Starts catching. Call it before the terminal changes mode: a signal arriving from then on
    /// waits for the event loop, which restores the terminal.
    #[cfg(unix)]
    pub fn catch() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let listeners =
            CAUGHT.iter().map(|&n| Ok((n, signal(SignalKind::from_raw(n))?))).collect::<std::io::Result<_>>()?;
        Ok(Signals { listeners })
    }

    #[cfg(not(unix))]
    pub fn catch() -> std::io::Result<Self> {
        Ok(Signals {})
    }

    /// The next caught signal's number.
    #[cfg(unix)]
    pub async fn recv(&mut self) -> i32 {
        poll_fn(|cx| {
            for (n, listener) in &mut self.listeners {
                if listener.poll_recv(cx).is_ready() {
                    return Poll::Ready(*n);
                }
            }
            Poll::Pending
        })
        .await
    }

    #[cfg(not(unix))]
    pub async fn recv(&mut self) -> i32 {
        std::future::pending().await
    }
}

/// Dies of `signal` with its default action, so the parent sees what it sent (a shell reports
/// 128 + the number: 129 SIGHUP, 130 SIGINT, 131 SIGQUIT, 143 SIGTERM) and a script or a shell
/// loop stops as it would for any program killed by it. Call it once the terminal is restored.
///
/// SIGQUIT's default action also dumps core: the core would show this function, not what the
/// process was doing when the signal came, so none is written.
#[cfg(unix)]
pub fn die_of(signal: i32) -> ! {
    // SAFETY: plain libc calls on values built here; nothing returns into Rust state that could
    // be left inconsistent, since the process ends.
    unsafe {
        if signal == libc::SIGQUIT {
            let mut limit: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_CORE, &mut limit) == 0 {
                limit.rlim_cur = 0;
                libc::setrlimit(libc::RLIMIT_CORE, &limit);
            }
        }
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    // Not reached: the default action of each caught signal ends the process.
    std::process::exit(128 + signal)
}

/// Where no signal is caught, none arrives; this keeps the one exit path.
#[cfg(not(unix))]
pub fn die_of(signal: i32) -> ! {
    std::process::exit(128 + signal)
}
