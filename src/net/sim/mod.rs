//! The sim wire: a userspace TCP/IP network (smoltcp) of virtual hosts, joined by cables that
//! the lab owns, directly (two hosts, most labs) or through [`router`]s (the [`topology`]).
//! Every Ethernet frame crosses the [`cable`], where it becomes a step, waits at the gate in
//! lockstep, and may be dropped, delayed, duplicated or corrupted; a frame a router forwards
//! crosses again, a step per cable. Nothing here touches the machine's own network, and nothing
//! needs privileges.
//!
//! The hosts' clock stops while a frame waits at the gate, so a presenter who pauses does not
//! make the stack retransmit; a dropped frame is retransmitted after the stack's real timeout.

pub mod cable;
mod datagram;
pub mod router;
mod stream;
pub mod topology;

pub use cable::{Fate, Faults};
pub use datagram::{Attached, EchoSocket, Handler, HostCtx, ProbeSocket, ServedUdp, UdpCtx, UdpProgram};
pub use stream::{SimCarriers, SimListener, SimStream};
pub use topology::{Drawn, End, HostSpec, Link, RouterSpec, Topology};

use crate::locale::en;
use crate::net::Gate;
use crate::session::{KEEP_BYTES, Moved, StepSink};
use crate::wire::frame::field;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Each host's Ethernet address: locally administered, numbered from 02:00:00:00:00:01.
pub fn mac(host: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, host as u8 + 1]
}

/// A router interface's Ethernet address: 02:00:00:01:RR:PP, router and interface from 1.
fn router_mac(router: usize, port: usize) -> [u8; 6] {
    [0x02, 0, 0, 0x01, router as u8 + 1, port as u8 + 1]
}
/// The MAC of a cable's end.
fn end_mac(end: End) -> [u8; 6] {
    match end {
        End::Host(h) => mac(h),
        End::Router(r, p) => router_mac(r, p),
    }
}

pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;
/// Segments remembered per socket for `carried_by`.
const MAX_DELIVERIES: usize = 4096;
/// Each socket's buffers.
const SOCKET_BUFFER: usize = 64 * 1024;

/// A host's network card: frames the stack sent, frames waiting for the stack.
#[derive(Debug, Default)]
struct Port {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct RxToken(Vec<u8>);
struct TxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken(frame), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// One virtual host: its stack, its card, its sockets.
struct Host {
    iface: Interface,
    port: Port,
    sockets: SocketSet<'static>,
}

impl Host {
    fn new(index: usize, spec: &HostSpec, now: smoltcp::time::Instant) -> Self {
        let mut port = Port::default();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac(index))));
        // A new seed each run: new initial sequence numbers, new ephemeral ports.
        config.random_seed = rand::random();
        let mut iface = Interface::new(config, &mut port, now);
        if let Some(ip) = spec.ip {
            iface.update_ip_addrs(|addrs| {
                let _ = addrs.push(IpCidr::new(ip.into(), spec.prefix));
            });
        }
        if let Some(gateway) = spec.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gateway);
        }
        Host { iface, port, sockets: SocketSet::new(vec![]) }
    }

    fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    fn has_tcp(&self) -> bool {
        self.sockets.iter().any(|(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(_)))
    }

    /// The state of this host's end of the TCP connection `local` ↔ `remote`: its socket's,
    /// `LISTEN` while a listener has not taken the connection in, `CLOSED` when no socket has it.
    fn tcp_state(&self, local: SocketAddrV4, remote: SocketAddrV4) -> String {
        let mut listening = false;
        for (_, s) in self.sockets.iter() {
            #[allow(irrefutable_let_patterns)]
            let smoltcp::socket::Socket::Tcp(t) = s else { continue };
            if endpoint(t.local_endpoint()) == Some(local) && endpoint(t.remote_endpoint()) == Some(remote) {
                return t.state().to_string();
            }
            listening |= t.state() == tcp::State::Listen && t.listen_endpoint().port == local.port();
        }
        if listening { "LISTEN".into() } else { "CLOSED".into() }
    }

    /// Each TCP socket's state, `LISTEN` only if there is nothing else to say.
    fn states(&self) -> String {
        let mut states: Vec<String> = self
            .sockets
            .iter()
            .filter_map(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => Some(t.state().to_string()),
                #[allow(unreachable_patterns)]
                _ => None,
            })
            .collect();
        let listening = states.iter().any(|s| s == "LISTEN");
        if states.len() > 1 {
            states.retain(|s| s != "LISTEN" && s != "CLOSED");
        }
        match states.is_empty() {
            // Several listening sockets and nothing else: the host listens.
            true if listening => "LISTEN".into(),
            true => "CLOSED".into(),
            false => states.join(" + "),
        }
    }
}

