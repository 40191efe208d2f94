//! The wires that move a lab's bytes. `host`: real kernel sockets (loopback by default, or a
//! real remote peer); `sim`: the lab network of [`sim`], a userspace TCP/IP stack whose every
//! frame is a step. Streams are wrapped in a [`TapStream`] that records their messages.

pub mod capture;
pub mod gate;
pub mod host;
pub mod limits;
pub mod lines;
pub mod raw;
pub mod sim;
pub mod tap;

pub use gate::{Elapsed, Gate, GateEvent, Release, with_gate};
pub use tap::{Dir, Recorder, TapStream};

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub use gate::timeout;

/// How long a connect may take before the lab reports the peer unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections the kernel completes and holds for a listener until it accepts them (the kernel
/// caps it at `net.core.somaxconn`). Past it, a client's handshake is dropped and it waits a
/// retransmission, 1 s then 3 s: std's and tokio's 128 make a burst of 200 clients stall.
const BACKLOG: u32 = 1024;

/// A byte stream a lab can talk over, whatever wire carries it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// The stream labs are handed: tapped, gated, wire-independent.
pub type Stream = Box<dyn Io>;

/// Which steps carried the bytes a stream has returned, on wires that see the segments.
pub trait Carriers: Send {
    /// The `seq`s of the frame steps that delivered the next `n` bytes read.
    fn take(&mut self, n: usize) -> Vec<u64>;
}

/// A new connection, and where its bytes came from when the wire knows.
pub struct Conn {
    pub io: Stream,
    pub carriers: Option<Box<dyn Carriers>>,
}

/// Which wire a lab runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    /// Real kernel sockets.
    #[default]
    Host,
    /// The lab network: a userspace TCP/IP stack where every frame is seen and held.
    Sim,
}

/// A network a lab talks over: kernel sockets, or one lab network.
#[derive(Clone)]
pub enum Net {
    Host(host::HostNet),
    Sim(sim::SimNet),
}

/// A listening socket on some wire.
pub enum Listener {
    Host(TcpListener),
    Sim(sim::SimListener),
}

impl Listener {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Host(l) => l.local_addr(),
            Listener::Sim(l) => Ok(l.local_addr()),
        }
    }

    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        let (conn, peer) = self.accept_conn().await?;
        Ok((conn.io, peer))
    }

    /// Accepts a connection, with its carriers on the sim wire.
    pub async fn accept_conn(&self) -> io::Result<(Conn, SocketAddr)> {
        match self {
            Listener::Host(l) => {
                let (s, peer) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok((Conn { io: Box::new(s), carriers: None }, peer))
            }
            Listener::Sim(l) => {
                let (s, peer) = l.accept().await?;
                let carriers: Box<dyn Carriers> = Box::new(s.carriers());
                Ok((Conn { io: Box::new(s), carriers: Some(carriers) }, peer))
            }
        }
    }
}

impl Wire {
    /// A network on this wire for one run. The sim wire's frames become steps in `sink` and
    /// wait at `gate`, on a network of the lab's shape; on the host wire the client's connect
    /// waits there.
    pub fn open(
        self,
        sink: &crate::session::StepSink,
        gate: &std::sync::Arc<Gate>,
        faults: sim::Faults,
        topology: sim::Topology,
    ) -> Net {
        match self {
            Wire::Host => Net::Host(host::HostNet::for_run(sink.clone(), gate.clone())),
            Wire::Sim => Net::Sim(sim::SimNet::with_topology(topology, sink.clone(), gate.clone(), faults)),
        }
    }

    /// The wire itself, for `serve` and `listen` on kernel sockets.
    pub async fn listen(self, addr: &str) -> io::Result<Listener> {
        Net::Host(host::HostNet::default()).listen(addr).await
    }
}

impl Net {
    /// Where an embedded server listens on this network for a lab whose port is `port`:
    /// any free loopback port on the host, the lab's own port on the lab network.
    pub fn server_addr(&self, port: u16) -> String {
        match self {
            Net::Host(_) => "127.0.0.1:0".into(),
            Net::Sim(sim) => format!("{}:{port}", sim.server_ip()),
        }
    }

    pub async fn listen(&self, addr: &str) -> io::Result<Listener> {
        match self {
            Net::Host(_) => Ok(Listener::Host(listen_host(parse(addr)?)?)),
            Net::Sim(net) => Ok(Listener::Sim(net.listen(parse(addr)?.port())?)),
        }
    }

    pub async fn connect(&self, addr: &str) -> io::Result<Stream> {
        Ok(self.connect_conn(addr).await?.io)
    }

    /// Connects, with the connection's carriers on the sim wire.
    pub async fn connect_conn(&self, addr: &str) -> io::Result<Conn> {
        match self {
            Net::Host(net) => net.connect(addr).await,
            Net::Sim(net) => {
                let timed_out =
                    || io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {addr} in {CONNECT_TIMEOUT:?}"));
                let s = timeout(CONNECT_TIMEOUT, net.connect(parse(addr)?)).await.map_err(|_| timed_out())??;
                let carriers: Box<dyn Carriers> = Box::new(s.carriers());
                Ok(Conn { io: Box::new(s), carriers: Some(carriers) })
            }
        }
    }

    /// An address near `server` where nothing should listen: on the host, a port of ours just
    /// bound and let go; the next port on the lab network (where the lab decides what listens)
    /// or on a remote host.
    pub async fn closed_port(&self, server: SocketAddr) -> SocketAddr {
        let next = SocketAddr::new(server.ip(), server.port().wrapping_add(1));
        match self {
            Net::Host(_) => match TcpListener::bind((server.ip(), 0)).await.and_then(|l| l.local_addr()) {
                Ok(freed) => freed,
                Err(_) => next,
            },
            Net::Sim(_) => next,
        }
    }

    /// Names the connections to or from `port` (`closed-port`), for labs with more than one:
    /// their steps carry the name as `conn`.
    pub fn name_connection(&self, port: u16, name: &str) {
        match self {
            Net::Host(net) => net.name_connection(port, name),
            Net::Sim(net) => net.name_connection(port, name),
        }
    }

    /// Shows what the socket API alone cannot: true on the sim wire, where the real FIN and
    /// RST segments are steps of their own.
    pub fn shows_segments(&self) -> bool {
        matches!(self, Net::Sim(_))
    }
}

fn parse(addr: &str) -> io::Result<SocketAddr> {
    addr.parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} is not an IPv4 address and port")))
}

/// A kernel listener as `TcpListener::bind` makes one (SO_REUSEADDR), with room for a burst.
fn listen_host(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
