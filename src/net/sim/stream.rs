//! Byte streams over the sim wire: a smoltcp TCP socket as AsyncRead + AsyncWrite, so the
//! same lab code runs on kernel sockets and on the lab network.

use super::{CLIENT, SERVER, SimNet};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::wire::{IpAddress, IpEndpoint};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One end of a TCP connection on the lab network.
pub struct SimStream {
    net: SimNet,
    /// Which host the socket lives on.
    host: usize,
    handle: SocketHandle,
}

fn to_std(ep: IpEndpoint) -> SocketAddr {
    let IpAddress::Ipv4(ip) = ep.addr;
    SocketAddr::from((ip.octets(), ep.port))
}

/// The frames that delivered a stream's bytes, in the order the stream returns them.
pub struct SimCarriers {
    net: SimNet,
    host: usize,
    handle: SocketHandle,
    /// Bytes of the stream read so far.
    read: u64,
}

impl SimStream {
    /// Ends the connection at once with a RST (RFC 9293 §3.10.7.1's ABORT), as a port
    /// scanner does once connect() has told it the port is open.
    pub fn abort(self) {
        self.net.lock().hosts[self.host].tcp(self.handle).abort();
        self.net.kick();
    }

    /// What will say which frames carried the bytes this stream returns.
    pub fn carriers(&self) -> SimCarriers {
        SimCarriers { net: self.net.clone(), host: self.host, handle: self.handle, read: 0 }
    }
}

impl crate::net::Carriers for SimCarriers {
    fn take(&mut self, n: usize) -> Vec<u64> {
        let span = self.read..self.read + n as u64;
        self.read = span.end;
        let mut inner = self.net.lock();
        let Some(log) = inner.deliveries.get_mut(&(self.host, self.handle)) else { return Vec::new() };
        let mut seqs: Vec<u64> =
            log.iter().filter(|(r, _)| r.start < span.end && span.start < r.end).map(|&(_, seq)| seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        log.retain(|(r, _)| r.end > span.end);
        seqs
    }
}

impl AsyncRead for SimStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.net.lock();
        let socket = inner.hosts[self.host].tcp(self.handle);
        if socket.can_recv() {
            let n = socket.recv_slice(buf.initialize_unfilled()).map_err(|e| io::Error::other(e.to_string()))?;
            buf.advance(n);
            drop(inner);
            // The window opened: the stack may want to say so.
            self.net.kick();
            return Poll::Ready(Ok(()));
        }
        if !socket.may_recv() {
            // The peer's FIN arrived (or the connection is gone): end of stream.
            return Poll::Ready(Ok(()));
        }
        socket.register_recv_waker(cx.waker());
        Poll::Pending
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.net.lock();
        let socket = inner.hosts[self.host].tcp(self.handle);
        if !socket.may_send() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed for sending")));
        }
        if socket.can_send() {
            let n = socket.send_slice(data).map_err(|e| io::Error::other(e.to_string()))?;
            drop(inner);
            self.net.kick();
            return Poll::Ready(Ok(n));
        }
        socket.register_send_waker(cx.waker());
        Poll::Pending
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes in the socket's buffer are the stack's to send; nothing is held here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.net.lock().hosts[self.host].tcp(self.handle).close();
        self.net.kick();
        Poll::Ready(Ok(()))
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        self.net.release(self.host, self.handle);
    }
}

/// A listening port on a host (the server, unless told otherwise). One socket listens at a
/// time (a backlog of one); when it is taken by `accept`, a fresh one listens.
pub struct SimListener {
    net: SimNet,
    host: usize,
    port: u16,
    listening: Mutex<SocketHandle>,
}

impl SimListener {
    pub fn local_addr(&self) -> SocketAddr {
        let ip = self.net.lock().topology.hosts[self.host].ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        SocketAddr::from((ip.octets(), self.port))
    }