/// The hosts' clock: real time, less the time frames spent waiting at the gate. Steps of the
/// lab network are stamped with it too, so a retransmission reads as the stack's real timer.
#[derive(Debug)]
struct Clock {
    start: std::time::Instant,
    paused: Duration,
    since: Option<std::time::Instant>,
}

impl Clock {
    fn elapsed(&self) -> Duration {
        let held = self.paused + self.since.map_or(Duration::ZERO, |s| s.elapsed());
        self.start.elapsed().saturating_sub(held)
    }

    fn pause(&mut self) {
        self.since.get_or_insert_with(std::time::Instant::now);
    }

    fn resume(&mut self) {
        if let Some(s) = self.since.take() {
            self.paused += s.elapsed();
        }
    }
}

/// The clock, readable without the network's lock (the sink reads it while the driver holds
/// that lock).
type SharedClock = Arc<Mutex<Clock>>;

fn read(clock: &SharedClock) -> Duration {
    clock.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
}

fn smol(d: Duration) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(d.as_micros() as i64)
}

/// Stream offset ranges of one socket's incoming bytes, and the frame step that brought each.
type Deliveries = Vec<(Range<u64>, u64)>;

/// Everything the driver and the streams share, behind one lock.
struct Inner {
    /// The network's shape: who is plugged into what.
    topology: Topology,
    /// Every node's name, hosts then routers (as the steps name them).
    names: Vec<&'static str>,
    hosts: Vec<Host>,
    routers: Vec<router::Router>,
    cable: cable::Cable,
    /// A frame that passed the cable's faults and waits at the gate.
    held: Option<cable::Frame>,
    /// Sockets whose stream is gone: removed once closed.
    orphans: Vec<(usize, SocketHandle)>,
    /// Which frame step delivered which bytes of each socket's incoming stream (offsets from
    /// the stream's first byte), for `carried_by`.
    deliveries: HashMap<(usize, SocketHandle), Deliveries>,
    /// Initial sequence numbers seen in SYNs, by (source, destination).
    isns: HashMap<(SocketAddrV4, SocketAddrV4), u32>,
    /// Payload bytes each direction sent since the other last sent any: past `KEEP_BYTES`,
    /// frames keep their headers only, so a long transfer holds bounded memory.
    bursts: HashMap<(SocketAddrV4, SocketAddrV4), usize>,
    /// Programs attached to each host's card (see [`SimNet::attach`]).
    taps: Vec<Option<Handler>>,
    /// Programs serving UDP ports (see [`SimNet::serve_udp`]).
    programs: Vec<datagram::Served>,
    /// What a lab says each host's protocol state is (a DHCP client's `BOUND`), shown with
    /// every frame that is not TCP; a TCP segment shows its connection's state, read from the
    /// stack.
    labels: Vec<Option<String>>,
    /// Hosts whose state is what the lab says on every frame, TCP segments too (a scanner's
    /// progress: its probes belong to no connection of its own).
    lab_states: Vec<bool>,
    /// Names of connections by server port, for labs with more than one (`echo`).
    conns: HashMap<u16, String>,
    /// Each host's state as the steps shown so far left it, per TCP connection (`None`: what
    /// the lab says of the host), and how many frames had entered the cable when a step last
    /// changed it: a frame sent before that shows the later state, not the one it was sent in.
    shown: HashMap<(usize, StateKey), (u64, String)>,
    /// Frames a router passed on, still on the cable: their number, and the bytes and decode of
    /// the frame each came in as, from which its own decode is made ([`crate::wire::frame::forwarded`]).
    relayed: VecDeque<(u64, Vec<u8>, crate::wire::Message)>,
}

/// Forwarded frames whose incoming decode is kept (a window of a transfer's frames in flight).
const RELAYED: usize = 64;

/// The decode of a frame a router passed on, made from the decode of the frame it came in as
/// (see [`Inner::relayed`]), if it is one and arrives as it was sent.
fn relayed_decode(inner: &mut Inner, frame: &cable::Frame) -> Option<crate::wire::Message> {
    let at = inner.relayed.iter().position(|(n, _, _)| *n == frame.number)?;
    let (_, came_as, came) = inner.relayed.remove(at)?;
    if frame.fate == Fate::Corrupted {
        return None;
    }
    let msg = crate::wire::frame::forwarded(came, &came_as, &frame.bytes)?;
    debug_assert_eq!(
        msg,
        crate::wire::frame::decode(&frame.bytes),
        "a forwarded frame's decode, made from its last hop's"
    );
    Some(msg)
}

