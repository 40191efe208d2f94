//! The lab's DHCP client (RFC 2131 §4.4), sans-IO: the client's state machine, fed with the
//! messages that arrive and the time, answering with the messages to send and where.
//!
//! ```text
//!  event ─▶ next state, (what the client sends)
//!
//!  INIT ──start (DISCOVER)──▶ SELECTING ──OFFER (REQUEST)──▶ REQUESTING ──ACK──▶ BOUND ◀──────┐
//!   ▲                                                              │               │           │
//!   ├──────────────────────── NAK, or no answer ───────────────────┘               │ T1        │
//!   │                                                                              ▼           │
//!   │                                                 RENEWING (REQUEST to the server) ──ACK──┤
//!   │                                                                              │ T2        │
//!   │                                                                              ▼           │
//!   ├──── lease expired, or NAK ───── REBINDING (REQUEST to everyone) ─────────────────ACK────┘
//!   │
//!   └──── NAK ───── REBOOTING ──ACK──▶ BOUND
//!                      ▲
//!  INIT-REBOOT ──start (REQUEST for the address in mind)
//! ```
//!
//! Inputs: [`Client::start`], [`Client::on_message`], [`Client::on_timer`], and the user's
//! [`Client::release`] and [`Client::decline`]. Each returns the message to send, if any, as an
//! [`Outgoing`] that says where it goes. [`Client::next_timer`] says when `on_timer` wants to run
//! next: a retransmission (4 s, doubling to 64 s), T1, T2, the lease's end, or a restart.
//!
//! Every state change goes through one function, which records `state=A=>B`.
//! Retransmission has no random jitter (RFC 2131 §4.1 suggests ±1 s): the lab's one client has
//! nobody to desynchronize from, and a lesson is easier to follow with exact times.

use super::lease::Instant;
use super::wire::{self, Xid, chaddr};
use dhcproto::v4::{self, DhcpOption, Flags, MessageType, Opcode, OptionCode};
use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// The client's states, RFC 2131 §4.4 figure 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No address, no exchange under way.
    Init,
    /// DISCOVER sent: waiting for OFFERs.
    Selecting,
    /// REQUEST for an offer sent: waiting for the ACK (or NAK).
    Requesting,
    /// Holding a lease: nothing to do until T1.
    Bound,
    /// T1 passed: asking the server that gave the lease, by unicast, to extend it.
    Renewing,
    /// T2 passed: the server did not answer; asking any server, by broadcast.
    Rebinding,
    /// Starting with an address in mind (after a reboot, or asked for by the user).
    InitReboot,
    /// REQUEST for that address sent: waiting for the ACK (or NAK).
    Rebooting,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Init => "INIT",
            State::Selecting => "SELECTING",
            State::Requesting => "REQUESTING",
            State::Bound => "BOUND",
            State::Renewing => "RENEWING",
            State::Rebinding => "REBINDING",
            State::InitReboot => "INIT-REBOOT",
            State::Rebooting => "REBOOTING",
        })
    }
}

/// One recorded state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub at: Instant,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "state={}=>{}", self.from, self.to)
    }
}

/// State changes the client remembers; the oldest go first.
pub const MAX_TRANSITIONS: usize = 64;

/// What the client is and how patient it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// The client's hardware address: `chaddr`, and option 61 as type 1 (Ethernet) and the MAC.
    pub mac: [u8; 6],
    /// Ask for this address from the start (option 50, in INIT-REBOOT). The NAK lesson asks for
    /// one the server will not give; after the NAK, the client starts over with DISCOVER.
    pub requested_ip: Option<Ipv4Addr>,
    /// Send option 61, the client identifier, so the server knows the client by it.
    pub client_id: bool,
    /// The first retransmission wait of DISCOVER and REQUEST; it doubles each time (§4.1).
    pub retransmit_initial: Duration,
    /// The longest retransmission wait (§4.1: 64 s).
    pub retransmit_max: Duration,
    /// REQUESTs sent in REQUESTING or REBOOTING before the client gives up and starts over.
    pub request_tries: u32,
    /// The shortest wait between REQUESTs in RENEWING and REBINDING (§4.4.5: 60 s).
    pub renew_retry_min: Duration,
    /// How long the client waits in INIT before it starts over (after a NAK, a lease that ran
    /// out, or no answer); §4.4.1 suggests 1 to 10 s.
    pub restart_delay: Duration,
    /// How long the client waits after a DECLINE before it starts over (§3.1.5: at least 10 s).
    pub decline_delay: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            mac: [0x02, 0, 0, 0, 0, 0x01],
            requested_ip: None,
            client_id: true,
            retransmit_initial: Duration::from_secs(4),
            retransmit_max: Duration::from_secs(64),
            request_tries: 4,
            renew_retry_min: Duration::from_secs(60),
            restart_delay: Duration::from_secs(2),
            decline_delay: Duration::from_secs(10),
        }
    }
}

/// The lease the client holds: what the ACK gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client's address (`yiaddr`).
    pub addr: Ipv4Addr,
    /// Option 1.
    pub mask: Option<Ipv4Addr>,
    /// Option 3, the first router.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 54: the server to renew with.
    pub server_id: Ipv4Addr,
    /// Option 51.
    pub lease_time: Duration,
    /// Option 58, or 50 % of the lease.
    pub t1: Duration,
    /// Option 59, or 87.5 % of the lease.
    pub t2: Duration,
    /// When the lease started: when the REQUEST that won it was first sent (§4.4.1).
    pub start: Instant,
}

impl Lease {
    pub fn t1_at(&self) -> Instant {
        self.start + self.t1
    }

    pub fn t2_at(&self) -> Instant {
        self.start + self.t2
    }

