//! The wires that move a lab's bytes. `host`: real kernel sockets (loopback by default, or a
//! real remote peer), each stream wrapped in a [`TapStream`] that records it and obeys the [`Gate`].

pub mod gate;
pub mod tap;

pub use gate::{Elapsed, Gate, GateEvent, timeout, with_gate};
pub use tap::{Dir, Recorder, TapStream};

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// How long a connect may take before the lab reports the peer unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream a lab can talk over, whatever wire carries it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// The stream labs are handed: tapped, gated, wire-independent.
pub type Stream = Box<dyn Io>;

/// Which wire a lab runs on. The userspace `sim` wire comes with the lab network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Wire {
    /// Real kernel sockets.
    #[default]
    Host,
}

/// A listening socket on some wire.
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        let (s, peer) = self.inner.accept().await?;
        s.set_nodelay(true)?;
        Ok((Box::new(s), peer))
    }
}

impl Wire {
    pub async fn listen(self, addr: &str) -> io::Result<Listener> {
        Ok(Listener { inner: TcpListener::bind(addr).await? })
    }

    pub async fn connect(self, addr: &str) -> io::Result<Stream> {
        let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await.map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {addr} in {CONNECT_TIMEOUT:?}"))
        })??;
        s.set_nodelay(true)?;
        Ok(Box::new(s))
    }
}