/// Which of a host's states a frame speaks of: its end of a TCP connection (local, remote), or
/// the host as a whole.
type StateKey = Option<(SocketAddrV4, SocketAddrV4)>;

/// The state a frame speaks of, for the host sending it (or receiving it).
fn state_key(seg: Option<&Segment>, sending: bool) -> StateKey {
    seg.map(|s| if sending { (s.src, s.dst) } else { (s.dst, s.src) })
}

/// What the network needs to know of a TCP segment in a frame.
struct Segment {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    syn: bool,
    /// Where the payload lies in the frame.
    payload: Range<usize>,
}

impl Segment {
    fn parse(frame: &[u8]) -> Option<Segment> {
        let packet = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
        let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Tcp(tcp))) =
            (&packet.net, &packet.transport)
        else {
            return None;
        };
        let start = tcp.payload().as_ptr() as usize - frame.as_ptr() as usize;
        Some(Segment {
            src: SocketAddrV4::new(ip.header().source_addr(), tcp.source_port()),
            dst: SocketAddrV4::new(ip.header().destination_addr(), tcp.destination_port()),
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            payload: start..start + tcp.payload().len(),
        })
    }
}

impl Inner {
    /// `host`'s state as a frame it sends (or receives) shows it: its end of the frame's TCP
    /// connection; else what the lab says of the host; else its TCP sockets' states.
    fn state_of(&self, host: usize, seg: Option<&Segment>, sending: bool) -> Option<String> {
        if host >= self.hosts.len() {
            // A router keeps no connection state.
            return None;
        }
        if self.lab_states[host]
            && let Some(label) = &self.labels[host]
        {
            return Some(label.clone());
        }
        if let Some(seg) = seg {
            let (local, remote) = if sending { (seg.src, seg.dst) } else { (seg.dst, seg.src) };
            let state = self.hosts[host].tcp_state(local, remote);
            // A connection that has come and gone is CLOSED, even where its port still listens
            // for the next one.
            let seen = self.isns.contains_key(&(local, remote)) || self.isns.contains_key(&(remote, local));
            return Some(if state == "LISTEN" && seen { "CLOSED".into() } else { state });
        }
        if let Some(label) = &self.labels[host] {
            return Some(label.clone());
        }
        self.hosts.iter().any(Host::has_tcp).then(|| self.hosts[host].states())
    }

    /// Lets `host`'s stack take in what arrived and send what it has.
    fn poll(&mut self, host: usize, now: Duration) {
        let host = &mut self.hosts[host];
        host.iface.poll(smol(now), &mut host.port, &mut host.sockets);
    }

    /// Puts the frames `host`'s card sent on the cable, each with the state it was sent in.
    fn flush(&mut self, host: usize, now: Duration) {
        while let Some(frame) = self.hosts[host].port.tx.pop_front() {
            let state = self.state_of(host, Segment::parse(&frame).as_ref(), true);
            let _ = self.send(End::Host(host), frame, now, state);
        }
    }

    /// Puts a frame sent from `end` on the cable plugged into it: to the other end, or on a
    /// switched segment to the end with the frame's destination MAC (a broadcast to every
    /// other end, a copy each). `false` for a card with no cable, or no end with that MAC: the
    /// frame goes into the void.
    fn send(&mut self, end: End, frame: Vec<u8>, now: Duration, state: Option<String>) -> bool {
        let peers = self.topology.peers(end);
        let dst: Option<[u8; 6]> = frame.get(..6).and_then(|d| d.try_into().ok());
        let to: Vec<End> = match peers[..] {
            [one] => vec![one],
            _ if dst.is_some_and(|d| d[0] & 1 == 1) => peers,
            _ => peers.into_iter().filter(|&p| Some(end_mac(p)) == dst).collect(),
        };
        let from = self.topology.node(end);
        let sent = !to.is_empty();
        let mut frame = Some(frame);
        for (i, &peer) in to.iter().enumerate() {
            let port = match peer {
                End::Router(_, port) => port,
                End::Host(_) => 0,
            };
            // Each end but the last gets a copy; the last, the frame itself.
            let bytes =
                if i + 1 == to.len() { frame.take().unwrap_or_default() } else { frame.clone().unwrap_or_default() };
            self.cable.enqueue(from, (self.topology.node(peer), port), bytes, smol(now), state.clone());
        }
        sent
    }

