//! Datagrams on the lab network: programs that serve a UDP port of a host's stack, and raw
//! frames for programs that speak before their host has an address (a DHCP client sends from
//! 0.0.0.0). Both run in the moment a frame reaches their host, so the frame's step shows the
//! state the program is in once it has taken the frame in. And ICMP echo sockets, for ping.

use super::{Inner, SimNet};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{icmp, udp};
use smoltcp::wire::{IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use std::io;
use std::net::SocketAddrV4;
use std::time::Duration;

/// Datagrams a UDP socket may queue each way.
const DATAGRAMS: usize = 16;

/// What a program attached to a host's card may do as a frame reaches it (see
/// [`SimNet::attach`]).
#[derive(Debug, Default)]
pub struct HostCtx {
    /// The network's clock now.
    pub now: Duration,
    /// Frames to put on the cable in answer.
    pub send: Vec<Vec<u8>>,
    /// The host's new state, shown with this frame's step.
    pub label: Option<String>,
    /// A new address for the host (`Some(None)` takes it away).
    pub address: Option<Option<(Ipv4Address, u8)>>,
}

/// A program on a host's card: it sees every frame delivered to the host, as it arrives.
pub type Handler = Box<dyn FnMut(&[u8], &mut HostCtx) + Send>;

/// What a program serving a UDP port may do with a datagram (see [`SimNet::serve_udp`]).
#[derive(Debug, Default)]
pub struct UdpCtx {
    /// The network's clock now.
    pub now: Duration,
    /// Datagrams to send from the same socket: payload and destination (255.255.255.255 for a
    /// broadcast).
    pub replies: Vec<(Vec<u8>, SocketAddrV4)>,
    /// The host's new state, shown with this datagram's step.
    pub label: Option<String>,
}

/// A program serving a UDP port: each datagram and its sender, as the host's stack takes it in.
pub type UdpProgram = Box<dyn FnMut(&[u8], SocketAddrV4, &mut UdpCtx) + Send>;

/// A program attached to a host's card (see [`SimNet::attach`]); taken off when dropped.
#[must_use = "the program is taken off the card when this is dropped"]
pub struct Attached {
    net: SimNet,
    host: usize,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.net.lock().taps[self.host] = None;
    }
}

/// A UDP port served by a program; the port closes when this is dropped.
pub struct ServedUdp {
    net: SimNet,
    host: usize,
    handle: SocketHandle,
}

impl Drop for ServedUdp {
    fn drop(&mut self) {
        let mut inner = self.net.lock();
        inner.programs.retain(|p| !(p.host == self.host && p.handle == self.handle));
        inner.hosts[self.host].sockets.remove(self.handle);
    }
}

/// A program and the socket it serves.
pub(super) struct Served {
    host: usize,
    handle: SocketHandle,
    program: UdpProgram,
}

impl Inner {
    /// Hands every datagram waiting on `host`'s served ports to its program and sends what the
    /// program answers. Returns whether anything was sent (the stack must be polled again).
    pub(super) fn run_programs(&mut self, host: usize, now: Duration) -> bool {
        let mut sent = false;
        let mut buf = vec![0u8; 1500];
        for served in self.programs.iter_mut().filter(|p| p.host == host) {
            let socket = self.hosts[host].sockets.get_mut::<udp::Socket>(served.handle);
            while let Ok((n, meta)) = socket.recv_slice(&mut buf) {
                let IpAddress::Ipv4(ip) = meta.endpoint.addr;
                let mut ctx = UdpCtx { now, ..UdpCtx::default() };
                (served.program)(&buf[..n], SocketAddrV4::new(ip, meta.endpoint.port), &mut ctx);
                for (data, to) in ctx.replies {
                    let endpoint = IpEndpoint::new(IpAddress::Ipv4(*to.ip()), to.port());
                    sent |= socket.send_slice(&data, endpoint).is_ok();
                }
                if let Some(label) = ctx.label {
                    self.labels[host] = Some(label);
                }
            }
        }
        sent
    }
}

