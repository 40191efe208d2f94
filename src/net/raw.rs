//! Raw frames on a real interface (Linux AF_PACKET): what a DHCP client without an address
//! needs, and what the kernel lets only a process with CAP_NET_RAW open. Every failure to open
//! says, in one line, what is missing and how to grant it.

use std::io;

/// How to grant what raw sockets and low ports need, for error messages.
pub const GRANT: &str = "run as root, or once: sudo setcap cap_net_raw,cap_net_bind_service+ep $(which protolab)";

/// Turns a permission error into one line that says what to do.
pub fn explain(e: io::Error, what: &str) -> io::Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        io::Error::new(io::ErrorKind::PermissionDenied, format!("{what} needs privileges: {GRANT}"))
    } else {
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::explain;
    use std::ffi::CString;
    use std::io;
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use tokio::io::unix::AsyncFd;

    /// A packet socket bound to one interface: whole Ethernet frames in and out.
    pub struct RawSocket {
        fd: AsyncFd<OwnedFd>,
        index: i32,
    }

    fn index_of(interface: &str) -> io::Result<i32> {
        let name =
            CString::new(interface).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"))?;
        // SAFETY: `name` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface named {interface}")));
        }
        Ok(index as i32)
    }

    /// A packet socket that receives nothing until [`RawSocket::bind`] binds it: the step that
    /// needs CAP_NET_RAW, which a process can take while it still has the capability and bind
    /// later (protocol 0: no frame is queued meanwhile).
    pub fn socket() -> io::Result<OwnedFd> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(explain(io::Error::last_os_error(), "a raw socket (to send from 0.0.0.0)"));
        }
        // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    impl RawSocket {
        /// A packet socket on `interface`, sending and receiving every Ethernet frame.
        pub fn open(interface: &str) -> io::Result<RawSocket> {
            Self::bind(socket()?, interface)
        }

        /// Binds a socket made by [`socket`] to `interface`, from which it receives every
        /// frame (binding needs no privilege: only making the socket does).
        pub fn bind(fd: OwnedFd, interface: &str) -> io::Result<RawSocket> {
            let index = index_of(interface)?;
            // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            addr.sll_ifindex = index;
            // SAFETY: `addr` is a valid sockaddr_ll and the length matches it.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if r < 0 {
                return Err(explain(io::Error::last_os_error(), &format!("binding a raw socket to {interface}")));
            }
            // SAFETY: `OwnedFd` keeps the same open descriptor for the AsyncFd's whole life.
            let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))?;
            Ok(RawSocket { fd, index })
        }

        /// Sends one whole Ethernet frame out of the interface.
        pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
            loop {
                let mut guard = self.fd.writable().await?;
                // SAFETY: an all-zero sockaddr_ll is valid; the index says where to send.
                let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                addr.sll_family = libc::AF_PACKET as u16;
                addr.sll_ifindex = self.index;
                addr.sll_halen = 6;
                addr.sll_addr[..6].copy_from_slice(&frame[..6.min(frame.len())]);
                let result = guard.try_io(|fd| {
                    // SAFETY: `frame` and `addr` are valid for the lengths given.
                    let n = unsafe {
                        libc::sendto(
                            fd.as_raw_fd(),
                            frame.as_ptr() as *const libc::c_void,
                            frame.len(),
                            0,
                            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                            std::mem::size_of::<libc::sockaddr_ll>() as u32,
                        )
                    };
                    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
                });
                match result {
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            }
        }

        /// Receives the next frame that arrived at the interface (frames this host sent are
        /// skipped).
        pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            loop {
                let mut guard = self.fd.readable().await?;
                let result = guard.try_io(|fd| {
                    // SAFETY: an all-zero sockaddr_ll is valid for recvfrom to fill.
                    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                    // SAFETY: `buf` and `from` are valid for the lengths given.
                    let n = unsafe {
                        libc::recvfrom(
                            fd.as_raw_fd(),
                            buf.as_mut_ptr() as *mut libc::c_void,
                            buf.len(),
                            0,
                            &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                            &mut len,
                        )
                    };
                    if n < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok((n as usize, from.sll_pkttype))
                });
                match result {
                    Ok(Ok((_, kind))) if kind == libc::PACKET_OUTGOING => continue,
                    Ok(Ok((n, _))) => return Ok(n),
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            }
        }
    }

    impl RawSocket {
        /// Frames the kernel dropped on this socket since the last call, because they came
        /// faster than they were read (PACKET_STATISTICS, which resets as it is read).
        pub fn drops(&self) -> u64 {
            // SAFETY: an all-zero tpacket_stats is valid for getsockopt to fill.
            let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
            // SAFETY: `stats` and `len` are valid for the kernel to write.
            let r = unsafe {
                libc::getsockopt(
                    self.fd.get_ref().as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_STATISTICS,
                    &mut stats as *mut libc::tpacket_stats as *mut libc::c_void,
                    &mut len,
                )
            };
            if r == 0 { u64::from(stats.tp_drops) } else { 0 }
        }
    }

    /// An interface's Ethernet address, from sysfs.
    pub fn mac_of(interface: &str) -> io::Result<[u8; 6]> {
        let text = std::fs::read_to_string(format!("/sys/class/net/{interface}/address"))
            .map_err(|e| io::Error::new(e.kind(), format!("no interface named {interface}")))?;
        let bytes: Vec<u8> = text.trim().split(':').filter_map(|h| u8::from_str_radix(h, 16).ok()).collect();
        bytes
            .try_into()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{interface} has no Ethernet address")))
    }

    /// The first IPv4 address on an interface, if it has one.
    pub fn ipv4_of(interface: &str) -> Option<Ipv4Addr> {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
        if unsafe { libc::getifaddrs(&mut list) } != 0 {
            return None;
        }
        let mut found = None;
        let mut at = list;
        while !at.is_null() {
            // SAFETY: `at` walks the list getifaddrs returned; each entry is valid until freed.
            let entry = unsafe { &*at };
            // SAFETY: ifa_name is a valid C string for a listed interface.
            let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) };
            if name.to_bytes() == interface.as_bytes() && !entry.ifa_addr.is_null() {
                // SAFETY: ifa_addr is non-null; its family says how to read it.
                let family = unsafe { (*entry.ifa_addr).sa_family } as i32;
                if family == libc::AF_INET {
                    // SAFETY: an AF_INET address is a sockaddr_in.
                    let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                    found = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                    break;
                }
            }
            at = entry.ifa_next;
        }
        // SAFETY: `list` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(list) };
        found
    }
}

#[cfg(target_os = "linux")]
pub use linux::{RawSocket, ipv4_of, mac_of, socket};