    /// Polls every stack and puts what they sent on the cable.
    fn poll_all(&mut self, now: Duration) {
        for host in 0..self.hosts.len() {
            self.poll(host, now);
            self.flush(host, now);
        }
    }

    /// Notes which bytes of which socket's stream a TCP segment delivered to host `to`.
    fn log_delivery(&mut self, to: usize, seg: &Segment, step: u64) {
        let (src, dst) = (seg.src, seg.dst);
        if seg.syn {
            self.isns.insert((src, dst), seg.seq);
        }
        let len = seg.payload.len() as u64;
        let Some(&isn) = self.isns.get(&(src, dst)).filter(|_| len > 0) else { return };
        let start = seg.seq.wrapping_sub(isn).wrapping_sub(1) as u64;
        let host = &self.hosts[to];
        let socket = host.sockets.iter().find_map(|(handle, s)| match s {
            smoltcp::socket::Socket::Tcp(t)
                if endpoint(t.local_endpoint()) == Some(dst) && endpoint(t.remote_endpoint()) == Some(src) =>
            {
                Some(handle)
            }
            _ => None,
        });
        if let Some(handle) = socket {
            let log = self.deliveries.entry((to, handle)).or_default();
            // Readers take their carriers as they read; a socket nobody reads keeps a short log.
            if log.len() >= MAX_DELIVERIES {
                log.drain(..MAX_DELIVERIES / 2);
            }
            // A copy of bytes already delivered (the cable's duplicate, a retransmission that
            // crossed its ACK) carries nothing: the receiver throws it away.
            let range = start..start + len;
            if !log.iter().any(|(r, _)| r.start <= range.start && range.end <= r.end) {
                log.push((range, step));
            }
        }
    }

    fn is_quiet(&self) -> bool {
        use tcp::State::{Closed, Listen, TimeWait};
        self.held.is_none()
            && self.cable.is_empty()
            && self.hosts.iter().all(|h| {
                h.port.rx.is_empty()
                    && h.port.tx.is_empty()
                    && h.sockets.iter().all(|(_, s)| match s {
                        smoltcp::socket::Socket::Tcp(t) => matches!(t.state(), Closed | Listen | TimeWait),
                        #[allow(unreachable_patterns)]
                        _ => true,
                    })
            })
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// The hosts' clock; outside `inner`, so the sink can read it while a step is made.
    clock: SharedClock,
    /// Wakes the driver: a socket has something to send, or a frame was released.
    kick: Notify,
    /// Wakes whoever waits for a held frame to go (the clock runs again).
    resumed: Notify,
    gate: Arc<Gate>,
    sink: StepSink,
}

fn endpoint(ep: Option<smoltcp::wire::IpEndpoint>) -> Option<SocketAddrV4> {
    let ep = ep?;
    let smoltcp::wire::IpAddress::Ipv4(ip) = ep.addr;
    Some(SocketAddrV4::new(ip, ep.port))
}

/// What the driver waits for next.
enum Next {
    /// A frame from this host waits at the gate.
    Gate(String),
    /// Nothing to do until the stacks' next timer, or a kick.
    Sleep(Duration),
}

/// A handle on one lab network; the network runs while a handle (or a stream) lives.
#[derive(Clone)]
pub struct SimNet {
    shared: Arc<Shared>,
    _driver: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SimNet {
    /// A new network of two hosts on one cable: the client at 192.0.2.1, the server at
    /// 192.0.2.2. Its steps go to `sink`, stamped with the network's clock.
    pub fn new(sink: StepSink, gate: Arc<Gate>, faults: Faults) -> Self {
        SimNet::with_topology(Topology::pair(), sink, gate, faults)
    }

    /// A new network of this shape.
    pub fn with_topology(topology: Topology, sink: StepSink, gate: Arc<Gate>, faults: Faults) -> Self {
        let clock: SharedClock =
            Arc::new(Mutex::new(Clock { start: std::time::Instant::now(), paused: Duration::ZERO, since: None }));
        let stamp = clock.clone();
        sink.set_clock(Arc::new(move || read(&stamp)));
        let now = smol(read(&clock));
        let hosts = topology.hosts.iter().enumerate().map(|(i, spec)| Host::new(i, spec, now)).collect();
        let routers = topology
            .routers
            .iter()
            .enumerate()
            .map(|(r, spec)| {
                let ports = spec.ports.iter().enumerate();
                let ports = ports.map(|(p, &(ip, prefix))| router::Port { mac: router_mac(r, p), ip, prefix });
                let mut router = router::Router::new(ports.collect(), spec.routes.clone());
                router.silent = spec.silent;
                router.nat = spec.nat.clone();
                router.filter = spec.filter.clone();
                router
            })
            .collect();
        let n = topology.hosts.len();
        let inner = Inner {
            names: topology.names(),
            topology,
            hosts,
            routers,
            cable: cable::Cable::new(faults),
            held: None,
            orphans: Vec::new(),
            deliveries: HashMap::new(),
            isns: HashMap::new(),
            bursts: HashMap::new(),
            taps: (0..n).map(|_| None).collect(),
            programs: Vec::new(),
            labels: vec![None; n],
            lab_states: vec![false; n],
            conns: HashMap::new(),
            shown: HashMap::new(),
            relayed: VecDeque::new(),
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            clock,
            kick: Notify::new(),
            resumed: Notify::new(),
            gate,
            sink,
        });
        let driver = tokio::spawn(drive(shared.clone()));
        SimNet { shared, _driver: Arc::new(AbortOnDrop(driver)) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }

    /// Tells the driver that a socket changed (data to send, window opened, close).
    fn kick(&self) {
        self.shared.kick.notify_one();
    }

    fn new_socket(&self, host: usize) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        );
        // Segments as the application wrote them: clearer steps.
        socket.set_nagle_enabled(false);
        self.lock().hosts[host].sockets.add(socket)
    }