    pub async fn accept(&self) -> io::Result<(SimStream, SocketAddr)> {
        std::future::poll_fn(|cx| {
            let mut listening = self.listening.lock().unwrap_or_else(|e| e.into_inner());
            let mut inner = self.net.lock();
            let socket = inner.hosts[self.host].tcp(*listening);
            match socket.state() {
                State::Listen | State::SynReceived => {
                    socket.register_recv_waker(cx.waker());
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                _ => {
                    let peer = socket.remote_endpoint().map(to_std);
                    drop(inner);
                    let taken = std::mem::replace(&mut *listening, listen(&self.net, self.host, self.port)?);
                    let stream = SimStream { net: self.net.clone(), host: self.host, handle: taken };
                    let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    Poll::Ready(Ok((stream, peer)))
                }
            }
        })
        .await
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        let handle = *self.listening.lock().unwrap_or_else(|e| e.into_inner());
        self.net.release(self.host, handle);
    }
}

fn listen(net: &SimNet, host: usize, port: u16) -> io::Result<SocketHandle> {
    let handle = net.new_socket(host);
    net.lock().hosts[host]
        .tcp(handle)
        .listen(port)
        .map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, e.to_string()))?;
    Ok(handle)
}

impl SimNet {
    /// Listens on `port` of the server host.
    pub fn listen(&self, port: u16) -> io::Result<SimListener> {
        self.listen_on(SERVER, port)
    }

    /// Listens on `port` of `host`.
    pub fn listen_on(&self, host: usize, port: u16) -> io::Result<SimListener> {
        let handle = listen(self, host, port)?;
        Ok(SimListener { net: self.clone(), host, port, listening: Mutex::new(handle) })
    }

    /// Connects from the client host to `addr` on the lab network. A RST answer is
    /// "connection refused", as with kernel sockets.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<SimStream> {
        self.connect_from(CLIENT, addr).await
    }

    /// Connects from `host` to `addr` on the lab network.
    pub async fn connect_from(&self, host: usize, addr: SocketAddr) -> io::Result<SimStream> {
        self.connect_named(host, addr, None).await
    }

    /// Connects from `host` to `addr`, the connection's frames named `name` (several clients of
    /// one server port: each its own name).
    pub async fn connect_named(&self, host: usize, addr: SocketAddr, name: Option<&str>) -> io::Result<SimStream> {
        let SocketAddr::V4(v4) = addr else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the lab network is IPv4"));
        };
        let remote = IpEndpoint::new(IpAddress::Ipv4(v4.ip().octets().into()), v4.port());
        let local_port = 49152 + rand::random::<u16>() % 16384;
        if let Some(name) = name {
            self.name_connection(local_port, name);
        }
        let handle = self.new_socket(host);
        {
            let mut inner = self.lock();
            let host = &mut inner.hosts[host];
            let socket = host.sockets.get_mut::<smoltcp::socket::tcp::Socket>(handle);
            socket
                .connect(host.iface.context(), remote, local_port)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        }
        self.kick();
        let stream = SimStream { net: self.clone(), host, handle };
        std::future::poll_fn(|cx| {
            let mut inner = self.lock();
            let socket = inner.hosts[host].tcp(handle);
            match socket.state() {
                State::SynSent => {
                    socket.register_recv_waker(cx.waker());
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                State::Closed => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("connection refused: {addr} answered RST"),
                ))),
                _ => Poll::Ready(Ok(())),
            }
        })
        .await?;
        Ok(stream)
    }
}

impl SimNet {
    /// A connection from `host` to `listener`, named `conn`, whose messages are steps: both ends
    /// tapped into one recorder that names them `names` (client, server) and decodes with
    /// `decoders`; each message's carriers are its own segments. Returns the client's end,
    /// the server's end, and the client's address as the server saw it.
    pub async fn tapped(
        &self,
        host: usize,
        listener: &SimListener,
        conn: &str,
        names: [&str; 2],
        decoders: (Box<dyn crate::wire::Decoder>, Box<dyn crate::wire::Decoder>),
    ) -> color_eyre::Result<(crate::net::Stream, crate::net::Stream, SocketAddr)> {
        use crate::net::{Carriers, Dir, Gate, Recorder, TapStream};
        use color_eyre::eyre::WrapErr;
        let to = listener.local_addr();
        let (client, server) = tokio::join!(self.connect_named(host, to, Some(conn)), listener.accept());
        let client = client.wrap_err_with(|| crate::locale::en("cannot connect to {target}", &[("target", &to)]))?;
        let (server, peer) = server?;
        let rec = Recorder::new(self.sink().for_conn(conn), names, decoders);
        rec.set_close_steps(false);
        let tap = |io: SimStream, out: Dir| -> crate::net::Stream {
            let carriers: Box<dyn Carriers> = Box::new(io.carriers());
            Box::new(TapStream::new(io, rec.clone(), out, false, Gate::free()).reading(Some(carriers)))
        };
        Ok((tap(client, Dir::ClientToServer), tap(server, Dir::ServerToClient), peer))
    }
}