    pub fn expires_at(&self) -> Instant {
        self.start + self.lease_time
    }

    /// The lease an ACK gives; `None` if the ACK has no lease time or server identifier.
    fn from_ack(ack: &v4::Message, start: Instant) -> Option<Lease> {
        let opts = ack.opts();
        let secs = |code| match opts.get(code) {
            Some(DhcpOption::AddressLeaseTime(s) | DhcpOption::Renewal(s) | DhcpOption::Rebinding(s)) => {
                Some(Duration::from_secs(u64::from(*s)))
            }
            _ => None,
        };
        let lease_time = secs(OptionCode::AddressLeaseTime)?;
        let server_id = match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(a)) => *a,
            _ => return None,
        };
        // T1 < T2 < lease; values out of order give way to the defaults (§4.4.5).
        let t1 = secs(OptionCode::Renewal).filter(|&t| t < lease_time).unwrap_or(lease_time / 2);
        let t2 =
            secs(OptionCode::Rebinding).filter(|&t| t > t1 && t < lease_time).unwrap_or((lease_time * 7 / 8).max(t1));
        Some(Lease {
            addr: ack.yiaddr(),
            mask: match opts.get(OptionCode::SubnetMask) {
                Some(DhcpOption::SubnetMask(m)) => Some(*m),
                _ => None,
            },
            router: match opts.get(OptionCode::Router) {
                Some(DhcpOption::Router(r)) => r.first().copied(),
                _ => None,
            },
            dns: match opts.get(OptionCode::DomainNameServer) {
                Some(DhcpOption::DomainNameServer(d)) => d.clone(),
                _ => Vec::new(),
            },
            server_id,
            lease_time,
            t1,
            t2,
            start,
        })
    }
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// No answer yet: send the DISCOVER or REQUEST again.
    Retransmit,
    /// T1: start renewing.
    Renew,
    /// T2: start rebinding.
    Rebind,
    /// The lease runs out.
    Expire,
    /// Start over from INIT.
    Restart,
}

/// When the client next wants [`Client::on_timer`], and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub at: Instant,
    pub kind: TimerKind,
}

/// A message for the client to send: from which address and port, to which.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub message: v4::Message,
    /// `0.0.0.0:68` while the client has no address; its address otherwise.
    pub from: SocketAddrV4,
    /// `255.255.255.255:67`, or the server's address when renewing or releasing.
    pub to: SocketAddrV4,
}

impl Outgoing {
    /// The bytes to put in the UDP datagram.
    pub fn bytes(&self) -> Vec<u8> {
        wire::encode(&self.message)
    }

    /// Whether it goes to everyone on the link.
    pub fn is_broadcast(&self) -> bool {
        *self.to.ip() == Ipv4Addr::BROADCAST
    }
}

/// The offer the client is answering in REQUESTING.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offer {
    addr: Ipv4Addr,
    server_id: Ipv4Addr,
}

/// The DHCP client.
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    /// Where the client is; changed only by [`Client::enter`].
    state: State,
    /// The current exchange's transaction id: every message of one DORA (or one renewal) shares it.
    xid: Xid,
    /// When the current exchange began, for `secs`.
    exchange_start: Instant,
    /// When the current exchange's first REQUEST went out: the lease counts from then.
    request_sent: Instant,
    /// How many times the current message has been sent.
    tries: u32,
    /// The offer being requested (REQUESTING).
    offer: Option<Offer>,
    /// The address asked for in INIT-REBOOT and REBOOTING.
    reboot_addr: Option<Ipv4Addr>,
    /// The lease held (BOUND, RENEWING, REBINDING).
    lease: Option<Lease>,
    /// What the client waits for next.
    timer: Option<Timer>,
    /// An INFORM still waiting for its answer: sent again, with the same xid, on the
    /// acquisition backoff (§4.1), beside the lease's own timers.
    inform: Option<Inform>,
    /// Recent state changes, oldest first.
    transitions: VecDeque<Transition>,
}

/// An INFORM in flight.
#[derive(Debug, Clone)]
struct Inform {
    out: Outgoing,
    /// Times sent so far.
    tries: u32,
    /// When to send it again (or give up).
    at: Instant,
}

