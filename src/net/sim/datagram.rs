//! Datagrams on the lab network: UDP sockets of a host's stack, and raw frames for programs
//! that speak before their host has an address (a DHCP client sends from 0.0.0.0).

use super::{Inner, SimNet};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use std::io;
use std::net::SocketAddrV4;
use std::task::Poll;

/// Datagrams a UDP socket may queue each way.
const DATAGRAMS: usize = 16;

/// A UDP socket on one host of the lab network.
pub struct SimUdp {
    net: SimNet,
    host: usize,
    handle: SocketHandle,
}

fn udp(inner: &mut Inner, host: usize, handle: SocketHandle) -> &mut udp::Socket<'static> {
    inner.hosts[host].sockets.get_mut::<udp::Socket>(handle)
}

impl SimUdp {
    /// Sends a datagram (to 255.255.255.255 for a broadcast).
    pub async fn send_to(&self, data: &[u8], to: SocketAddrV4) -> io::Result<()> {
        let endpoint = IpEndpoint::new(IpAddress::Ipv4(*to.ip()), to.port());
        std::future::poll_fn(|cx| {
            let mut inner = self.net.lock();
            let socket = udp(&mut inner, self.host, self.handle);
            if !socket.can_send() {
                socket.register_send_waker(cx.waker());
                return Poll::Pending;
            }
            Poll::Ready(socket.send_slice(data, endpoint).map_err(|e| io::Error::other(e.to_string())))
        })
        .await?;
        self.net.kick();
        Ok(())
    }

    /// Receives a datagram: its length and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        std::future::poll_fn(|cx| {
            let mut inner = self.net.lock();
            let socket = udp(&mut inner, self.host, self.handle);
            if !socket.can_recv() {
                socket.register_recv_waker(cx.waker());
                return Poll::Pending;
            }
            let (n, meta) = socket.recv_slice(buf).map_err(|e| io::Error::other(e.to_string()))?;
            let IpAddress::Ipv4(ip) = meta.endpoint.addr;
            Poll::Ready(Ok((n, SocketAddrV4::new(ip, meta.endpoint.port))))
        })
        .await
    }
}

impl Drop for SimUdp {
    fn drop(&mut self) {
        self.net.lock().hosts[self.host].sockets.remove(self.handle);
    }
}

/// What a program attached to a host's card may do as a frame reaches it (see
/// [`SimNet::attach`]).
#[derive(Debug, Default)]
pub struct HostCtx {
    /// The network's clock now.
    pub now: std::time::Duration,
    /// Frames to put on the cable in answer.
    pub send: Vec<Vec<u8>>,
    /// The host's new state, shown with this frame's step.
    pub label: Option<String>,
    /// A new address for the host (`Some(None)` takes it away).
    pub address: Option<Option<(Ipv4Address, u8)>>,
}

/// A program on a host's card: it sees every frame delivered to the host, as it arrives.
pub type Handler = Box<dyn FnMut(&[u8], &mut HostCtx) + Send>;

impl SimNet {
    /// A UDP socket on `host`, bound to `port`.
    pub fn udp(&self, host: usize, port: u16) -> io::Result<SimUdp> {
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; DATAGRAMS], vec![0; DATAGRAMS * 1500]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(port).map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, e.to_string()))?;
        let handle = self.lock().hosts[host].sockets.add(socket);
        Ok(SimUdp { net: self.clone(), host, handle })
    }

    /// Attaches a program to `host`'s card, beside its stack: it takes each frame delivered to
    /// the host in the same moment, so the step shows the host's state after it.
    pub fn attach(&self, host: usize, handler: Handler) {
        self.lock().taps[host] = Some(handler);
    }

    pub fn detach(&self, host: usize) {
        self.lock().taps[host] = None;
    }

    /// Puts a whole Ethernet frame on the cable from `host`, as if its card sent it.
    pub fn send_raw(&self, host: usize, frame: Vec<u8>) {
        self.lock().hosts[host].port.tx.push_back(frame);
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
