//! ping on the host wire: the kernel's own ICMP. The echo requests leave through an ICMP
//! datagram socket (Linux's unprivileged ping, allowed for the groups in
//! `net.ipv4.ping_group_range`) or, where that is not allowed, a raw socket (which needs
//! CAP_NET_RAW); the target's kernel answers — 127.0.0.1's, or the host `--connect` names.
//! The steps are the ICMP messages as they left and came back, each request held at the gate.

use super::{COUNT, DATA, INTERVAL, echo_request, ms};
use crate::locale::en;
use crate::net::Gate;
use crate::session::StepSink;
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Which socket carries the echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// SOCK_DGRAM, IPPROTO_ICMP: the kernel picks the identifier (the socket's "port") and
    /// gives back only the replies to it, without their IPv4 header.
    Datagram,
    /// SOCK_RAW: every ICMP message the host receives, with its IPv4 header.
    Raw,
}

/// The kernel's setting that says which groups may open ICMP datagram sockets.
fn ping_group_range() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// An ICMP socket: a datagram one if allowed, else the raw one made at start (with
/// CAP_NET_RAW, which the process gives up once it has it); else why neither.
fn open() -> Result<(tokio::net::UdpSocket, Kind)> {
    let datagram = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)).ok().map(|s| (s, Kind::Datagram));
    let raw = || crate::net::capture::icmp_socket().map(|s| (s, Kind::Raw));
    let Some((socket, kind)) = datagram.or_else(raw) else {
        bail!(en(
            "ping on the host wire needs an ICMP socket: this user's group is not in net.ipv4.ping_group_range (now {range}) and has no CAP_NET_RAW for a raw one; allow it with sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\", or run ping on the lab network (--wire sim)",
            &[("range", &ping_group_range())]
        ))
    };
    socket.set_nonblocking(true)?;
    if kind == Kind::Datagram {
        // The replies come without their IPv4 header: ask for their TTL beside them.
        receive_ttl(&socket)?;
    }
    let std: std::net::UdpSocket = socket.into();
    Ok((tokio::net::UdpSocket::from_std(std)?, kind))
}

/// Asks the kernel for each datagram's TTL (IP_RECVTTL), as ping does on its datagram socket.
fn receive_ttl(socket: &Socket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt(2) on an open descriptor, with a pointer to an int and its size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_RECVTTL,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// One datagram into `buf`, and the TTL it arrived with (from IP_RECVTTL's control message).
fn recv_with_ttl(fd: std::os::fd::RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Option<u8>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // Room for a few control messages (an int each).
    let mut control = [0u64; 16];
    // SAFETY: a zeroed msghdr is a valid empty one; it is filled below with pointers that
    // outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: recvmsg(2) on an open descriptor with the buffers above.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut ttl = None;
    // SAFETY: the CMSG_* walk stays inside `control`, which the kernel filled up to
    // msg_controllen; the int is read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IP && (*cmsg).cmsg_type == libc::IP_TTL {
                let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                ttl = u8::try_from(value).ok();
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, ttl))
}

/// The next datagram, and its TTL: from its IPv4 header on a raw socket, from the kernel's
/// control message on a datagram one.
async fn receive(socket: &tokio::net::UdpSocket, kind: Kind, buf: &mut [u8]) -> std::io::Result<(usize, Option<u8>)> {
    use std::os::fd::AsRawFd;
    match kind {
        Kind::Raw => socket.recv(buf).await.map(|n| (n, None)),
        Kind::Datagram => {
            let fd = socket.as_raw_fd();
            socket.async_io(tokio::io::Interest::READABLE, || recv_with_ttl(fd, buf)).await
        }
    }
}

/// The echo reply in `packet` (an ICMP message; with its IPv4 header on a raw socket) for
/// `ident`: its sequence number, the TTL (from the header, else `told`), and where the message
/// starts.
fn reply(packet: &[u8], kind: Kind, ident: u16, told: Option<u8>) -> Option<(u16, Option<u8>, usize)> {
    let (start, ttl) = match kind {
        Kind::Datagram => (0, told),
        Kind::Raw => (usize::from(packet.first()? & 0x0f) * 4, Some(*packet.get(8)?)),
    };
    let icmp = packet.get(start..start + 8)?;
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    // On a datagram socket the kernel hands over only our replies; on a raw one, check.
    (icmp[0] == 0 && (kind == Kind::Datagram || id == ident))
        .then(|| (u16::from_be_bytes([icmp[6], icmp[7]]), ttl, start))
}

/// Four echoes to `target` (a host, or HOST:PORT whose port is ignored), else to 127.0.0.1.
pub async fn run(target: Option<String>, sink: StepSink, gate: Arc<Gate>) -> Result<()> {
    let host = target.unwrap_or_else(|| "127.0.0.1".into());
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h.to_string(),
        _ => host.clone(),
    };
    let ip = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .wrap_err_with(|| en("cannot resolve {target}", &[("target", &name)]))?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| eyre!(en("{target} has no IPv4 address", &[("target", &name)])))?;
    let (socket, kind) = open()?;
    let ident = match kind {
        // The kernel writes the socket's number as the identifier: send it as it will go.
        Kind::Datagram => {
            socket.connect(SocketAddr::from((ip, 0))).await?;
            socket.local_addr()?.port()
        }
        Kind::Raw => {
            socket.connect(SocketAddr::from((ip, 0))).await?;
            rand::random()
        }
    };
    let how = match kind {
        Kind::Datagram => en("sent from an ICMP datagram socket (net.ipv4.ping_group_range allows it)", &[]),
        Kind::Raw => en("sent from a raw ICMP socket (CAP_NET_RAW)", &[]),
    };
    let mut answered = 0;
    let mut buf = vec![0u8; 2048];
    for seq in 1..=COUNT {
        gate.clone().pass("client".into()).await;
        let request = echo_request(ident, seq, DATA);
        let sent = Instant::now();
        socket.send(&request).await?;
        let mut step =
            crate::wire::frame::decode_icmp(&request).into_step("client", "server", request.clone(), request.len());
        if seq == 1 {
            step.notes.insert(0, how.clone());
        }
        step.states = vec![("client".into(), en("icmp_seq={seq} sent", &[("seq", &seq)]))];
        sink.emit(step);
        // The reply to this request, within the interval; others (a late one) are shown too.
        while let Ok(got) = crate::net::timeout(INTERVAL, receive(&socket, kind, &mut buf)).await {
            let (n, told) = got?;
            let Some((got_seq, ttl, start)) = reply(&buf[..n], kind, ident, told) else { continue };
            let message = &buf[start..n];
            let time = ms(sent.elapsed());
            let label = match ttl {
                Some(ttl) => {
                    en("icmp_seq={seq} ttl={ttl} time={ms} ms", &[("seq", &got_seq), ("ttl", &ttl), ("ms", &time)])
                }
                None => en("icmp_seq={seq} time={ms} ms", &[("seq", &got_seq), ("ms", &time)]),
            };
            let mut step =
                crate::wire::frame::decode_icmp(message).into_step("server", "client", message.to_vec(), message.len());
            step.states = vec![("client".into(), label)];
            sink.emit(step);
            if got_seq == seq {
                answered += 1;
                break;
            }
        }
        // One request a second, as ping sends them; a presenter sets the pace instead.
        if gate.is_free() && seq < COUNT {
            tokio::time::sleep(INTERVAL.saturating_sub(sent.elapsed())).await;
        }
    }
    if answered == 0 {
        bail!(en("no echo reply: {n} requests, none answered", &[("n", &COUNT)]));
    }
    Ok(())
}