impl SimNet {
    /// Serves UDP `port` of `host` with `program`, which takes each datagram in the moment the
    /// host's stack does. The socket stays bound until the returned guard is dropped.
    pub fn serve_udp(&self, host: usize, port: u16, program: UdpProgram) -> io::Result<ServedUdp> {
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; DATAGRAMS], vec![0; DATAGRAMS * 1500]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(port).map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, e.to_string()))?;
        let mut inner = self.lock();
        let handle = inner.hosts[host].sockets.add(socket);
        inner.programs.push(Served { host, handle, program });
        drop(inner);
        Ok(ServedUdp { net: self.clone(), host, handle })
    }

    /// Attaches a program to `host`'s card, beside its stack: it takes each frame delivered to
    /// the host in the same moment, so the step shows the host's state after it. It stays
    /// attached until the returned guard is dropped.
    pub fn attach(&self, host: usize, handler: Handler) -> Attached {
        self.lock().taps[host] = Some(handler);
        Attached { net: self.clone(), host }
    }

    /// Puts a whole Ethernet frame on the cable from `host`, as if its card sent it, with the
    /// state the lab says the host is in now.
    pub fn send_raw(&self, host: usize, frame: Vec<u8>) {
        let now = self.now();
        let mut inner = self.lock();
        let state = inner.labels[host].clone();
        let _ = inner.send(super::End::Host(host), frame, now, state);
        drop(inner);
        self.kick();
    }

    /// Gives `host` an address on the lab network (what a DHCP client does with its lease), or
    /// takes it away.
    pub fn set_address(&self, host: usize, address: Option<(Ipv4Address, u8)>) {
        let mut inner = self.lock();
        inner.hosts[host].iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some((ip, prefix)) = address {
                let _ = addrs.push(IpCidr::new(ip.into(), prefix));
            }
        });
        drop(inner);
        self.kick();
    }
}

/// An ICMP socket on a host for echo messages of one identifier (what `ping` opens): what it
/// sends goes through the host's stack (its routes, its ARP). Closed when dropped.
pub struct EchoSocket {
    net: SimNet,
    host: usize,
    handle: SocketHandle,
}

impl SimNet {
    /// An ICMP socket on `host` for echo messages with identifier `ident`.
    pub fn echo_socket(&self, host: usize, ident: u16) -> io::Result<EchoSocket> {
        let buffer =
            || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; DATAGRAMS], vec![0; DATAGRAMS * 1500]);
        let mut socket = icmp::Socket::new(buffer(), buffer());
        socket
            .bind(icmp::Endpoint::Ident(ident))
            .map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, e.to_string()))?;
        let handle = self.lock().hosts[host].sockets.add(socket);
        Ok(EchoSocket { net: self.clone(), host, handle })
    }

    /// Waits until the network's clock reads `at` (it stops while a frame waits at the gate).
    pub async fn sleep_until(&self, at: Duration) {
        loop {
            self.while_held().await;
            let left = at.saturating_sub(self.now());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left + Duration::from_millis(1)).await;
        }
    }
}

impl EchoSocket {
    /// Sends an ICMP message (its checksum already written) to `dst`.
    pub fn send(&self, dst: Ipv4Address, message: &[u8]) -> io::Result<()> {
        self.send_ttl(dst, None, message)
    }

    /// Sends an ICMP message in a packet whose TTL is `ttl` (the host's default if `None`).
    pub fn send_ttl(&self, dst: Ipv4Address, ttl: Option<u8>, message: &[u8]) -> io::Result<()> {
        let mut inner = self.net.lock();
        let socket = inner.hosts[self.host].sockets.get_mut::<icmp::Socket>(self.handle);
        socket.set_hop_limit(ttl);
        // Replies are read off the card (see [`SimNet::attach`]): the socket's copies go.
        while socket.recv().is_ok() {}
        socket.send_slice(message, IpAddress::Ipv4(dst)).map_err(|e| io::Error::other(e.to_string()))?;
        drop(inner);
        self.net.kick();
        Ok(())
    }
}

impl Drop for EchoSocket {
    fn drop(&mut self) {
        self.net.lock().hosts[self.host].sockets.remove(self.handle);
    }
}

/// A UDP socket on a host that sends datagrams with a TTL of its choice (what traceroute
/// opens); what comes back is read off the card (see [`SimNet::attach`]). Closed when dropped.
pub struct ProbeSocket {
    net: SimNet,
    host: usize,
    handle: SocketHandle,
}

impl SimNet {
    /// A UDP socket on `host`, bound to `port`, for probes.
    pub fn probe_socket(&self, host: usize, port: u16) -> io::Result<ProbeSocket> {
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; DATAGRAMS], vec![0; DATAGRAMS * 1500]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(port).map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, e.to_string()))?;
        let handle = self.lock().hosts[host].sockets.add(socket);
        Ok(ProbeSocket { net: self.clone(), host, handle })
    }
}

impl ProbeSocket {
    /// Sends `payload` to `to` in a packet whose TTL is `ttl`.
    pub fn send(&self, to: SocketAddrV4, ttl: u8, payload: &[u8]) -> io::Result<()> {
        let mut inner = self.net.lock();
        let socket = inner.hosts[self.host].sockets.get_mut::<udp::Socket>(self.handle);
        while socket.recv().is_ok() {}
        socket.set_hop_limit(Some(ttl));
        let endpoint = IpEndpoint::new(IpAddress::Ipv4(*to.ip()), to.port());
        socket.send_slice(payload, endpoint).map_err(|e| io::Error::other(e.to_string()))?;
        drop(inner);
        self.net.kick();
        Ok(())
    }
}

impl Drop for ProbeSocket {
    fn drop(&mut self) {
        self.net.lock().hosts[self.host].sockets.remove(self.handle);
    }
}
