//! A router of the lab network, sans-IO: Ethernet frames in on one of its interfaces, frames
//! out on others. It forwards IPv4 as RFC 1812 asks: looks the destination up in its table
//! (longest prefix wins), takes one from the TTL, recomputes the header checksum, and finds the
//! next hop's MAC by ARP (RFC 826), holding a few packets while it asks. A packet whose TTL runs
//! out gets ICMP Time Exceeded back (type 11, RFC 792), one with no route Destination
//! Unreachable (type 3 code 0), both quoting the packet's header and its first 8 bytes of data
//! (RFC 1812 §4.3.2.3); it answers ARP and echo requests for its own addresses. A router set
//! `silent` sends no ICMP errors (traceroute then shows `* * *`).
//!
//! A router given a [`Filter`] is a firewall for one of its networks: what it forwards there
//! passes, is refused with ICMP Destination Unreachable (type 3 code 13, communication
//! administratively prohibited, RFC 1812 §5.2.7.1), or is dropped without a word.
//!
//! A router given a [`Nat`] rewrites addresses between its inside and its outside (RFC 3022):
//! TCP and UDP from the inside leave with its outside address and a port of its own (source
//! NAT, NAPT), a port forward sends what reaches an outside port to a server inside, and the
//! answers of both are rewritten back; each rewrite recomputes the IPv4 header checksum and the
//! TCP or UDP checksum, whose pseudo-header covers the addresses.

use crate::wire::frame::{field, internet_checksum};
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// EtherType of IPv4 and of ARP.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const BROADCAST: [u8; 6] = [0xff; 6];
/// The TTL of what the router itself sends (RFC 1700's default).
const TTL: u8 = 64;
/// Packets held while their next hop's MAC is asked for: past this, the oldest is dropped
/// (RFC 1812 §3.3.2 lets a router queue "a small number").
const HELD: usize = 16;
/// How long an unanswered ARP request stands before a packet for the same neighbour asks
/// again (Linux asks once a second, RFC 1122 §2.3.2.1 asks for at most one a second).
const ASK_AGAIN: Duration = Duration::from_secs(1);
const ICMP: u8 = 1;
/// IPv4's protocol numbers of TCP and UDP (as NAT forwards and filter rules name them).
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
/// Translations a NAT router remembers: past this, the oldest is forgotten.
const TRANSLATIONS: usize = 1024;
/// The first port the router's source NAT hands out.
const NAT_PORTS: u16 = 40000;

/// One of the router's interfaces.
#[derive(Debug, Clone)]
pub struct Port {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
}

/// A route: packets for `net/prefix` leave by `port`, to `via` (a next router) or straight to
/// their destination (`None`: the network is on that port's link).
#[derive(Debug, Clone)]
pub struct Route {
    pub net: Ipv4Addr,
    pub prefix: u8,
    pub via: Option<Ipv4Addr>,
    pub port: usize,
}

/// A frame the router sends, and the interface it leaves by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub port: usize,
    pub frame: Vec<u8>,
    /// For a packet it forwarded (not one it made): the TTL and header checksum it came in with.
    pub forwarded: Option<Forwarded>,
}

/// What a forwarded packet's header said as it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    pub ttl: u8,
    pub checksum: u16,
    /// What the router's NAT rewrote, if it did.
    pub nat: Option<Rewrite>,
}

/// A NAT rewrite: the addresses and ports before and after, and the TCP or UDP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// `true`: the destination was rewritten (a port forward, or the answer to an inside
    /// client); `false`: the source (an inside client going out, or a forwarded server's
    /// answer).
    pub destination: bool,
    pub before: SocketAddrV4,
    pub after: SocketAddrV4,
    /// The TCP or UDP checksum as it came in, and as it leaves.
    pub checksum: (u16, u16),
    /// The rewrite is a port forward's (either way), not source NAT's.
    pub forward: bool,
}

/// A router's NAT: which interface is the outside, and the ports forwarded to servers inside.
#[derive(Debug, Clone, Default)]
pub struct Nat {
    pub outside: usize,
    /// (protocol, outside port, inside server).
    pub forwards: Vec<(u8, u16, SocketAddrV4)>,
}

/// A packet filter on what a router forwards into one network (a firewall, like iptables'
/// FORWARD chain, without state): TCP and UDP to a port it allows pass, to a port it rejects
/// are refused with ICMP (type 3 code 13), to any other port are dropped without a word; ICMP
/// passes (so ping still finds the hosts behind it).
#[derive(Debug, Clone)]
pub struct Filter {
    /// The network it guards.
    pub net: Ipv4Addr,
    pub prefix: u8,
    /// (protocol, port) let in.
    pub allow: Vec<(u8, u16)>,
    /// (protocol, port) refused with ICMP Destination Unreachable, administratively prohibited.
    pub reject: Vec<(u8, u16)>,
}

/// What a [`Filter`] does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Reject,
    Drop,
}

impl Filter {
    fn verdict(&self, packet: &[u8], ihl: usize) -> Verdict {
        let proto = packet[field::ipv4::PROTOCOL.start];
        if !within(ip_at(packet, field::ipv4::DST), self.net, self.prefix) || !matches!(proto, TCP | UDP) {
            return Verdict::Pass;
        }
        let Some(port) = packet.get(ihl + 2..ihl + 4).map(|p| u16::from_be_bytes([p[0], p[1]])) else {
            return Verdict::Drop;
        };
        if self.allow.contains(&(proto, port)) {
            Verdict::Pass
        } else if self.reject.contains(&(proto, port)) {
            Verdict::Reject
        } else {
            Verdict::Drop
        }
    }
}