    /// Returns once no frame waits at the gate (at once if none does).
    pub async fn while_held(&self) {
        loop {
            let resumed = self.shared.resumed.notified();
            if self.lock().held.is_none() {
                return;
            }
            resumed.await;
        }
    }

    /// Where the network's steps go: a lab that taps its own streams records into it too.
    pub fn sink(&self) -> StepSink {
        self.shared.sink.clone()
    }

    /// The server host's address.
    pub fn server_ip(&self) -> Ipv4Address {
        self.lock().topology.hosts[SERVER].ip.unwrap_or(Ipv4Address::UNSPECIFIED)
    }

    /// The hosts' clock: time since the network started, less the time frames waited at the gate.
    pub fn now(&self) -> Duration {
        read(&self.shared.clock)
    }

    /// Says what `host`'s protocol state is, for the steps from now on.
    pub fn set_state(&self, host: usize, label: impl Into<String>) {
        self.lock().labels[host] = Some(label.into());
    }

    /// Shows what the lab says of `host` (see [`SimNet::set_state`]) with every frame it sends
    /// or receives, TCP segments too, instead of the state of the frame's connection.
    pub fn show_lab_state(&self, host: usize) {
        self.lock().lab_states[host] = true;
    }

    /// Names the TCP connections to or from `port` (`closed-port`), for labs with more than
    /// one connection: their frames' steps carry the name as `conn`.
    pub fn name_connection(&self, port: u16, name: impl Into<String>) {
        self.lock().conns.insert(port, name.into());
    }