impl Client {
    /// A client in INIT, or in INIT-REBOOT when the config names an address to ask for.
    pub fn new(config: ClientConfig) -> Self {
        let state = if config.requested_ip.is_some() { State::InitReboot } else { State::Init };
        Client {
            reboot_addr: config.requested_ip,
            config,
            state,
            xid: Xid(0),
            exchange_start: Instant::ZERO,
            request_sent: Instant::ZERO,
            tries: 0,
            offer: None,
            lease: None,
            timer: None,
            inform: None,
            transitions: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The current exchange's transaction id.
    pub fn xid(&self) -> Xid {
        self.xid
    }

    /// The lease the client holds, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The recent state changes, oldest first.
    pub fn transitions(&self) -> impl Iterator<Item = &Transition> {
        self.transitions.iter()
    }

    /// When [`Client::on_timer`] wants to run next, and why.
    pub fn timer(&self) -> Option<Timer> {
        self.timer
    }

    /// When [`Client::on_timer`] wants to run next.
    pub fn next_timer(&self) -> Option<Instant> {
        let inform = self.inform.as_ref().map(|i| i.at);
        self.timer.map(|t| t.at).into_iter().chain(inform).min()
    }

    /// Whether an INFORM still waits for its answer.
    pub fn informing(&self) -> bool {
        self.inform.is_some()
    }

    /// The one place the state changes: records `state=A=>B`.
    fn enter(&mut self, next: State, now: Instant) {
        if next != self.state {
            if self.transitions.len() == MAX_TRANSITIONS {
                self.transitions.pop_front();
            }
            self.transitions.push_back(Transition { from: self.state, to: next, at: now });
            self.state = next;
        }
    }

    /// Starts (or starts over): from INIT-REBOOT, a REQUEST for the address in mind; otherwise a
    /// DISCOVER. A fresh xid either way. A client already holding a lease is left alone.
    pub fn start(&mut self, now: Instant) -> Option<Outgoing> {
        if matches!(self.state, State::Bound | State::Renewing | State::Rebinding) {
            return None;
        }
        self.new_exchange(now);
        self.offer = None;
        if self.state == State::InitReboot && self.reboot_addr.is_some() {
            self.enter(State::Rebooting, now);
            self.request_sent = now;
            return Some(self.send(now));
        }
        self.reboot_addr = None;
        self.enter(State::Init, now);
        self.enter(State::Selecting, now);
        Some(self.send(now))
    }

    /// The machine restarted: the client asks for the address of its lease again (INIT-REBOOT,
    /// REBOOTING), or starts from INIT if it had none.
    pub fn reboot(&mut self, now: Instant) -> Option<Outgoing> {
        let addr = self.lease.take().map(|l| l.addr).or(self.reboot_addr);
        self.reboot_addr = addr;
        self.timer = None;
        self.enter(if addr.is_some() { State::InitReboot } else { State::Init }, now);
        self.start(now)
    }

    /// A message that arrived on port 68. Replies to other clients or to other exchanges are
    /// ignored.
    pub fn on_message(&mut self, msg: &v4::Message, now: Instant) -> Option<Outgoing> {
        if msg.opcode() != Opcode::BootReply || msg.xid() != self.xid.0 || chaddr(msg) != self.config.mac {
            return None;
        }
        // The answer to an INFORM: settings, no lease. Nothing else changes.
        if self.inform.is_some() && msg.opts().msg_type() == Some(MessageType::Ack) && msg.yiaddr().is_unspecified() {
            self.inform = None;
            return None;
        }
        let server_id = match msg.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
            _ => None,
        };
        match (self.state, msg.opts().msg_type()?) {
            (State::Selecting, MessageType::Offer) => {
                let server_id = server_id?;
                if msg.yiaddr().is_unspecified() {
                    return None;
                }
                // The first offer wins: the lab has one server.
                self.offer = Some(Offer { addr: msg.yiaddr(), server_id });
                self.enter(State::Requesting, now);
                self.tries = 0;
                self.request_sent = now;
                Some(self.send(now))
            }
            (State::Requesting | State::Rebooting | State::Renewing | State::Rebinding, MessageType::Ack) => {
                let expected = match self.state {
                    State::Requesting => self.offer.map(|o| o.addr),
                    State::Rebooting => self.reboot_addr,
                    _ => self.lease.as_ref().map(|l| l.addr),
                };
                if Some(msg.yiaddr()) != expected {
                    return None;
                }
                let lease = Lease::from_ack(msg, self.request_sent)?;
                self.timer = Some(Timer { at: lease.t1_at(), kind: TimerKind::Renew });
                self.lease = Some(lease);
                self.offer = None;
                self.reboot_addr = None;
                self.enter(State::Bound, now);
                None
            }
            (State::Requesting | State::Rebooting | State::Renewing | State::Rebinding, MessageType::Nak) => {
                if let (State::Requesting, Some(offer), Some(s)) = (self.state, self.offer, server_id)
                    && s != offer.server_id
                {
                    return None;
                }
                self.restart(now, self.config.restart_delay);
                None
            }
            _ => None,
        }
    }

    /// INFORM (RFC 2131 §3.4): a client that has its address asks only for the other
    /// settings, by unicast to the server, in a new exchange. Its state and lease do not
    /// change; the answer is an ACK without a lease, which [`Client::on_message`] ignores.
    pub fn inform(&mut self, now: Instant) -> Option<Outgoing> {
        let (addr, server_id) = self.lease.as_ref().map(|l| (l.addr, l.server_id))?;
        self.xid = Xid(rand::random());
        self.exchange_start = now;
        let mut message = self.message(MessageType::Inform, addr, now);
        message.opts_mut().insert(parameter_request_list());
        let out = Outgoing { message, from: SocketAddrV4::new(addr, 68), to: SocketAddrV4::new(server_id, 67) };
        self.inform = Some(Inform { out: out.clone(), tries: 1, at: now + self.backoff(1) });
        Some(out)
    }

    /// The wait before the next try of a message sent `tries` times while acquiring (§4.1):
    /// 4 s, doubling, at most 64 s.
    fn backoff(&self, tries: u32) -> Duration {
        let doublings = tries.saturating_sub(1).min(16);
        (self.config.retransmit_initial * (1 << doublings)).min(self.config.retransmit_max)
    }

    /// Time passed: retransmits, renews, rebinds, gives the lease up or starts over, as due. Call
    /// it when [`Client::next_timer`] comes, and again while `next_timer` is not in the future.
    pub fn on_timer(&mut self, now: Instant) -> Option<Outgoing> {
        // An INFORM without an answer: again, with the same xid, until it has tried enough.
        let held = self.lease.as_ref().is_some_and(|l| now < l.expires_at());
        if let Some(inform) = self.inform.as_mut().filter(|i| held && now >= i.at) {
            if inform.tries >= self.config.request_tries {
                self.inform = None;
            } else {
                inform.tries += 1;
                let tries = inform.tries;
                let out = inform.out.clone();
                let wait = self.backoff(tries);
                if let Some(inform) = self.inform.as_mut() {
                    inform.at = now + wait;
                }
                return Some(out);
            }
        }
        let timer = self.timer?;
        if now < timer.at {
            return None;
        }
        // The lease's deadlines first, so a late call still lands in the right state.
        if let Some(lease) = &self.lease {
            let (t1, t2, end) = (lease.t1_at(), lease.t2_at(), lease.expires_at());
            if now >= end {
                self.restart(now, self.config.restart_delay);
                return None;
            }
            if now >= t2 && self.state != State::Rebinding {
                self.new_exchange(now);
                self.enter(State::Rebinding, now);
                return Some(self.send(now));
            }
            if now >= t1 && self.state == State::Bound {
                self.new_exchange(now);
                self.enter(State::Renewing, now);
                return Some(self.send(now));
            }
        }
        match (self.state, timer.kind) {
            (State::Init, TimerKind::Restart) => self.start(now),
            (State::Selecting | State::Renewing | State::Rebinding, TimerKind::Retransmit) => Some(self.send(now)),
            (State::Requesting | State::Rebooting, TimerKind::Retransmit) => {
                if self.tries >= self.config.request_tries {
                    self.restart(now, self.config.restart_delay);
                    None
                } else {
                    Some(self.send(now))
                }
            }
            _ => None,
        }
    }

    /// The user gives the address back: RELEASE, unicast to the server; the client goes to INIT
    /// and stays there until [`Client::start`].
    pub fn release(&mut self, now: Instant) -> Option<Outgoing> {
        if !matches!(self.state, State::Bound | State::Renewing | State::Rebinding) {
            return None;
        }
        let lease = self.lease.take()?;
        self.inform = None;
        self.xid = Xid::random();
        let mut m = self.message(MessageType::Release, lease.addr, now);
        m.opts_mut().insert(DhcpOption::ServerIdentifier(lease.server_id));
        self.timer = None;
        self.enter(State::Init, now);
        Some(Outgoing { message: m, from: client_addr(lease.addr), to: server_addr(lease.server_id) })
    }

    /// The client found its new address in use by another host (RFC 2131 §4.4.1 suggests an ARP
    /// probe): DECLINE, broadcast, then INIT, starting over after [`ClientConfig::decline_delay`].
    pub fn decline(&mut self, now: Instant) -> Option<Outgoing> {
        if self.state != State::Bound {
            return None;
        }
        let lease = self.lease.take()?;
        let mut m = self.message(MessageType::Decline, Ipv4Addr::UNSPECIFIED, now);
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(lease.addr));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(lease.server_id));
        self.restart(now, self.config.decline_delay);
        Some(Outgoing { message: m, from: client_addr(Ipv4Addr::UNSPECIFIED), to: broadcast() })
    }

    /// Back to INIT without a lease, starting over after `delay`.
    fn restart(&mut self, now: Instant, delay: Duration) {
        self.lease = None;
        self.inform = None;
        self.offer = None;
        self.reboot_addr = None;
        self.timer = Some(Timer { at: now + delay, kind: TimerKind::Restart });
        self.enter(State::Init, now);
    }

    /// A new exchange: a fresh xid, `secs` counting from now.
    fn new_exchange(&mut self, now: Instant) {
        // A new exchange takes the xid: an INFORM still waiting could not be told apart.
        self.inform = None;
        self.xid = Xid::random();
        self.exchange_start = now;
        self.request_sent = now;
        self.tries = 0;
    }

    /// The message the current state sends (again), and the timer for the next try.
    fn send(&mut self, now: Instant) -> Outgoing {
        self.tries += 1;
        let lease_addr = self.lease.as_ref().map(|l| l.addr).unwrap_or(Ipv4Addr::UNSPECIFIED);
        let out = match self.state {
            State::Renewing | State::Rebinding => {
                // Renewing asks the server that gave the lease; rebinding asks anyone.
                let mut m = self.message(MessageType::Request, lease_addr, now);
                m.opts_mut().insert(parameter_request_list());
                let to = match (&self.lease, self.state) {
                    (Some(l), State::Renewing) => server_addr(l.server_id),
                    _ => broadcast(),
                };
                Outgoing { message: m, from: client_addr(lease_addr), to }
            }
            state => {
                let t = if state == State::Selecting { MessageType::Discover } else { MessageType::Request };
                let mut m = self.message(t, Ipv4Addr::UNSPECIFIED, now);
                m.set_flags(Flags::default().set_broadcast());
                m.opts_mut().insert(parameter_request_list());
                if let (State::Requesting, Some(offer)) = (state, self.offer) {
                    m.opts_mut().insert(DhcpOption::RequestedIpAddress(offer.addr));
                    m.opts_mut().insert(DhcpOption::ServerIdentifier(offer.server_id));
                }
                if let (State::Rebooting, Some(addr)) = (state, self.reboot_addr) {
                    m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
                }
                Outgoing { message: m, from: client_addr(Ipv4Addr::UNSPECIFIED), to: broadcast() }
            }
        };
        self.timer = Some(self.retransmit_timer(now));
        out
    }

    /// When to try again: exponential backoff while acquiring (§4.1); half the time left to T2 or
    /// to the lease's end, but at least a minute, while renewing or rebinding (§4.4.5).
    fn retransmit_timer(&self, now: Instant) -> Timer {
        let retry = |deadline: Instant, kind| {
            let wait = ((deadline - now) / 2).max(self.config.renew_retry_min);
            if now + wait < deadline {
                Timer { at: now + wait, kind: TimerKind::Retransmit }
            } else {
                Timer { at: deadline, kind }
            }
        };
        match (self.state, &self.lease) {
            (State::Renewing, Some(l)) => retry(l.t2_at(), TimerKind::Rebind),
            (State::Rebinding, Some(l)) => retry(l.expires_at(), TimerKind::Expire),
            _ => Timer { at: now + self.backoff(self.tries), kind: TimerKind::Retransmit },
        }
    }

    /// A client message's header: the exchange's xid, `secs` since it began, the MAC, option 53
    /// and option 61.
    fn message(&self, t: MessageType, ciaddr: Ipv4Addr, now: Instant) -> v4::Message {
        let zero = Ipv4Addr::UNSPECIFIED;
        let mut m = v4::Message::new_with_id(self.xid.0, ciaddr, zero, zero, zero, &self.config.mac);
        m.set_secs(u16::try_from((now - self.exchange_start).as_secs()).unwrap_or(u16::MAX));
        m.opts_mut().insert(DhcpOption::MessageType(t));
        if self.config.client_id {
            let mut id = vec![1];
            id.extend_from_slice(&self.config.mac);
            m.opts_mut().insert(DhcpOption::ClientIdentifier(id));
        }
        m
    }
}

