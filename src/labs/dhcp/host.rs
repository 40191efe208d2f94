//! DHCP on a real interface, for real peers: the lab's server on UDP port 67 of the interface
//! named on the command line (and no other), and the lab's client, which speaks in raw frames
//! because it has no address to send from. Both need privileges; without them each says, in
//! one line, what is missing and how to grant it.

use super::client::{Client, ClientConfig, Outgoing, State};
use super::lease::{Instant, PoolConfig};
use super::server::Server;
use super::wire;
use crate::net::raw::{self, RawSocket};
use crate::session::{Step, StepSink};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// How long the client waits for its lease.
const PATIENCE: Duration = Duration::from_secs(30);

/// A step for a DHCP message seen as a datagram (the server's socket shows no frames).
fn datagram_step(payload: &[u8], from: &str, to: &str) -> Step {
    wire::describe(payload, 0).into_step(from, to, payload.to_vec(), payload.len())
}

/// A step for a whole frame the client sent or received on the interface.
fn frame_step(frame: &[u8], from: &str, to: &str) -> Step {
    let msg = crate::wire::frame::decode_captured(frame);
    Step { frame: true, ..msg.into_step(from, to, frame.to_vec(), frame.len()) }
}

/// Serves DHCP on `interface` only, lending addresses of the lab subnet (192.0.2.0/24). The
/// interface must have its address in that subnet: it is the server's identifier. Ends after
/// `sessions` clients got their answer (ACK or NAK), or never.
pub async fn serve(interface: &str, sink: StepSink, sessions: Option<u32>) -> Result<()> {
    let config = PoolConfig::default();
    let server_ip = raw::ipv4_of(interface)
        .ok_or_else(|| eyre!("{interface} has no IPv4 address: give it one in the lab subnet, e.g. ip addr add 192.0.2.2/24 dev {interface}"))?;
    if !config.in_subnet(server_ip) {
        bail!(
            "{interface} has {server_ip}, outside the lab subnet 192.0.2.0/24: the lab server lends only lab addresses"
        );
    }
    let config = PoolConfig { server_id: server_ip, router: server_ip, dns: vec![server_ip], ..config };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    // Only this interface: a DHCP server must never answer on a network it was not given.
    socket
        .bind_device(Some(interface.as_bytes()))
        .map_err(|e| raw::explain(e, &format!("listening on {interface} only")))?;
    socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67).into()).map_err(|e| raw::explain(e, "UDP port 67"))?;
    socket.set_nonblocking(true)?;
    let udp = tokio::net::UdpSocket::from_std(socket.into())?;
    eprintln!("listening on 0.0.0.0:67 ({interface}, server {server_ip})");
    let mut server = Server::new(config);
    let start = std::time::Instant::now();
    let mut answered = 0;
    let mut buf = vec![0u8; 1500];
    while sessions.is_none_or(|n| answered < n) {
        let (n, from) = udp.recv_from(&mut buf).await?;
        sink.emit(datagram_step(&buf[..n], &format!("client {from}"), "server"));
        let Some(reply) = server.handle_bytes(&buf[..n], Instant::from_duration(start.elapsed())) else { continue };
        let bytes = reply.bytes();
        udp.send_to(&bytes, reply.addr()).await?;
        let to = reply.addr();
        sink.emit(datagram_step(&bytes, "server", &format!("client {to}")));
        let kind = reply.message.opts().msg_type();
        if matches!(kind, Some(dhcproto::v4::MessageType::Ack | dhcproto::v4::MessageType::Nak)) {
            answered += 1;
        }
    }
    Ok(())
}

/// Gets a lease from whatever DHCP server answers on `interface` (DORA), shows it, and gives
/// it back (RELEASE). The interface's own configuration is not touched.
pub async fn client(interface: &str, sink: StepSink) -> Result<()> {
    let raw = RawSocket::open(interface)?;
    let mac = raw::mac_of(interface)?;
    let mut client = Client::new(ClientConfig { mac, ..ClientConfig::default() });
    let start = std::time::Instant::now();
    let now = || Instant::from_duration(start.elapsed());
    let mut server_mac = [0xff; 6];
    let send = |out: Option<Outgoing>, server_mac: [u8; 6]| {
        out.and_then(|o| {
            let dst = if o.is_broadcast() { [0xff; 6] } else { server_mac };
            let mut frame = Vec::new();
            etherparse::PacketBuilder::ethernet2(mac, dst)
                .ipv4(o.from.ip().octets(), o.to.ip().octets(), 64)
                .udp(o.from.port(), o.to.port())
                .write(&mut frame, &o.bytes())
                .ok()?;
            Some(frame)
        })
    };
    let mut pending = send(client.start(now()), server_mac);
    let dora = async {
        let mut buf = vec![0u8; 2048];
        loop {
            if let Some(frame) = pending.take() {
                raw.send(&frame).await?;
                sink.emit(frame_step(&frame, "client", "server"));
            }
            if client.state() == State::Bound {
                return Ok::<(), color_eyre::Report>(());
            }
            let wait = client.next_timer().map_or(PATIENCE, |t| t - now());
            tokio::select! {
                n = raw.recv(&mut buf) => {
                    let n = n?;
                    let frame = &buf[..n];
                    let Some((_, 68, range)) = crate::wire::frame::udp_payload(frame) else { continue };
                    let Ok(msg) = wire::parse(&frame[range]) else { continue };
                    if msg.xid() != client.xid().0 {
                        continue;
                    }
                    sink.emit(frame_step(frame, "server", "client"));
                    server_mac.copy_from_slice(&frame[6..12]);
                    let was = client.state();
                    pending = send(client.on_message(&msg, now()), server_mac);
                    if client.state() == State::Init && was != State::Init {
                        bail!("the server refused: {}", wire::describe(&frame[42.min(frame.len())..], 0).summary);
                    }
                }
                () = tokio::time::sleep(wait) => pending = send(client.on_timer(now()), server_mac),
            }
        }
    };
    tokio::time::timeout(PATIENCE, dora)
        .await
        .map_err(|_| eyre!("no DHCP server answered on {interface} within {PATIENCE:?}"))??;
    let lease = client.lease().ok_or_else(|| eyre!("no lease"))?;
    eprintln!("lease: {} for {} s from {}", lease.addr, lease.lease_time.as_secs(), lease.server_id);
    // Give it back: this was a lesson, not a configuration.
    if let Some(frame) = send(client.release(now()), server_mac) {
        raw.send(&frame).await.wrap_err("sending RELEASE")?;
        sink.emit(frame_step(&frame, "client", "server"));
    }
    Ok(())
}