    /// Waits until the network is quiet: nothing on the cable or at the gate, and every TCP
    /// socket closed, listening or in TIME-WAIT. Bounded, with the gate-aware clock.
    pub async fn settle(&self) {
        let quiet = async {
            while !self.lock().is_quiet() {
                // While a frame waits for the presenter, nothing moves: sleep until it goes.
                self.while_held().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        // A frame held back on the cable is still to come: wait for it too.
        let limit = Duration::from_secs(3) + self.lock().cable.faults().longest_delay();
        let _ = crate::net::timeout(limit, quiet).await;
    }

    /// The stream's socket is no longer used: close it and forget it once closed.
    fn release(&self, host: usize, handle: SocketHandle) {
        let mut inner = self.lock();
        if inner.hosts[host].tcp(handle).state() == tcp::State::SynSent {
            // A connect() given up on: gone without a word, as a kernel does (no RST: the peer
            // never answered).
            inner.hosts[host].sockets.remove(handle);
            return;
        }
        inner.hosts[host].tcp(handle).close();
        inner.orphans.push((host, handle));
        drop(inner);
        self.kick();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Duration {
        read(&self.clock)
    }

    /// Polls both stacks and moves frames across the cable until something must wait.
    fn step(&self) -> Next {
        let mut inner = self.lock();
        let inner = &mut *inner;
        // Whether a host may have something to take in or send: always at first; after a frame
        // crossed to a router, no host changed (what the router sends waits on the cable).
        let mut hosts_changed = true;
        loop {
            let now = self.now();
            if hosts_changed {
                inner.poll_all(now);
            }
            inner.orphans.retain(|&(h, handle)| {
                let closed = inner.hosts[h].tcp(handle).state() == tcp::State::Closed;
                if closed {
                    inner.hosts[h].sockets.remove(handle);
                    inner.deliveries.remove(&(h, handle));
                }
                !closed
            });
            let Some(frame) = inner.cable.next(smol(now)) else {
                let now = smol(now);
                let timers = inner.hosts.iter_mut().filter_map(|h| h.iface.poll_delay(now, &h.sockets));
                let due = inner.cable.next_due().map(|d| d - now);
                let wait = timers
                    .chain(due)
                    .min()
                    .map_or(Duration::from_secs(3600), |d| Duration::from_micros(d.total_micros()));
                return Next::Sleep(wait);
            };
            if frame.fate == Fate::Dropped || self.gate.is_free() {
                hosts_changed = frame.to < inner.hosts.len();
                self.cross(inner, frame);
                continue;
            }
            let from = inner.names[frame.from].to_string();
            inner.held = Some(frame);
            self.clock.lock().unwrap_or_else(|e| e.into_inner()).pause();
            return Next::Gate(from);
        }
    }

    /// A frame leaves the cable: the other host gets it (unless it was dropped), and it
    /// becomes a step with both ends' states: the sender's as it sent the frame, the
    /// receiver's once it took the frame in.
    fn cross(&self, inner: &mut Inner, frame: cable::Frame) {
        let to = frame.to;
        let at_host = to < inner.hosts.len();
        let segment = Segment::parse(&frame.bytes);
        let receiver_before = inner.state_of(to, segment.as_ref(), false);
        let answers_from = inner.cable.entered();
        let mut msg = relayed_decode(inner, &frame).unwrap_or_else(|| crate::wire::frame::decode(&frame.bytes));
        // A damaged frame that no checksum of its own covers (ARP) is caught by the receiving
        // card's frame check (the Ethernet FCS, which the lab's frames leave out).
        let fcs = frame.fate == Fate::Corrupted && msg.malformed.is_none();
        if fcs {
            msg = msg.malformed(en("a byte flipped on the cable: no checksum of its own covers it, so the receiving card's frame check (Ethernet FCS) throws the frame away", &[]));
        }
        if frame.fate != Fate::Dropped && !fcs && !at_host {
            // A router takes the frame in, and what it forwards or answers goes on the next cable.
            let now = self.now();
            let router = to - inner.hosts.len();
            for out in inner.routers[router].on_frame(frame.port, &frame.bytes, now) {
                let before = inner.cable.entered();
                let sent = inner.send(End::Router(router, out.port), out.frame, now, None);
                if sent && let Some(forwarded) = out.forwarded {
                    // Passed on as it came, to one next end: its decode will be made from this one's.
                    if forwarded.nat.is_none() && inner.cable.entered() == before + 1 {
                        if inner.relayed.len() == RELAYED {
                            inner.relayed.pop_front();
                        }
                        inner.relayed.push_back((before + 1, frame.bytes.clone(), msg.clone()));
                    }
                    inner.cable.forwarded(forwarded);
                }
            }
        }
        if frame.fate != Fate::Dropped && !fcs && at_host {
            let now = self.now();
            if let Some(program) = inner.taps[to].as_mut() {
                let mut ctx = HostCtx { now, ..HostCtx::default() };
                program(&frame.bytes, &mut ctx);
                let host = &mut inner.hosts[to];
                host.port.tx.extend(ctx.send);
                if let Some(address) = ctx.address {
                    host.iface.update_ip_addrs(|addrs| {
                        addrs.clear();
                        if let Some((ip, prefix)) = address {
                            let _ = addrs.push(IpCidr::new(ip.into(), prefix));
                        }
                    });
                }
                if let Some(label) = ctx.label {
                    inner.labels[to] = Some(label);
                }
            }
            inner.hosts[to].port.rx.push_back(frame.bytes.clone());
            inner.poll(to, now);
            if inner.run_programs(to, now) {
                inner.poll(to, now);
            }
            inner.flush(to, now);
        }
        let len = frame.bytes.len();
        // A broadcast ARP request reaches every host on a switched segment; all but the owner of
        // the address asked about drop it.
        if at_host && msg.kind == "arp.request" && !fcs && !owns_arp_target(&inner.hosts[to], &frame.bytes) {
            msg.kind = "arp.request.ignored".into();
        }
        let mut step = msg.into_step(inner.names[frame.from], inner.names[to], frame.bytes, len);
        let n: [(&str, &dyn std::fmt::Display); 1] = [("n", &frame.number)];
        let said = match frame.fate {
            Fate::Delivered => None,
            Fate::Dropped => Some(en("frame {n} dropped on the cable: the receiver never sees it", &n)),
            Fate::Duplicate => Some(en("frame {n} delivered a second time by the cable", &n)),
            Fate::Corrupted => Some(en("frame {n} had one byte flipped on the cable", &n)),
            Fate::Delayed(ms) => Some(en("frame {n} held back {ms} ms on the cable", &[n[0], ("ms", &ms)])),
        };
        if let Some(said) = said {
            let tag = match frame.fate {
                Fate::Dropped => "dropped",
                Fate::Duplicate => "duplicate",
                Fate::Corrupted => "corrupted",
                _ => "delayed",
            };
            step.summary = format!("[{tag}] {}", step.summary);
            step.notes.insert(0, said);
        }
        // The sender's state as it sent the frame, unless a step shown since (a frame that
        // reached it while this one was on its way) changed it.
        let sender_key = (frame.from, state_key(segment.as_ref(), true));
        let sender = match inner.shown.get(&sender_key) {
            Some((entered, state)) if *entered >= frame.number => Some(state.clone()),
            _ => frame.state.clone().or_else(|| inner.state_of(frame.from, segment.as_ref(), true)),
        };
        let receiver = inner.state_of(to, segment.as_ref(), false);
        if frame.fate != Fate::Dropped
            && let Some(receiver) = &receiver
        {
            inner.shown.insert((to, state_key(segment.as_ref(), false)), (answers_from, receiver.clone()));
        }
        // A router keeps no state to show: only the host's, on a cable to or from one.
        let mut states: Vec<(usize, String)> = [(frame.from, sender.clone()), (to, receiver.clone())]
            .into_iter()
            .filter_map(|(n, s)| Some((n, s?)))
            .collect();
        states.sort_by_key(|(node, _)| *node);
        step.states = states.into_iter().map(|(n, s)| (inner.names[n].to_string(), s)).collect();
        if let (Some(sender), Some(receiver)) = (&sender, &receiver)
            && !self.gate.is_free()
        {
            step.moved = moved(
                inner,
                (frame.from, to, frame.number),
                segment.as_ref(),
                sender,
                receiver_before,
                receiver,
                answers_from,
            );
        }
        if let Some(seg) = &segment
            && let Some(name) = inner.conns.get(&seg.src.port()).or_else(|| inner.conns.get(&seg.dst.port()))
        {
            step.conn = Some(name.clone());
        }
        if let Some(came) = frame.forwarded {
            // The router's work, seen from the next cable: one less TTL, a new checksum.
            let now = step.bytes.get(field::ethernet::LEN + field::ipv4::TTL.start).copied().unwrap_or(0);
            let checksum = field::ethernet::LEN + field::ipv4::CHECKSUM.start;
            let sum = step.bytes.get(checksum..checksum + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            step.notes.insert(
                0,
                en(
                    "forwarded by {router}: TTL {was} → {ttl}, so the header checksum 0x{old} → 0x{new}",
                    &[
                        ("router", &inner.names[frame.from]),
                        ("was", &came.ttl),
                        ("ttl", &now),
                        ("old", &format_args!("{:04x}", came.checksum)),
                        ("new", &format_args!("{sum:04x}")),
                    ],
                ),
            );
            step.forwarded = true;
            if let Some(nat) = came.nat {
                let udp = step.bytes.get(field::ethernet::LEN + field::ipv4::PROTOCOL.start) == Some(&17);
                step.notes.insert(1, nat_note(inner.names[frame.from], &nat, udp));
                step.nat = true;
            }
        }
        step.frame = true;
        step.fate = frame.fate;
        if let Some(seg) = &segment
            && !seg.payload.is_empty()
        {
            let sent = inner.bursts.entry((seg.src, seg.dst)).or_default();
            if *sent >= KEEP_BYTES {
                // Deep inside a long transfer: the headers tell the story; the bytes are counted.
                step.bytes.truncate(seg.payload.start);
                step.truncated = true;
                let kept = step.bytes.len();
                // The payload's fields go with its bytes, but not its length: what the segment
                // carried is still told (and the moment of the segment read from it).
                step.fields.retain_mut(|f| {
                    if f.path.ends_with(".payload_len") {
                        f.range = [f.range[0].min(kept), f.range[1].min(kept)];
                    }
                    f.range[1] <= kept
                });
            }
            *sent += seg.payload.len();
            inner.bursts.insert((seg.dst, seg.src), 0);
        }
        let seq = self.sink.emit(step);
        if let Some(seg) = segment
            && at_host
            && !matches!(frame.fate, Fate::Dropped | Fate::Corrupted)
        {
            inner.log_delivery(to, &seg, seq);
        }
    }
}

/// What a NAT router rewrote, as a note: which address, before and after, and the checksum.
fn nat_note(router: &str, nat: &router::Rewrite, udp: bool) -> String {
    let proto = if udp { "UDP" } else { "TCP" };
    let args: [(&str, &dyn std::fmt::Display); 6] = [
        ("router", &router),
        ("before", &nat.before),
        ("after", &nat.after),
        ("proto", &proto),
        ("old", &format!("{:04x}", nat.checksum.0)),
        ("new", &format!("{:04x}", nat.checksum.1)),
    ];
    match (nat.forward, nat.destination) {
        (true, true) => en(
            "port forward by {router}: destination {before} → {after}, so the {proto} checksum 0x{old} → 0x{new}",
            &args,
        ),
        (true, false) => en(
            "port forward by {router}: the server's answer leaves from {after}, not {before}, so the {proto} checksum 0x{old} → 0x{new}",
            &args,
        ),
        (false, false) => {
            en("source NAT by {router}: source {before} → {after}, so the {proto} checksum 0x{old} → 0x{new}", &args)
        }
        (false, true) => en(
            "source NAT by {router}: the answer to {before} goes on to {after}, so the {proto} checksum 0x{old} → 0x{new}",
            &args,
        ),
    }
}

/// Whether the address an ARP request in `frame` asks about is one of `host`'s.
fn owns_arp_target(host: &Host, frame: &[u8]) -> bool {
    // Ethernet header, then ARP: the target protocol address is its last four bytes.
    let Some(target) = frame.get(field::ethernet::LEN + 24..field::ethernet::LEN + 28) else { return false };
    host.iface
        .ip_addrs()
        .iter()
        .any(|a| a.address() == smoltcp::wire::IpAddress::v4(target[0], target[1], target[2], target[3]))
}

/// Who moved on while the world stood still at the gate, as frame `number` from `from` crossed: the
/// sender, if its state changed after it sent the frame; the receiver, if taking the frame in
/// changed its state and what it answered waits on the cable.
fn moved(
    inner: &Inner,
    (from, to, number): (usize, usize, u64),
    segment: Option<&Segment>,
    sent_in: &str,
    receiver_before: Option<String>,
    receiver_after: &str,
    answers_from: u64,
) -> Vec<Moved> {
    let mut moved = Vec::new();
    // What the sender sent next: a frame still on the cable from before this one (held back)
    // is not it.
    if let Some(now) = inner.state_of(from, segment, true).filter(|now| now != sent_in)
        && let Some(next) = inner.cable.first_from(from, number)
    {
        moved.push(Moved {
            who: inner.names[from].into(),
            from: sent_in.into(),
            to: now,
            waiting: short_name(&next.bytes),
        });
    }
    if let Some(before) = receiver_before.filter(|b| b != receiver_after)
        && let Some(answer) = inner.cable.first_from(to, answers_from)
    {
        moved.push(Moved {
            who: inner.names[to].into(),
            from: before,
            to: receiver_after.into(),
            waiting: short_name(&answer.bytes),
        });
    }
    moved
}

/// A frame as a presenter names it: a TCP segment by its flags (`FIN,ACK`), a DHCP message by
/// its type (`REQUEST`), anything else by its protocol.
fn short_name(frame: &[u8]) -> String {
    let msg = crate::wire::frame::decode(frame);
    match msg.proto {
        "TCP" | "DHCP" => msg.summary.split_whitespace().next().unwrap_or(msg.proto).to_string(),
        other => other.to_string(),
    }
}

/// The network's engine: polls the stacks, carries frames, waits at the gate and on timers.
async fn drive(shared: Arc<Shared>) {
    loop {
        match shared.step() {
            Next::Gate(from) => {
                let release = shared.gate.clone().pass(from).await;
                let mut inner = shared.lock();
                shared.clock.lock().unwrap_or_else(|e| e.into_inner()).resume();
                // What the programs did while the frame waited (a close, say) goes on the cable
                // first, with the state it was done in: the step can then show who moved on.
                inner.poll_all(shared.now());
                if let Some(mut frame) = inner.held.take() {
                    inner.cable.strike(&mut frame, release);
                    shared.cross(&mut inner, frame);
                }
                drop(inner);
                shared.resumed.notify_waiters();
            }
            Next::Sleep(wait) => {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shared.kick.notified() => {}
                }
            }
        }
    }
}