/// Option 55: what the client wants to know besides its address.
fn parameter_request_list() -> DhcpOption {
    DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::AddressLeaseTime,
        OptionCode::Renewal,
        OptionCode::Rebinding,
    ])
}

fn client_addr(addr: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(addr, v4::CLIENT_PORT)
}

fn server_addr(addr: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(addr, v4::SERVER_PORT)
}

fn broadcast() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::BROADCAST, v4::SERVER_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::dhcp::lease::LeaseState;
    use crate::labs::dhcp::server::{Destination, Reply, Server};

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, last)
    }

    fn t(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    fn client(mac_last: u8) -> Client {
        Client::new(ClientConfig { mac: [2, 0, 0, 0, 0, mac_last], ..ClientConfig::default() })
    }

    /// Through the bytes, as on the wire: encode, then parse on the other side.
    fn to_server(server: &mut Server, out: &Outgoing, now: Instant) -> Option<Reply> {
        server.handle_bytes(&out.bytes(), now)
    }

    fn to_client(client: &mut Client, reply: &Reply, now: Instant) -> Option<Outgoing> {
        client.on_message(&wire::parse(&reply.bytes()).unwrap(), now)
    }

    fn msg_type(m: &v4::Message) -> MessageType {
        m.opts().msg_type().unwrap()
    }

    /// DISCOVER, OFFER, REQUEST, ACK at `now`; returns the four messages.
    fn dora(client: &mut Client, server: &mut Server, now: Instant) -> [v4::Message; 4] {
        let discover = client.start(now).expect("DISCOVER");
        let offer = to_server(server, &discover, now).expect("OFFER");
        let request = to_client(client, &offer, now).expect("REQUEST");
        let ack = to_server(server, &request, now).expect("ACK");
        assert_eq!(to_client(client, &ack, now), None);
        [discover.message, offer.message, request.message, ack.message]
    }

    fn states(client: &Client) -> Vec<String> {
        client.transitions().map(|t| t.to_string()).collect()
    }

    #[test]
    fn dora_in_memory() {
        let mut server = Server::default();
        let mut c = client(1);
        let discover = c.start(t(0)).unwrap();
        assert_eq!(
            (discover.from.to_string(), discover.to.to_string()),
            ("0.0.0.0:68".into(), "255.255.255.255:67".into())
        );
        assert_eq!(c.state(), State::Selecting);
        let offer = to_server(&mut server, &discover, t(0)).unwrap();
        let request = to_client(&mut c, &offer, t(0)).unwrap();
        assert!(request.is_broadcast());
        assert_eq!(request.from.to_string(), "0.0.0.0:68");
        assert_eq!(c.state(), State::Requesting);
        let ack = to_server(&mut server, &request, t(0)).unwrap();
        assert_eq!(to_client(&mut c, &ack, t(0)), None);
        assert_eq!(c.state(), State::Bound);
        assert_eq!(states(&c), ["state=INIT=>SELECTING", "state=SELECTING=>REQUESTING", "state=REQUESTING=>BOUND"]);

        let four = [&discover.message, &offer.message, &request.message, &ack.message];
        let types: Vec<_> = four.iter().map(|m| msg_type(m)).collect();
        assert_eq!(types, [MessageType::Discover, MessageType::Offer, MessageType::Request, MessageType::Ack]);
        assert!(four.iter().all(|m| m.xid() == c.xid().0), "one xid across DORA");
        assert_eq!(ack.message.yiaddr(), offer.message.yiaddr());
        // The REQUEST names the offer and the server it came from.
        let opts = request.message.opts();
        assert_eq!(opts.get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ip(10))));
        assert_eq!(opts.get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
        assert_eq!(request.message.ciaddr(), Ipv4Addr::UNSPECIFIED);

        let lease = c.lease().unwrap();
        assert_eq!(
            lease,
            &Lease {
                addr: ip(10),
                mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
                router: Some(SERVER),
                dns: vec![SERVER],
                server_id: SERVER,
                lease_time: Duration::from_secs(120),
                t1: Duration::from_secs(60),
                t2: Duration::from_secs(105),
                start: t(0),
            }
        );
        assert_eq!(c.timer(), Some(Timer { at: t(60), kind: TimerKind::Renew }));
        assert_eq!(server.pool().binding_of(&crate::labs::dhcp::lease::ClientKey::of(&request.message)), Some(ip(10)));

        // The steps, as the lab will show them.
        let summaries: Vec<String> = [discover.bytes(), offer.bytes(), request.bytes(), ack.bytes()]
            .iter()
            .map(|b| wire::describe(b, 0).summary)
            .collect();
        let x = c.xid();
        assert_eq!(
            summaries,
            [
                format!("DISCOVER xid={x} from 02:00:00:00:00:01"),
                format!("OFFER 192.0.2.10 lease 120 s xid={x}"),
                format!("REQUEST 192.0.2.10 from server 192.0.2.2 xid={x}"),
                format!("ACK 192.0.2.10 lease 120 s xid={x}"),
            ]
        );
    }

    #[test]
    fn a_second_run_has_a_new_xid() {
        let mut server = Server::default();
        let mut c = client(1);
        let first = dora(&mut c, &mut server, t(0));
        c.release(t(1)).unwrap();
        let second = dora(&mut c, &mut server, t(2));
        assert_ne!(first[0].xid(), second[0].xid());
        assert!(second.iter().all(|m| m.xid() == second[0].xid()));
        // Two clients, two xids, two addresses.
        let mut other = client(2);
        let third = dora(&mut other, &mut server, t(3));
        assert_ne!(third[0].xid(), second[0].xid());
        assert_eq!(third[3].yiaddr(), ip(11));
    }

    #[test]
    fn asking_for_an_address_outside_the_pool_is_naked_then_dora() {
        let mut server = Server::default();
        let config = ClientConfig { requested_ip: Some(ip(200)), ..ClientConfig::default() };
        let mut c = Client::new(config);
        assert_eq!(c.state(), State::InitReboot);
        let request = c.start(t(0)).unwrap();
        assert_eq!(c.state(), State::Rebooting);
        assert!(request.is_broadcast());
        let m = &request.message;
        assert_eq!(msg_type(m), MessageType::Request);
        assert_eq!(m.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ip(200))));
        assert_eq!(m.opts().get(OptionCode::ServerIdentifier), None);
        let nak = to_server(&mut server, &request, t(0)).unwrap();
        assert_eq!(msg_type(&nak.message), MessageType::Nak);
        assert_eq!(nak.message.xid(), m.xid());
        assert_eq!(wire::describe(&nak.bytes(), 0).kind, "dhcp.nak");
        assert_eq!(to_client(&mut c, &nak, t(0)), None);
        assert_eq!((c.state(), c.lease()), (State::Init, None));
        assert_eq!(c.timer(), Some(Timer { at: t(2), kind: TimerKind::Restart }));
        // After the restart delay: a plain DORA, which gets an address from the pool.
        let discover = c.on_timer(t(2)).unwrap();
        assert_eq!(msg_type(&discover.message), MessageType::Discover);
        assert_ne!(discover.message.xid(), m.xid());
        let offer = to_server(&mut server, &discover, t(2)).unwrap();
        let request = to_client(&mut c, &offer, t(2)).unwrap();
        let ack = to_server(&mut server, &request, t(2)).unwrap();
        to_client(&mut c, &ack, t(2));
        assert_eq!(c.lease().map(|l| l.addr), Some(ip(10)));
        assert_eq!(
            states(&c),
            [
                "state=INIT-REBOOT=>REBOOTING",
                "state=REBOOTING=>INIT",
                "state=INIT=>SELECTING",
                "state=SELECTING=>REQUESTING",
                "state=REQUESTING=>BOUND"
            ]
        );
    }

    #[test]
    fn asking_for_a_taken_address_is_naked() {
        let mut server = Server::default();
        let mut holder = client(9);
        dora(&mut holder, &mut server, t(0));
        let mut c = Client::new(ClientConfig { requested_ip: Some(ip(10)), ..ClientConfig::default() });
        let request = c.start(t(1)).unwrap();
        let nak = to_server(&mut server, &request, t(1)).unwrap();
        assert_eq!(msg_type(&nak.message), MessageType::Nak);
        to_client(&mut c, &nak, t(1));
        assert_eq!(c.state(), State::Init);
        // A free address is granted: INIT-REBOOT straight to BOUND.
        let mut d = Client::new(ClientConfig {
            mac: [2, 0, 0, 0, 0, 3],
            requested_ip: Some(ip(30)),
            ..ClientConfig::default()
        });
        let request = d.start(t(1)).unwrap();
        let ack = to_server(&mut server, &request, t(1)).unwrap();
        to_client(&mut d, &ack, t(1));
        assert_eq!((d.state(), d.lease().map(|l| l.addr)), (State::Bound, Some(ip(30))));
    }

    #[test]
    fn release_frees_the_address_for_the_next_client() {
        let mut server = Server::default();
        let mut a = client(1);
        dora(&mut a, &mut server, t(0));
        let release = a.release(t(10)).unwrap();
        assert_eq!(msg_type(&release.message), MessageType::Release);
        assert_eq!((release.from.to_string(), release.to.to_string()), ("192.0.2.10:68".into(), "192.0.2.2:67".into()));
        assert_eq!(release.message.ciaddr(), ip(10));
        assert_eq!(to_server(&mut server, &release, t(10)), None);
        assert_eq!((a.state(), a.lease(), a.next_timer()), (State::Init, None, None));
        assert_eq!(wire::describe(&release.bytes(), 0).summary, format!("RELEASE 192.0.2.10 xid={}", a.xid()));
        let mut b = client(2);
        let four = dora(&mut b, &mut server, t(11));
        assert_eq!(four[3].yiaddr(), ip(10));
    }

    #[test]
    fn decline_marks_the_address_bad() {
        let mut server = Server::default();
        let mut a = client(1);
        dora(&mut a, &mut server, t(0));
        let decline = a.decline(t(1)).unwrap();
        assert!(decline.is_broadcast());
        assert_eq!(msg_type(&decline.message), MessageType::Decline);
        assert_eq!(to_server(&mut server, &decline, t(1)), None);
        assert_eq!(server.pool_mut().state(ip(10), t(1)), LeaseState::Declined);
        assert_eq!(c_state_timer(&a), (State::Init, Some(Timer { at: t(11), kind: TimerKind::Restart })));
        let discover = a.on_timer(t(11)).unwrap();
        let offer = to_server(&mut server, &discover, t(11)).unwrap();
        assert_eq!(offer.message.yiaddr(), ip(11));
    }

    fn c_state_timer(c: &Client) -> (State, Option<Timer>) {
        (c.state(), c.timer())
    }

    #[test]
    fn renewing_rebinding_expiry_when_the_server_is_silent() {
        let mut server = Server::default();
        let mut c = client(1);
        let dora_xid = dora(&mut c, &mut server, t(0))[0].xid();
        assert_eq!(c.next_timer(), Some(t(60)));
        assert_eq!(c.on_timer(t(59)), None, "not yet");
        let renew = c.on_timer(t(60)).unwrap();
        assert_eq!(c.state(), State::Renewing);
        assert_eq!((renew.from.to_string(), renew.to.to_string()), ("192.0.2.10:68".into(), "192.0.2.2:67".into()));
        let m = &renew.message;
        assert_eq!((msg_type(m), m.ciaddr()), (MessageType::Request, ip(10)));
        assert_eq!(m.opts().get(OptionCode::RequestedIpAddress), None);
        assert_eq!(m.opts().get(OptionCode::ServerIdentifier), None);
        assert_ne!(m.xid(), dora_xid, "a renewal is a new exchange");
        assert_eq!(wire::describe(&renew.bytes(), 0).summary, format!("REQUEST 192.0.2.10 renew xid={}", c.xid()));
        // Half of the 45 s to T2 is less than a minute: the next thing is T2 itself.
        assert_eq!(c.timer(), Some(Timer { at: t(105), kind: TimerKind::Rebind }));
        let rebind = c.on_timer(t(105)).unwrap();
        assert_eq!(c.state(), State::Rebinding);
        assert!(rebind.is_broadcast());
        assert_eq!(rebind.from.to_string(), "192.0.2.10:68");
        assert_eq!((msg_type(&rebind.message), rebind.message.ciaddr()), (MessageType::Request, ip(10)));
        assert_eq!(c.timer(), Some(Timer { at: t(120), kind: TimerKind::Expire }));
        assert_eq!(c.on_timer(t(120)), None);
        assert_eq!((c.state(), c.lease()), (State::Init, None));
        assert_eq!(states(&c)[3..], ["state=BOUND=>RENEWING", "state=RENEWING=>REBINDING", "state=REBINDING=>INIT"]);
        let at: Vec<Instant> = c.transitions().skip(3).map(|t| t.at).collect();
        assert_eq!(at, [t(60), t(105), t(120)]);
        // And it starts over.
        assert_eq!(c.timer(), Some(Timer { at: t(122), kind: TimerKind::Restart }));
        let discover = c.on_timer(t(122)).unwrap();
        assert_eq!((c.state(), msg_type(&discover.message)), (State::Selecting, MessageType::Discover));
    }

    #[test]
    fn a_renewal_ack_resets_the_timers() {
        let mut server = Server::default();
        let mut c = client(1);
        dora(&mut c, &mut server, t(0));
        let renew = c.on_timer(t(60)).unwrap();
        let ack = to_server(&mut server, &renew, t(60)).unwrap();
        assert_eq!(ack.to, Destination::Unicast(ip(10)));
        assert_eq!(ack.message.xid(), renew.message.xid());
        assert_eq!(to_client(&mut c, &ack, t(60)), None);
        assert_eq!(c.state(), State::Bound);
        let lease = c.lease().unwrap();
        assert_eq!((lease.t1_at(), lease.t2_at(), lease.expires_at()), (t(120), t(165), t(180)));
        assert_eq!(c.timer(), Some(Timer { at: t(120), kind: TimerKind::Renew }));
        // A rebinding answered by the server works the same way.
        c.on_timer(t(120)).unwrap();
        let rebind = c.on_timer(t(165)).unwrap();
        let ack = to_server(&mut server, &rebind, t(165)).unwrap();
        to_client(&mut c, &ack, t(165));
        assert_eq!((c.state(), c.lease().unwrap().expires_at()), (State::Bound, t(285)));
    }

    #[test]
    fn a_late_timer_lands_in_the_right_state() {
        let mut server = Server::default();
        let mut c = client(1);
        dora(&mut c, &mut server, t(0));
        // The first call after T2 goes straight to REBINDING.
        let out = c.on_timer(t(110)).unwrap();
        assert!(out.is_broadcast());
        assert_eq!(c.state(), State::Rebinding);
        let mut d = client(2);
        dora(&mut d, &mut server, t(0));
        assert_eq!(d.on_timer(t(500)), None);
        assert_eq!(d.state(), State::Init);
    }

    #[test]
    fn discover_is_retransmitted_with_backoff_and_the_same_xid() {
        let mut c = client(1);
        let first = c.start(t(0)).unwrap();
        let mut at = Vec::new();
        let mut secs = Vec::new();
        for _ in 0..6 {
            let when = c.next_timer().unwrap();
            let again = c.on_timer(when).unwrap();
            assert_eq!(again.message.xid(), first.message.xid());
            assert_eq!(msg_type(&again.message), MessageType::Discover);
            at.push(when.since_start().as_secs());
            secs.push(again.message.secs());
        }
        assert_eq!(at, [4, 12, 28, 60, 124, 188]);
        assert_eq!(secs, [4, 12, 28, 60, 124, 188]);
        assert_eq!(c.state(), State::Selecting);
    }

    #[test]
    fn requesting_gives_up_after_its_tries() {
        let mut server = Server::default();
        let mut c = client(1);
        let discover = c.start(t(0)).unwrap();
        let offer = to_server(&mut server, &discover, t(0)).unwrap();
        to_client(&mut c, &offer, t(0)).unwrap();
        let mut sent = 1;
        while let Some(when) = c.next_timer() {
            match c.on_timer(when) {
                Some(out) if c.state() == State::Requesting => {
                    assert_eq!(msg_type(&out.message), MessageType::Request);
                    sent += 1;
                }
                _ => break,
            }
        }
        assert_eq!(sent, 4);
        assert_eq!(c.state(), State::Init);
    }

    #[test]
    fn ignores_what_is_not_for_it() {
        let mut server = Server::default();
        let mut c = client(1);
        let discover = c.start(t(0)).unwrap();
        let offer = to_server(&mut server, &discover, t(0)).unwrap();
        // Another exchange's xid.
        let mut stale = offer.message.clone();
        stale.set_xid(stale.xid().wrapping_add(1));
        assert_eq!(c.on_message(&stale, t(0)), None);
        // Another client's MAC.
        let mut other = offer.message.clone();
        other.set_chaddr(&[2, 0, 0, 0, 0, 7]);
        assert_eq!(c.on_message(&other, t(0)), None);
        // An ACK while selecting.
        let mut ack = offer.message.clone();
        ack.opts_mut().insert(DhcpOption::MessageType(MessageType::Ack));
        assert_eq!(c.on_message(&ack, t(0)), None);
        assert_eq!(c.state(), State::Selecting);
        assert!(c.on_message(&offer.message, t(0)).is_some());
    }

    #[test]
    fn reboot_asks_for_the_old_address() {
        let mut server = Server::default();
        let mut c = client(1);
        dora(&mut c, &mut server, t(0));
        let request = c.reboot(t(30)).unwrap();
        assert_eq!(c.state(), State::Rebooting);
        assert_eq!(
            request.message.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(ip(10)))
        );
        let ack = to_server(&mut server, &request, t(30)).unwrap();
        to_client(&mut c, &ack, t(30));
        assert_eq!((c.state(), c.lease().unwrap().expires_at()), (State::Bound, t(150)));
        assert!(states(&c).ends_with(&[
            "state=BOUND=>INIT-REBOOT".to_string(),
            "state=INIT-REBOOT=>REBOOTING".to_string(),
            "state=REBOOTING=>BOUND".to_string()
        ]));
    }

    /// A server, and a client bound by a whole DORA with it at `now`.
    fn bound_by_dora(now: Instant) -> (Server, Client) {
        let mut server = Server::default();
        let mut c = Client::new(ClientConfig::default());
        let mut out = c.start(now);
        while let Some(o) = out {
            let reply = server.handle(&o.message, now).unwrap();
            out = c.on_message(&wire::parse(&reply.bytes()).unwrap(), now);
        }
        (server, c)
    }

    #[test]
    fn inform_asks_for_settings_only_and_changes_nothing() {
        let now = Instant::from_secs(1);
        let (mut server, mut c) = bound_by_dora(now);
        assert_eq!(c.state(), State::Bound);
        let lease = c.lease().cloned();
        let inform = c.inform(now).expect("bound clients may inform");
        assert_eq!(inform.message.opts().msg_type(), Some(MessageType::Inform));
        assert_eq!(inform.message.ciaddr(), lease.as_ref().unwrap().addr);
        assert!(!inform.is_broadcast(), "unicast to the server");
        let ack = server.handle(&inform.message, now).expect("the server answers");
        assert!(ack.message.yiaddr().is_unspecified(), "no address given");
        assert!(ack.message.opts().get(OptionCode::AddressLeaseTime).is_none(), "no lease");
        assert_eq!(c.on_message(&wire::parse(&ack.bytes()).unwrap(), now), None);
        assert_eq!((c.state(), c.lease().cloned()), (State::Bound, lease));
        assert!(!c.informing(), "answered: nothing more to send");
    }

    #[test]
    fn an_unanswered_inform_is_sent_again_with_the_same_xid_then_given_up() {
        let now = Instant::from_secs(1);
        let (mut server, mut c) = bound_by_dora(now);
        let first = c.inform(now).unwrap();
        // Lost: 4 s later it goes again, then after 8 s; the lease's own timers are untouched.
        assert_eq!(c.next_timer(), Some(now + Duration::from_secs(4)));
        let again = c.on_timer(now + Duration::from_secs(4)).expect("the INFORM again");
        assert_eq!(again.message.xid(), first.message.xid());
        assert_eq!(again.message.opts().msg_type(), Some(MessageType::Inform));
        assert_eq!(c.next_timer(), Some(now + Duration::from_secs(12)));
        // This time the answer comes.
        let ack = server.handle(&again.message, now).unwrap();
        assert_eq!(c.on_message(&wire::parse(&ack.bytes()).unwrap(), now), None);
        assert!(!c.informing());
        assert_eq!(c.state(), State::Bound);
        // One never answered is sent four times in all (after 4, 8 and 16 s more) and given up
        // 32 s later, which here is T1: the lease's own timer still fires, and renews.
        c.inform(now).unwrap();
        let sent = [4, 12, 28].iter().filter_map(|&t| c.on_timer(now + Duration::from_secs(t))).count();
        assert_eq!(sent, 3);
        let renewal = c.on_timer(now + Duration::from_secs(60)).expect("T1 came");
        assert_eq!(renewal.message.opts().msg_type(), Some(MessageType::Request));
        assert!(!c.informing());
        assert_eq!(c.state(), State::Renewing);
    }
}