/// Who a translated flow is: protocol, the inside end, the outside end.
type Flow = (u8, SocketAddrV4, SocketAddrV4);

/// The NAT's memory: each inside flow's outside port, and back.
#[derive(Debug, Default)]
struct Translations {
    out: HashMap<Flow, u16>,
    back: HashMap<(u8, u16, SocketAddrV4), SocketAddrV4>,
    order: VecDeque<Flow>,
    next: u16,
}

/// The router's state: its interfaces, its table, what ARP taught it, what waits for ARP.
#[derive(Debug)]
pub struct Router {
    ports: Vec<Port>,
    routes: Vec<Route>,
    neighbours: HashMap<(usize, Ipv4Addr), [u8; 6]>,
    waiting: VecDeque<Held>,
    /// When each unanswered ARP request went out, by interface and neighbour.
    asked: HashMap<(usize, Ipv4Addr), Duration>,
    /// The network's clock, as of the frame being taken in.
    now: Duration,
    /// Sends no ICMP errors (it still forwards and answers ARP).
    pub silent: bool,
    /// The IPv4 identification of the next packet it makes.
    ident: u16,
    /// Address translation between the inside and the outside, if it does it.
    pub nat: Option<Nat>,
    translations: Translations,
    /// The firewall on what it forwards, if it has one.
    pub filter: Option<Filter>,
}

/// A packet waiting for its next hop's MAC: the interface, the next hop, the packet (in a
/// frame whose Ethernet header is still to be written).
#[derive(Debug)]
struct Held {
    port: usize,
    hop: Ipv4Addr,
    frame: Vec<u8>,
    forwarded: Option<Forwarded>,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) }
}

fn within(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    u32::from(ip) & mask(prefix) == u32::from(net) & mask(prefix)
}

fn ip_at(bytes: &[u8], range: std::ops::Range<usize>) -> Ipv4Addr {
    let b = &bytes[range];
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// An Ethernet frame: `dst`, `src`, `ethertype`, then `payload`.
fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: [u8; 2], payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(field::ethernet::LEN + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype);
    frame.extend_from_slice(payload);
    frame
}

/// `packet` in a frame whose Ethernet header is left to write (see [`address`]): a packet is
/// copied once on its way through, not once more for its new header.
fn unaddressed(packet: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(field::ethernet::LEN + packet.len());
    frame.resize(field::ethernet::LEN, 0);
    frame.extend_from_slice(packet);
    frame
}

/// Writes the Ethernet header of an IPv4 frame made by [`unaddressed`].
fn address(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    frame[field::ethernet::DST].copy_from_slice(&dst);
    frame[field::ethernet::SRC].copy_from_slice(&src);
    frame[12..14].copy_from_slice(&ETHERTYPE_IPV4);
}

/// An ARP packet for Ethernet and IPv4 (RFC 826): `op` 1 request, 2 reply.
fn arp(op: u16, sender: ([u8; 6], Ipv4Addr), target: ([u8; 6], Ipv4Addr)) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0x00, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sender.0);
    p.extend_from_slice(&sender.1.octets());
    p.extend_from_slice(&target.0);
    p.extend_from_slice(&target.1.octets());
    p
}

/// Writes the IPv4 header checksum of the header `packet` starts with.
fn seal_ipv4(packet: &mut [u8]) {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let sum = internet_checksum(&packet[..ihl], field::ipv4::CHECKSUM);
    packet[field::ipv4::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
}

/// An IPv4 packet carrying ICMP `message` (its checksum written here) from `src` to `dst`.
fn icmp_packet(ident: u16, src: Ipv4Addr, dst: Ipv4Addr, mut message: Vec<u8>) -> Vec<u8> {
    message[field::icmp::CHECKSUM].fill(0);
    let sum = internet_checksum(&message, field::icmp::CHECKSUM);
    message[field::icmp::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    let total = (field::ipv4::MIN_LEN + message.len()) as u16;
    let mut packet = vec![0x45, 0];
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&ident.to_be_bytes());
    packet.extend_from_slice(&[0, 0, TTL, ICMP, 0, 0]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    seal_ipv4(&mut packet);
    packet.extend_from_slice(&message);
    packet
}

/// Whether an IPv4 packet carries an ICMP error (about which no error is ever sent, RFC 1812
/// §4.3.2.7).
fn is_icmp_error(packet: &[u8], ihl: usize) -> bool {
    packet[field::ipv4::PROTOCOL.start] == ICMP && packet.get(ihl).is_some_and(|t| matches!(t, 3 | 4 | 5 | 11 | 12))
}

impl Router {
    /// A router with these interfaces and routes; each interface's own network is routed to
    /// it without being listed.
    pub fn new(ports: Vec<Port>, mut routes: Vec<Route>) -> Router {
        for (i, p) in ports.iter().enumerate() {
            routes.push(Route { net: p.ip, prefix: p.prefix, via: None, port: i });
        }
        Router {
            ports,
            routes,
            neighbours: HashMap::new(),
            waiting: VecDeque::new(),
            asked: HashMap::new(),
            now: Duration::ZERO,
            silent: false,
            ident: 1,
            nat: None,
            translations: Translations { next: NAT_PORTS, ..Translations::default() },
            filter: None,
        }
    }

    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// The route for `dst`: the longest prefix that holds it.
    pub fn route(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.routes.iter().filter(|r| within(dst, r.net, r.prefix)).max_by_key(|r| r.prefix)
    }

    /// Takes a frame that arrived on interface `port` at `now` (the network's clock); returns
    /// the frames it makes.
    pub fn on_frame(&mut self, port: usize, frame: &[u8], now: Duration) -> Vec<Out> {
        self.now = now;
        let mut out = Vec::new();
        let eth = field::ethernet::LEN;
        if port >= self.ports.len() || frame.len() < eth {
            return out;
        }
        let to = &frame[field::ethernet::DST];
        if to != self.ports[port].mac && to != BROADCAST {
            return out;
        }
        let payload = &frame[eth..];
        match [frame[12], frame[13]] {
            ETHERTYPE_ARP => self.on_arp(port, payload, &mut out),
            ETHERTYPE_IPV4 if to != BROADCAST => self.on_ipv4(port, payload, &mut out),
            _ => {}
        }
        out
    }

    fn on_arp(&mut self, port: usize, p: &[u8], out: &mut Vec<Out>) {
        use field::arp;
        if p.len() < arp::LEN || p[arp::HARDWARE_TYPE] != [0, 1] || p[arp::PROTOCOL_TYPE] != ETHERTYPE_IPV4 {
            return;
        }
        let mut sender_mac = [0; 6];
        sender_mac.copy_from_slice(&p[arp::SENDER_MAC]);
        let sender_ip = ip_at(p, arp::SENDER_IP);
        let target_ip = ip_at(p, arp::TARGET_IP);
        let me = self.ports[port].clone();
        // RFC 826: learn the sender if it is for us (or already known), then answer requests.
        let known = self.neighbours.contains_key(&(port, sender_ip));
        if target_ip == me.ip || known {
            self.neighbours.insert((port, sender_ip), sender_mac);
            self.asked.remove(&(port, sender_ip));
            self.release(port, sender_ip, sender_mac, out);
        }
        if target_ip == me.ip && p[arp::OPERATION] == [0, 1] {
            let reply = arp(2, (me.mac, me.ip), (sender_mac, sender_ip));
            out.push(Out { port, frame: ethernet(sender_mac, me.mac, ETHERTYPE_ARP, &reply), forwarded: None });
        }
    }

    /// Sends what waited for `ip`'s MAC on `port`.
    fn release(&mut self, port: usize, ip: Ipv4Addr, mac: [u8; 6], out: &mut Vec<Out>) {
        let src = self.ports[port].mac;
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].port == port && self.waiting[i].hop == ip {
                let mut held = self.waiting.remove(i).expect("in range");
                address(&mut held.frame, mac, src);
                out.push(Out { port, frame: held.frame, forwarded: held.forwarded });
            } else {
                i += 1;
            }
        }
    }

    fn on_ipv4(&mut self, port: usize, packet: &[u8], out: &mut Vec<Out>) {
        use field::ipv4;
        if packet.len() < ipv4::MIN_LEN || packet[0] >> 4 != 4 {
            return;
        }
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        // A header that does not add up, or is damaged, is thrown away (RFC 1812 §5.2.2).
        if ihl < ipv4::MIN_LEN || total < ihl || total > packet.len() {
            return;
        }
        let packet = &packet[..total];
        let written = u16::from_be_bytes([packet[10], packet[11]]);
        if internet_checksum(&packet[..ihl], ipv4::CHECKSUM) != written {
            return;
        }
        // An answer to an inside client, or what a port forward sends inside, has its
        // destination rewritten first; then it is routed like any packet.
        let translated = self.translate_in(port, packet, ihl);
        let (packet, nat) = match &translated {
            Some((p, rewrite)) => (p.as_slice(), Some(*rewrite)),
            None => (packet, None),
        };
        let (src, dst) = (ip_at(packet, ipv4::SRC), ip_at(packet, ipv4::DST));
        if let Some(me) = self.ports.iter().find(|p| p.ip == dst).map(|p| p.ip) {
            self.for_me(me, src, packet, ihl, out);
            return;
        }
        let ttl = packet[ipv4::TTL.start];
        if ttl <= 1 {
            // Time Exceeded in transit, from the interface the packet came in by.
            self.error(self.ports[port].ip, packet, ihl, 11, 0, out);
            return;
        }
        let Some(route) = self.route(dst).cloned() else {
            self.error(self.ports[port].ip, packet, ihl, 3, 0, out);
            return;
        };
        match self.filter.as_ref().map_or(Verdict::Pass, |f| f.verdict(packet, ihl)) {
            Verdict::Pass => {}
            Verdict::Reject => return self.error(self.ports[port].ip, packet, ihl, 3, 13, out),
            Verdict::Drop => return,
        }
        let mut frame = unaddressed(packet);
        let forwarded = &mut frame[field::ethernet::LEN..];
        forwarded[ipv4::TTL.start] = ttl - 1;
        // Leaving by the outside from the inside: the source is rewritten.
        let nat = nat.or_else(|| self.translate_out(port, route.port, forwarded, ihl));
        seal_ipv4(forwarded);
        let came = Forwarded { ttl, checksum: written, nat };
        self.send(route.port, route.via.unwrap_or(dst), frame, Some(came), out);
    }

    /// For a packet that came in on the outside to the router's outside address: a port
    /// forward, or the answer to an inside client's flow; the packet with its destination
    /// rewritten.
    fn translate_in(&mut self, port: usize, packet: &[u8], ihl: usize) -> Option<(Vec<u8>, Rewrite)> {
        let nat = self.nat.as_ref()?;
        let proto = packet[field::ipv4::PROTOCOL.start];
        if port != nat.outside || !matches!(proto, TCP | UDP) || ip_at(packet, field::ipv4::DST) != self.ports[port].ip
        {
            return None;
        }
        let (src, dst) = endpoints(packet, ihl)?;
        let forward = nat.forwards.iter().find(|(p, public, _)| *p == proto && *public == dst.port()).map(|f| f.2);
        let (inside, forward) = match forward {
            Some(server) => (server, true),
            None => (*self.translations.back.get(&(proto, dst.port(), src))?, false),
        };
        let mut rewritten = packet.to_vec();
        let checksum = rewrite(&mut rewritten, ihl, true, inside)?;
        Some((rewritten, Rewrite { destination: true, before: dst, after: inside, checksum, forward }))
    }

    /// For a packet from the inside leaving by the outside: its source becomes the router's
    /// outside address (the forwarded port, for a server's answer; else a port of the NAT's).
    fn translate_out(&mut self, came_in: usize, leaves: usize, packet: &mut [u8], ihl: usize) -> Option<Rewrite> {
        let nat = self.nat.as_ref()?;
        let proto = packet[field::ipv4::PROTOCOL.start];
        if came_in == nat.outside || leaves != nat.outside || !matches!(proto, TCP | UDP) {
            return None;
        }
        let (src, dst) = endpoints(packet, ihl)?;
        let public_ip = self.ports[nat.outside].ip;
        let forward = nat.forwards.iter().find(|(p, _, server)| *p == proto && *server == src).map(|f| f.1);
        let (public, forward) = match forward {
            Some(public) => (public, true),
            None => (self.translations.port_for((proto, src, dst)), false),
        };
        let after = SocketAddrV4::new(public_ip, public);
        let checksum = rewrite(packet, ihl, false, after)?;
        Some(Rewrite { destination: false, before: src, after, checksum, forward })
    }

    /// A packet for the router itself: an echo request is answered; a UDP datagram (a
    /// traceroute probe that ends here) gets Port Unreachable.
    fn for_me(&mut self, me: Ipv4Addr, src: Ipv4Addr, packet: &[u8], ihl: usize, out: &mut Vec<Out>) {
        let data = &packet[ihl..];
        match packet[field::ipv4::PROTOCOL.start] {
            ICMP if data.len() >= 8 && data[0] == 8 => {
                let mut reply = data.to_vec();
                reply[0] = 0;
                let ident = self.next_ident();
                self.send_ip(icmp_packet(ident, me, src, reply), out);
            }
            UDP => self.error(me, packet, ihl, 3, 3, out),
            _ => {}
        }
    }

    /// ICMP error `kind`/`code` about `packet`, from `from`, quoting its header and 8 bytes.
    fn error(&mut self, from: Ipv4Addr, packet: &[u8], ihl: usize, kind: u8, code: u8, out: &mut Vec<Out>) {
        if self.silent || is_icmp_error(packet, ihl) {
            return;
        }
        let mut message = vec![kind, code, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(&packet[..(ihl + 8).min(packet.len())]);
        let ident = self.next_ident();
        let back = ip_at(packet, field::ipv4::SRC);
        self.send_ip(icmp_packet(ident, from, back, message), out);
    }

    /// Routes a packet the router made.
    fn send_ip(&mut self, packet: Vec<u8>, out: &mut Vec<Out>) {
        let dst = ip_at(&packet, field::ipv4::DST);
        if let Some(route) = self.route(dst).cloned() {
            self.send(route.port, route.via.unwrap_or(dst), unaddressed(&packet), None, out);
        }
    }

    /// Sends a packet (in a frame made by [`unaddressed`]) out of `port` to the neighbour `hop`,
    /// asking its MAC first if unknown.
    fn send(
        &mut self,
        port: usize,
        hop: Ipv4Addr,
        mut frame: Vec<u8>,
        forwarded: Option<Forwarded>,
        out: &mut Vec<Out>,
    ) {
        let me = self.ports[port].clone();
        if let Some(&mac) = self.neighbours.get(&(port, hop)) {
            address(&mut frame, mac, me.mac);
            out.push(Out { port, frame, forwarded });
            return;
        }
        // A request lost on the cable is asked again with the next packet for that neighbour,
        // once its time is up.
        let fresh = self.asked.get(&(port, hop)).is_some_and(|&at| self.now.saturating_sub(at) < ASK_AGAIN);
        if self.waiting.len() == HELD {
            self.waiting.pop_front();
        }
        self.waiting.push_back(Held { port, hop, frame, forwarded });
        if !fresh {
            self.asked.insert((port, hop), self.now);
            let request = arp(1, (me.mac, me.ip), ([0; 6], hop));
            out.push(Out { port, frame: ethernet(BROADCAST, me.mac, ETHERTYPE_ARP, &request), forwarded: None });
        }
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }
}

impl Translations {
    /// The outside port of an inside flow, handed out on its first packet.
    fn port_for(&mut self, flow: Flow) -> u16 {
        if let Some(&port) = self.out.get(&flow) {
            return port;
        }
        if self.order.len() == TRANSLATIONS
            && let Some(old) = self.order.pop_front()
            && let Some(port) = self.out.remove(&old)
        {
            self.back.remove(&(old.0, port, old.2));
        }
        let port = self.next;
        self.next = if self.next == u16::MAX { NAT_PORTS } else { self.next + 1 };
        self.out.insert(flow, port);
        self.back.insert((flow.0, port, flow.2), flow.1);
        self.order.push_back(flow);
        port
    }
}

/// A TCP or UDP packet's source and destination, address and port.
fn endpoints(packet: &[u8], ihl: usize) -> Option<(SocketAddrV4, SocketAddrV4)> {
    let ports = packet.get(ihl..ihl + 4)?;
    let src = SocketAddrV4::new(ip_at(packet, field::ipv4::SRC), u16::from_be_bytes([ports[0], ports[1]]));
    let dst = SocketAddrV4::new(ip_at(packet, field::ipv4::DST), u16::from_be_bytes([ports[2], ports[3]]));
    Some((src, dst))
}

/// Rewrites a TCP or UDP packet's destination (or source) to `to`, and its checksum, which
/// covers the addresses through the pseudo-header; the IPv4 header checksum is the caller's.
/// Returns the checksum before and after.
fn rewrite(packet: &mut [u8], ihl: usize, destination: bool, to: SocketAddrV4) -> Option<(u16, u16)> {
    let proto = packet[field::ipv4::PROTOCOL.start];
    let at = match proto {
        TCP => 16,
        _ => 6,
    };
    if packet.len() < ihl + at + 2 {
        return None;
    }
    let (addr, port) = if destination { (field::ipv4::DST, ihl + 2) } else { (field::ipv4::SRC, ihl) };
    packet[addr].copy_from_slice(&to.ip().octets());
    packet[port..port + 2].copy_from_slice(&to.port().to_be_bytes());
    let old = u16::from_be_bytes([packet[ihl + at], packet[ihl + at + 1]]);
    if proto == UDP && old == 0 {
        // A UDP datagram sent without a checksum keeps none.
        return Some((0, 0));
    }
    let segment = &packet[ihl..];
    let mut pseudo = Vec::with_capacity(12 + segment.len());
    pseudo.extend_from_slice(&packet[field::ipv4::SRC]);
    pseudo.extend_from_slice(&packet[field::ipv4::DST]);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(segment);
    let mut new = internet_checksum(&pseudo, 12 + at..12 + at + 2);
    if proto == UDP && new == 0 {
        new = 0xffff;
    }
    packet[ihl + at..ihl + at + 2].copy_from_slice(&new.to_be_bytes());
    Some((old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    const R_IN: [u8; 6] = [2, 0, 0, 0, 1, 1];
    const R_OUT: [u8; 6] = [2, 0, 0, 0, 1, 2];
    const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const T0: Duration = Duration::ZERO;
    const SERVER_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

    /// r1: 192.0.2.254 on the client's link, 198.51.100.1 towards r2, which leads to
    /// 203.0.113.0/24.
    fn r1() -> Router {
        Router::new(
            vec![
                Port { mac: R_IN, ip: Ipv4Addr::new(192, 0, 2, 254), prefix: 24 },
                Port { mac: R_OUT, ip: Ipv4Addr::new(198, 51, 100, 1), prefix: 24 },
            ],
            vec![Route {
                net: Ipv4Addr::new(203, 0, 113, 0),
                prefix: 24,
                via: Some(Ipv4Addr::new(198, 51, 100, 2)),
                port: 1,
            }],
        )
    }

    fn udp_probe(ttl: u8, dst: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 36, 0x12, 0x34, 0, 0, ttl, UDP, 0, 0];
        p.extend_from_slice(&CLIENT_IP.octets());
        p.extend_from_slice(&dst.octets());
        seal_ipv4(&mut p);
        p.extend_from_slice(&[0x82, 0x9a, 0x82, 0x9b, 0, 16, 0, 0, b'p', b'r', b'o', b'b', b'e', b'!', b'!', b'!']);
        ethernet(R_IN, CLIENT, ETHERTYPE_IPV4, &p)
    }

    fn learn(r: &mut Router, port: usize, mac: [u8; 6], ip: Ipv4Addr) {
        let me = r.ports()[port].clone();
        let out = r.on_frame(port, &ethernet(BROADCAST, mac, ETHERTYPE_ARP, &arp(1, (mac, ip), ([0; 6], me.ip))), T0);
        assert_eq!(out.len(), 1, "answers the request");
    }

    fn decoded(frame: &[u8]) -> crate::wire::Message {
        let msg = crate::wire::frame::decode(frame);
        assert_eq!(msg.malformed, None, "{}", msg.summary);
        msg
    }

    fn value(msg: &crate::wire::Message, path: &str) -> String {
        let value = msg.fields.iter().find(|f| f.path == path).map(|f| f.value.clone());
        match value {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    #[test]
    fn answers_arp_for_its_own_address_only() {
        let mut r = r1();
        let ask = |ip| ethernet(BROADCAST, CLIENT, ETHERTYPE_ARP, &arp(1, (CLIENT, CLIENT_IP), ([0; 6], ip)));
        let out = r.on_frame(0, &ask(Ipv4Addr::new(192, 0, 2, 254)), T0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].port, 0);
        let reply = &out[0].frame;
        assert_eq!(&reply[..6], &CLIENT);
        assert_eq!(reply[20..22], [0, 2], "an ARP reply");
        assert_eq!(&reply[22..28], &R_IN, "with its MAC");
        assert_eq!(decoded(reply).proto, "ARP");
        assert!(r.on_frame(0, &ask(Ipv4Addr::new(192, 0, 2, 99)), T0).is_empty(), "not its address");
        // The address on its other interface is not on this link.
        assert!(r.on_frame(0, &ask(Ipv4Addr::new(198, 51, 100, 1)), T0).is_empty());
    }

    #[test]
    fn forwards_with_ttl_less_one_and_a_new_checksum_after_asking_the_next_hop() {
        let mut r = r1();
        let probe = udp_probe(64, SERVER_IP);
        let out = r.on_frame(0, &probe, T0);
        assert_eq!(out.len(), 1, "asks for r2's MAC first");
        assert_eq!(out[0].port, 1);
        assert_eq!(&out[0].frame[..6], &BROADCAST);
        assert_eq!(&out[0].frame[38..42], &[198, 51, 100, 2]);
        // r2 answers: the held packet goes.
        let r2 = [2, 0, 0, 0, 2, 1];
        let answer = arp(2, (r2, Ipv4Addr::new(198, 51, 100, 2)), (R_OUT, Ipv4Addr::new(198, 51, 100, 1)));
        let out = r.on_frame(1, &ethernet(R_OUT, r2, ETHERTYPE_ARP, &answer), T0);
        assert_eq!(out.len(), 1);
        let sent = &out[0].frame;
        assert_eq!((&sent[..6], &sent[6..12]), (&r2[..], &R_OUT[..]), "to r2, from the outside interface");
        assert_eq!(sent[14 + 8], 63, "TTL 64 → 63");
        let msg = decoded(sent);
        assert!(msg.notes.iter().any(|n| n.starts_with("checksums ok")), "{:?}", msg.notes);
        assert_ne!(sent[24..26], probe[24..26], "the header checksum changed");
        assert_eq!(sent[34..], probe[34..], "the datagram itself is untouched");
        let came = Forwarded { ttl: 64, checksum: u16::from_be_bytes([probe[24], probe[25]]), nat: None };
        assert_eq!(out[0].forwarded, Some(came));
        // Its decode, made from the incoming one's, is the decode of its own bytes.
        let remade = crate::wire::frame::forwarded(decoded(&probe), &probe, sent);
        assert_eq!(remade.as_ref(), Some(&msg));
        // Anything else changed on the way, and the frame is decoded afresh.
        let mut other = sent.clone();
        other[40] ^= 1;
        assert_eq!(crate::wire::frame::forwarded(decoded(&probe), &probe, &other), None);
        // Known now: the next packet goes at once.
        let out = r.on_frame(0, &udp_probe(5, SERVER_IP), T0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].frame[14 + 8], 4);
    }

    #[test]
    fn ttl_one_gets_time_exceeded_quoting_the_probe() {
        let mut r = r1();
        learn(&mut r, 0, CLIENT, CLIENT_IP);
        let probe = udp_probe(1, SERVER_IP);
        let out = r.on_frame(0, &probe, T0);
        assert_eq!(out.len(), 1);
        let back = &out[0].frame;
        assert_eq!((out[0].port, &back[..6]), (0, &CLIENT[..]));
        let msg = decoded(back);
        assert_eq!(msg.kind, "icmp.time-exceeded");
        assert_eq!(value(&msg, "IPv4.src"), "192.0.2.254", "from the interface the probe came in by");
        assert_eq!(value(&msg, "IPv4.dst"), "192.0.2.1");
        // Type, code, 4 unused bytes, then the probe's header and its first 8 bytes.
        assert_eq!(back[34..36], [11, 0]);
        assert_eq!(back[42..], probe[14..14 + 28]);
        // Decoded: which probe it answers.
        assert_eq!(msg.summary, "time exceeded code=0, about UDP 192.0.2.1:33434 → 203.0.113.5:33435");
        assert_eq!(value(&msg, "ICMP.quoted.ttl"), "1");
        assert_eq!(value(&msg, "ICMP.quoted.dst_port"), "33435");
        let field = msg.fields.iter().find(|f| f.path == "ICMP.quoted.dst_port").unwrap();
        assert_eq!(back[field.range[0]..field.range[1]], [0x82, 0x9b]);
        // A quote cut inside the IPv4 header is decoded as far as it goes, and says so.
        let mut cut = icmp_packet(3, Ipv4Addr::new(192, 0, 2, 254), CLIENT_IP, vec![11, 0, 0, 0, 0, 0, 0, 0]);
        cut.extend_from_slice(&probe[14..14 + 12]);
        let total = (cut.len() as u16).to_be_bytes();
        cut[2..4].copy_from_slice(&total);
        seal_ipv4(&mut cut);
        let mut message = cut[20..].to_vec();
        message[2..4].fill(0);
        let sum = internet_checksum(&message, 2..4);
        cut[22..24].copy_from_slice(&sum.to_be_bytes());
        let msg = decoded(&ethernet(CLIENT, R_IN, ETHERTYPE_IPV4, &cut));
        assert_eq!(msg.kind, "icmp.time-exceeded");
        assert!(msg.notes.iter().any(|n| n.contains("quoted packet is cut short: 12 of the 20")), "{:?}", msg.notes);
    }

    #[test]
    fn a_filter_passes_rejects_or_drops_by_port() {
        let mut r = r1();
        learn(&mut r, 0, CLIENT, CLIENT_IP);
        learn(&mut r, 1, [2, 0, 0, 0, 2, 1], Ipv4Addr::new(198, 51, 100, 2));
        r.filter = Some(Filter {
            net: Ipv4Addr::new(203, 0, 113, 0),
            prefix: 24,
            allow: vec![(UDP, 53)],
            reject: vec![(UDP, 33435)],
        });
        let to_port = |port: u16| {
            let mut probe = udp_probe(64, SERVER_IP);
            probe[36..38].copy_from_slice(&port.to_be_bytes());
            probe
        };
        // Allowed: forwarded as ever.
        let out = r.on_frame(0, &to_port(53), T0);
        assert_eq!((out.len(), out[0].port), (1, 1));
        assert!(out[0].forwarded.is_some());
        // Rejected: refused with type 3 code 13, from the interface it came in by, quoting it.
        let out = r.on_frame(0, &to_port(33435), T0);
        assert_eq!((out.len(), out[0].port), (1, 0));
        let msg = decoded(&out[0].frame);
        assert_eq!(msg.kind, "icmp.dest-unreachable");
        assert_eq!(out[0].frame[34..36], [3, 13]);
        assert_eq!(value(&msg, "IPv4.src"), "192.0.2.254");
        assert!(msg.summary.contains("administratively prohibited"), "{}", msg.summary);
        assert_eq!(value(&msg, "ICMP.quoted.dst_port"), "33435");
        // Any other port: dropped without a word; a silent router drops the rejected ones too.
        assert!(r.on_frame(0, &to_port(8080), T0).is_empty());
        r.silent = true;
        assert!(r.on_frame(0, &to_port(33435), T0).is_empty());
        // Traffic to other networks is not the filter's business.
        r.filter.as_mut().unwrap().net = Ipv4Addr::new(100, 64, 0, 0);
        assert_eq!(r.on_frame(0, &to_port(8080), T0).len(), 1);
    }

    #[test]
    fn no_route_gets_destination_unreachable_net() {
        let mut r = r1();
        learn(&mut r, 0, CLIENT, CLIENT_IP);
        let out = r.on_frame(0, &udp_probe(64, Ipv4Addr::new(100, 64, 0, 1)), T0);
        let msg = decoded(&out[0].frame);
        assert_eq!(msg.kind, "icmp.dest-unreachable");
        assert_eq!(out[0].frame[34..36], [3, 0]);
    }

    #[test]
    fn silent_routers_and_icmp_errors_get_no_error_back() {
        let mut r = r1();
        learn(&mut r, 0, CLIENT, CLIENT_IP);
        r.silent = true;
        assert!(r.on_frame(0, &udp_probe(1, SERVER_IP), T0).is_empty());
        r.silent = false;
        // A Time Exceeded that itself runs out of TTL is dropped without a word.
        let mut error = icmp_packet(7, SERVER_IP, CLIENT_IP, vec![11, 0, 0, 0, 0, 0, 0, 0]);
        error[8] = 1;
        seal_ipv4(&mut error);
        assert!(r.on_frame(0, &ethernet(R_IN, CLIENT, ETHERTYPE_IPV4, &error), T0).is_empty());
    }

    #[test]
    fn answers_pings_to_itself_and_drops_damaged_headers() {
        let mut r = r1();
        learn(&mut r, 0, CLIENT, CLIENT_IP);
        let echo = icmp_packet(9, CLIENT_IP, Ipv4Addr::new(192, 0, 2, 254), vec![8, 0, 0, 0, 0, 7, 0, 1, b'h', b'i']);
        let out = r.on_frame(0, &ethernet(R_IN, CLIENT, ETHERTYPE_IPV4, &echo), T0);
        let msg = decoded(&out[0].frame);
        assert_eq!(msg.kind, "icmp.echo-reply");
        assert_eq!(value(&msg, "ICMP.id"), "7");
        let mut damaged = udp_probe(64, SERVER_IP);
        damaged[14 + 8] ^= 0x10;
        assert!(r.on_frame(0, &damaged, T0).is_empty(), "a bad header checksum is dropped");
        assert!(r.on_frame(0, &damaged[..20], T0).is_empty(), "so is a cut one");
    }

    #[test]
    fn the_longest_prefix_wins() {
        let mut r = r1();
        r.routes.push(Route { net: Ipv4Addr::new(203, 0, 113, 128), prefix: 25, via: None, port: 0 });
        r.routes.push(Route {
            net: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            via: Some(Ipv4Addr::new(198, 51, 100, 9)),
            port: 1,
        });
        assert_eq!(r.route(Ipv4Addr::new(203, 0, 113, 200)).unwrap().prefix, 25);
        assert_eq!(r.route(Ipv4Addr::new(203, 0, 113, 5)).unwrap().prefix, 24);
        assert_eq!(r.route(Ipv4Addr::new(8, 8, 8, 8)).unwrap().prefix, 0);
    }

    #[test]
    fn a_lost_arp_request_is_asked_again_a_second_later() {
        let mut r = r1();
        let asks = |out: &[Out]| out.iter().filter(|o| o.frame[12..14] == ETHERTYPE_ARP).count();
        assert_eq!(asks(&r.on_frame(0, &udp_probe(64, SERVER_IP), T0)), 1);
        // No answer (the request was lost): within the second, the next packet waits quietly.
        assert_eq!(asks(&r.on_frame(0, &udp_probe(64, SERVER_IP), Duration::from_millis(500))), 0);
        // Past it, the next packet asks again; the answer lets all three go.
        assert_eq!(asks(&r.on_frame(0, &udp_probe(64, SERVER_IP), Duration::from_secs(1))), 1);
        let r2 = [2, 0, 0, 0, 2, 1];
        let answer = arp(2, (r2, Ipv4Addr::new(198, 51, 100, 2)), (R_OUT, Ipv4Addr::new(198, 51, 100, 1)));
        let out = r.on_frame(1, &ethernet(R_OUT, r2, ETHERTYPE_ARP, &answer), Duration::from_secs(1));
        assert_eq!(out.len(), 3);
    }

    /// A TCP segment as a frame to `dst_mac`: `src` → `dst`, flags SYN.
    fn syn(dst_mac: [u8; 6], src_mac: [u8; 6], src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, TCP, 0, 0];
        p.extend_from_slice(&src.ip().octets());
        p.extend_from_slice(&dst.ip().octets());
        seal_ipv4(&mut p);
        p.extend_from_slice(&src.port().to_be_bytes());
        p.extend_from_slice(&dst.port().to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        // A correct checksum to start from: rewriting one is what is tested.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, TCP, 0, 20]);
        pseudo.extend_from_slice(&p[20..]);
        let sum = internet_checksum(&pseudo, 28..30);
        p[36..38].copy_from_slice(&sum.to_be_bytes());
        ethernet(dst_mac, src_mac, ETHERTYPE_IPV4, &p)
    }

    #[test]
    fn nat_forwards_a_port_in_and_translates_sources_out_and_back() {
        let web = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 80);
        let public = Ipv4Addr::new(198, 51, 100, 1);
        let mut r = Router::new(
            vec![
                Port { mac: R_IN, ip: Ipv4Addr::new(192, 0, 2, 254), prefix: 24 },
                Port { mac: R_OUT, ip: public, prefix: 24 },
            ],
            vec![],
        );
        r.nat = Some(Nat { outside: 1, forwards: vec![(TCP, 8080, web)] });
        let (web_mac, pc_mac, remote_mac) = ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 9]);
        let remote = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 50000);
        learn(&mut r, 0, web_mac, *web.ip());
        learn(&mut r, 0, pc_mac, Ipv4Addr::new(192, 0, 2, 20));
        learn(&mut r, 1, remote_mac, *remote.ip());
        // In through the forwarded port: to web, the source kept.
        let out = r.on_frame(1, &syn(R_OUT, remote_mac, remote, SocketAddrV4::new(public, 8080)), T0);
        assert_eq!((out.len(), out[0].port), (1, 0));
        let msg = decoded(&out[0].frame);
        assert_eq!((value(&msg, "IPv4.dst"), value(&msg, "TCP.dst_port")), ("192.0.2.10".into(), "80".into()));
        assert_eq!(value(&msg, "IPv4.src"), "198.51.100.7");
        let nat = out[0].forwarded.unwrap().nat.unwrap();
        assert!(nat.destination && nat.forward);
        assert_eq!((nat.before, nat.after), (SocketAddrV4::new(public, 8080), web));
        assert_ne!(nat.checksum.0, nat.checksum.1);
        // web's answer leaves from the public port.
        let out = r.on_frame(0, &syn(R_IN, web_mac, web, remote), T0);
        let msg = decoded(&out[0].frame);
        assert_eq!((value(&msg, "IPv4.src"), value(&msg, "TCP.src_port")), ("198.51.100.1".into(), "8080".into()));
        // pc goes out from the router's address and a port of its own; the answer comes back.
        let pc = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 20), 51000);
        let server = SocketAddrV4::new(*remote.ip(), 80);
        let out = r.on_frame(0, &syn(R_IN, pc_mac, pc, server), T0);
        let msg = decoded(&out[0].frame);
        assert_eq!(
            (value(&msg, "IPv4.src"), value(&msg, "TCP.src_port")),
            ("198.51.100.1".into(), NAT_PORTS.to_string())
        );
        let back = r.on_frame(1, &syn(R_OUT, remote_mac, server, SocketAddrV4::new(public, NAT_PORTS)), T0);
        let msg = decoded(&back[0].frame);
        assert_eq!((value(&msg, "IPv4.dst"), value(&msg, "TCP.dst_port")), ("192.0.2.20".into(), "51000".into()));
        // Nothing else gets in: an unknown port of the router's own address is the router's.
        let out = r.on_frame(1, &syn(R_OUT, remote_mac, remote, SocketAddrV4::new(public, 22)), T0);
        assert!(out.iter().all(|o| o.port == 1), "not let inside");
    }
}
