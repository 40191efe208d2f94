//! The server's address pool (RFC 2131 §4.3): which addresses are free, offered, bound or
//! declined, and until when. Sans-IO: time comes in as `now`, and nothing here reads a clock, so
//! an hour of leases runs in a test in no time at all.
//!
//! An address moves between four states, each change recorded by [`Pool`]'s one transition
//! function:
//!
//! ```text
//!          DISCOVER                REQUEST                 lease runs out, or RELEASE
//!  FREE ──────────────▶ OFFERED ──────────────▶ BOUND ──────────────────────────────▶ FREE
//!   ▲   offer not taken in time │                 │ DECLINE (the client found it in use)
//!   └───────────────────────────┘                 ▼
//!   └──────────── quarantine over ─────────── DECLINED
//! ```
//!
//! Expiry is lazy: every call first retires what `now` has passed.

use super::wire::{chaddr, mac};
use dhcproto::v4::{self, DhcpOption, OptionCode};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A moment on the lab's clock: the time since the lab started. The caller says what `now` is
/// (the sim wire's clock, which stops while a frame waits at the gate, or real elapsed time); the
/// DHCP code only compares and adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The moment the lab started.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// `since_start` after the lab started.
    pub const fn from_duration(since_start: Duration) -> Self {
        Instant(since_start)
    }

    pub const fn from_secs(secs: u64) -> Self {
        Instant(Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Instant(Duration::from_millis(millis))
    }

    /// The time since the lab started.
    pub const fn since_start(self) -> Duration {
        self.0
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

/// The time from `earlier` to `self`; zero if `earlier` is later.
impl Sub for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} s", self.0.as_secs_f64())
    }
}

/// Who a client is to the server (RFC 2131 §4.2): its client identifier (option 61) if it sent
/// one, else its hardware address. A client keeps its address across messages by this key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// Option 61, as sent (for Ethernet usually type 1 and the MAC).
    ClientId(Vec<u8>),
    /// `chaddr`, `hlen` bytes of it.
    Chaddr(Vec<u8>),
}

impl ClientKey {
    /// The key of the client that sent `msg`.
    pub fn of(msg: &v4::Message) -> Self {
        match msg.opts().get(OptionCode::ClientIdentifier) {
            Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => ClientKey::ClientId(id.clone()),
            _ => ClientKey::Chaddr(chaddr(msg).to_vec()),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::ClientId(id) => write!(f, "client-id {}", mac(id)),
            ClientKey::Chaddr(hw) => write!(f, "{}", mac(hw)),
        }
    }
}

/// What the server hands out, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// The server's own address: option 54 in every reply, and how clients tell servers apart.
    pub server_id: Ipv4Addr,
    /// The lab subnet's network address; the server answers only inside it.
    pub network: Ipv4Addr,
    /// The subnet mask, option 1.
    pub mask: Ipv4Addr,
    /// The first address the pool hands out.
    pub first: Ipv4Addr,
    /// The last address the pool hands out.
    pub last: Ipv4Addr,
    /// The default gateway, option 3.
    pub router: Ipv4Addr,
    /// Name servers, option 6.
    pub dns: Vec<Ipv4Addr>,
    /// How long a lease lasts, option 51. Short, so a lab shows renewal within a minute or two.
    pub lease_time: Duration,
    /// How long an offered address stays reserved for the client it was offered to.
    pub offer_hold: Duration,
    /// How long a declined address stays out of the pool (RFC 2131 §4.3.3 says "not available").
    pub decline_hold: Duration,
}

impl Default for PoolConfig {
    /// The lab network 192.0.2.0/24 (TEST-NET-1, RFC 5737): the server host 192.0.2.2 is also
    /// the network's gateway and name server, as a home router running dnsmasq would be.
    fn default() -> Self {
        PoolConfig {
            server_id: Ipv4Addr::new(192, 0, 2, 2),
            network: Ipv4Addr::new(192, 0, 2, 0),
            mask: Ipv4Addr::new(255, 255, 255, 0),
            first: Ipv4Addr::new(192, 0, 2, 10),
            last: Ipv4Addr::new(192, 0, 2, 50),
            router: Ipv4Addr::new(192, 0, 2, 2),
            dns: vec![Ipv4Addr::new(192, 0, 2, 2)],
            lease_time: Duration::from_secs(120),
            offer_hold: Duration::from_secs(30),
            decline_hold: Duration::from_secs(600),
        }
    }
}

impl PoolConfig {
    /// T1, when the client starts renewing: 50 % of the lease (RFC 2131 §4.4.5).
    pub fn t1(&self) -> Duration {
        self.lease_time / 2
    }

    /// T2, when the client starts rebinding: 87.5 % of the lease (RFC 2131 §4.4.5).
    pub fn t2(&self) -> Duration {
        self.lease_time * 7 / 8
    }

    /// Whether `addr` is on the lab subnet.
    pub fn in_subnet(&self, addr: Ipv4Addr) -> bool {
        let mask = u32::from(self.mask);
        u32::from(addr) & mask == u32::from(self.network) & mask
    }

    /// Whether `addr` is one the pool hands out.
    pub fn in_pool(&self, addr: Ipv4Addr) -> bool {
        (u32::from(self.first)..=u32::from(self.last)).contains(&u32::from(addr))
    }
}

/// Where one address is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// Nobody has it: the pool may offer it.
    Free,
    /// Offered to a client that has not asked for it yet (between OFFER and REQUEST).
    Offered,
    /// Leased: the client has it until its lease runs out.
    Bound,
    /// A client found it in use by someone else (DECLINE): kept out of the pool for a while.
    Declined,
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseState::Free => "FREE",
            LeaseState::Offered => "OFFERED",
            LeaseState::Bound => "BOUND",
            LeaseState::Declined => "DECLINED",
        })
    }
}

/// One address that is not free: its state, who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub state: LeaseState,
    /// The client it is offered or bound to; `None` for a declined address.
    pub client: Option<ClientKey>,
    /// When the offer, lease or quarantine ends.
    pub until: Instant,
}

/// One recorded change of an address's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub addr: Ipv4Addr,
    pub from: LeaseState,
    pub to: LeaseState,
    pub at: Instant,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} state={}=>{}", self.addr, self.from, self.to)
    }
}

/// A lease granted: what goes into the ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub addr: Ipv4Addr,
    /// How long the lease lasts from now (option 51).
    pub lease_time: Duration,
    /// When it runs out, on the server's clock.
    pub expires: Instant,
}

/// Why the pool will not give a client an address: the reason a NAK carries (option 56).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not on the lab subnet: the client moved, or asks for an address from another network.
    WrongSubnet(Ipv4Addr),
    /// On the subnet, but not one the pool hands out.
    OutsidePool(Ipv4Addr),
    /// Offered to, or bound to, another client.
    Taken(Ipv4Addr),
    /// Declined by a client earlier: in quarantine.
    Declined(Ipv4Addr),
    /// The client asks for an address this server did not offer it (or the offer ran out and the
    /// address went to someone else).
    NotOffered(Ipv4Addr),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongSubnet(a) => write!(f, "{a} is not on this network"),
            Refusal::OutsidePool(a) => write!(f, "{a} is not in this server's pool"),
            Refusal::Taken(a) => write!(f, "{a} is in use by another client"),
            Refusal::Declined(a) => write!(f, "{a} was declined as in use"),
            Refusal::NotOffered(a) => write!(f, "{a} was not offered to this client"),
        }
    }
}

/// State changes the pool remembers, for the UI and for tests; the oldest go first.
pub const MAX_TRANSITIONS: usize = 256;

/// The server's pool: every address that is not free, and what each client had last.
#[derive(Debug, Clone)]
pub struct Pool {
    config: PoolConfig,
    /// Addresses that are offered, bound or declined; an address not here is free.
    entries: BTreeMap<Ipv4Addr, Entry>,
    /// The address each client had last, so a returning client gets it again (RFC 2131 §4.3.1).
    previous: HashMap<ClientKey, Ipv4Addr>,
    /// Recent state changes, oldest first; changed only by [`Pool::set`].
    transitions: VecDeque<Transition>,
}

impl Pool {
    pub fn new(config: PoolConfig) -> Self {
        Pool { config, entries: BTreeMap::new(), previous: HashMap::new(), transitions: VecDeque::new() }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Where `addr` is now (after retiring what `now` has passed).
    pub fn state(&mut self, addr: Ipv4Addr, now: Instant) -> LeaseState {
        self.expire(now);
        self.entries.get(&addr).map_or(LeaseState::Free, |e| e.state)
    }

    /// The addresses that are not free, in address order.
    pub fn entries(&self) -> impl Iterator<Item = (Ipv4Addr, &Entry)> {
        self.entries.iter().map(|(a, e)| (*a, e))
    }

    /// The recent state changes, oldest first.
    pub fn transitions(&self) -> impl Iterator<Item = &Transition> {
        self.transitions.iter()
    }

    /// The address bound to `client`, if any.
    pub fn binding_of(&self, client: &ClientKey) -> Option<Ipv4Addr> {
        self.find(client, LeaseState::Bound)
    }

    /// When the next offer, lease or quarantine runs out: when the pool changes by itself.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries.values().map(|e| e.until).min()
    }

    /// The one place an address changes state: records `state=A=>B`.
    fn set(&mut self, addr: Ipv4Addr, entry: Option<Entry>, now: Instant) {
        let from = self.entries.get(&addr).map_or(LeaseState::Free, |e| e.state);
        let to = entry.as_ref().map_or(LeaseState::Free, |e| e.state);
        match entry {
            Some(e) => {
                self.entries.insert(addr, e);
            }
            None => {
                self.entries.remove(&addr);
            }
        }
        if from != to {
            if self.transitions.len() == MAX_TRANSITIONS {
                self.transitions.pop_front();
            }
            self.transitions.push_back(Transition { addr, from, to, at: now });
        }
    }

    /// Retires offers, leases and quarantines that `now` has passed.
    pub fn expire(&mut self, now: Instant) {
        let done: Vec<Ipv4Addr> = self.entries.iter().filter(|(_, e)| e.until <= now).map(|(a, _)| *a).collect();
        for addr in done {
            // Record the end time, not `now`: a lease that ran out at 120 s ended then.
            let at = self.entries[&addr].until;
            self.set(addr, None, at);
        }
    }

    /// The address `client` holds in `state`, if any.
    fn find(&self, client: &ClientKey, state: LeaseState) -> Option<Ipv4Addr> {
        self.entries.iter().find(|(_, e)| e.state == state && e.client.as_ref() == Some(client)).map(|(a, _)| *a)
    }

    /// Whether `addr` is free or already belongs to `client`.
    fn available_to(&self, addr: Ipv4Addr, client: &ClientKey) -> bool {
        match self.entries.get(&addr) {
            None => true,
            Some(e) => e.state != LeaseState::Declined && e.client.as_ref() == Some(client),
        }
    }

    /// DISCOVER: reserves an address for `client` and returns it, or `None` when the pool is
    /// exhausted. In order of preference (RFC 2131 §4.3.1): the address the client holds now, the
    /// one it asks for (option 50) if free, the one it had last if free, the lowest free one.
    pub fn offer(&mut self, client: &ClientKey, requested: Option<Ipv4Addr>, now: Instant) -> Option<Ipv4Addr> {
        self.expire(now);
        let current = self.find(client, LeaseState::Bound).or_else(|| self.find(client, LeaseState::Offered));
        let wanted = [requested, self.previous.get(client).copied()]
            .into_iter()
            .flatten()
            .find(|&a| self.config.in_pool(a) && self.available_to(a, client));
        let addr = current.or(wanted).or_else(|| {
            (u32::from(self.config.first)..=u32::from(self.config.last))
                .map(Ipv4Addr::from)
                .find(|a| !self.entries.contains_key(a))
        })?;
        // A client holds one offer at a time: a new DISCOVER replaces the old reservation.
        if let Some(old) = self.find(client, LeaseState::Offered)
            && old != addr
        {
            self.set(old, None, now);
        }
        if self.entries.get(&addr).map(|e| e.state) != Some(LeaseState::Bound) {
            let entry =
                Entry { state: LeaseState::Offered, client: Some(client.clone()), until: now + self.config.offer_hold };
            self.set(addr, Some(entry), now);
        }
        Some(addr)
    }

    /// REQUEST: binds `addr` to `client`, or says why not. With `must_be_offered` (a client in
    /// SELECTING answering this server's OFFER) the address must be the one offered to it or
    /// already bound to it; otherwise (INIT-REBOOT, RENEWING, REBINDING) a free address in the
    /// pool is granted too: this server is authoritative for the lab network.
    pub fn request(
        &mut self,
        client: &ClientKey,
        addr: Ipv4Addr,
        must_be_offered: bool,
        now: Instant,
    ) -> Result<Binding, Refusal> {
        self.expire(now);
        if !self.config.in_subnet(addr) {
            return Err(Refusal::WrongSubnet(addr));
        }
        if !self.config.in_pool(addr) {
            return Err(Refusal::OutsidePool(addr));
        }
        match self.entries.get(&addr) {
            Some(e) if e.state == LeaseState::Declined => return Err(Refusal::Declined(addr)),
            Some(e) if e.client.as_ref() != Some(client) => return Err(Refusal::Taken(addr)),
            None if must_be_offered => return Err(Refusal::NotOffered(addr)),
            _ => {}
        }
        // One address per client: a client that moves to another address gives up the old one.
        for state in [LeaseState::Offered, LeaseState::Bound] {
            if let Some(old) = self.find(client, state)
                && old != addr
            {
                self.set(old, None, now);
            }
        }
        let expires = now + self.config.lease_time;
        self.set(addr, Some(Entry { state: LeaseState::Bound, client: Some(client.clone()), until: expires }), now);
        self.previous.insert(client.clone(), addr);
        Ok(Binding { addr, lease_time: self.config.lease_time, expires })
    }

    /// The client chose another server's offer: its reservation here ends (RFC 2131 §4.3.2).
    pub fn withdraw_offer(&mut self, client: &ClientKey, now: Instant) {
        self.expire(now);
        if let Some(addr) = self.find(client, LeaseState::Offered) {
            self.set(addr, None, now);
        }
    }

    /// RELEASE: `client` gives `addr` back. Returns whether anything was freed; a release of an
    /// address the client does not hold changes nothing.
    pub fn release(&mut self, client: &ClientKey, addr: Ipv4Addr, now: Instant) -> bool {
        self.expire(now);
        match self.entries.get(&addr) {
            Some(e) if e.state == LeaseState::Bound && e.client.as_ref() == Some(client) => {
                self.set(addr, None, now);
                true
            }
            _ => false,
        }
    }

    /// DECLINE: `client` found `addr` in use by another host; the address leaves the pool for
    /// [`PoolConfig::decline_hold`]. Only the client it was offered or bound to can decline it.
    pub fn decline(&mut self, client: &ClientKey, addr: Ipv4Addr, now: Instant) -> bool {
        self.expire(now);
        match self.entries.get(&addr) {
            Some(e) if e.state != LeaseState::Declined && e.client.as_ref() == Some(client) => {
                let until = now + self.config.decline_hold;
                self.set(addr, Some(Entry { state: LeaseState::Declined, client: None, until }), now);
                self.previous.remove(client);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, last)
    }

    fn key(n: u8) -> ClientKey {
        ClientKey::Chaddr(vec![2, 0, 0, 0, 0, n])
    }

    fn t(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn t1_and_t2_are_half_and_seven_eighths() {
        let c = PoolConfig::default();
        assert_eq!(c.lease_time, Duration::from_secs(120));
        assert_eq!(c.t1(), Duration::from_secs(60));
        assert_eq!(c.t2(), Duration::from_secs(105));
    }

    #[test]
    fn offers_the_lowest_free_address_and_holds_it() {
        let mut pool = Pool::new(PoolConfig::default());
        assert_eq!(pool.offer(&key(1), None, t(0)), Some(ip(10)));
        assert_eq!(pool.offer(&key(2), None, t(0)), Some(ip(11)));
        // The same client asking again gets the same offer.
        assert_eq!(pool.offer(&key(1), None, t(1)), Some(ip(10)));
        assert_eq!(pool.state(ip(10), t(1)), LeaseState::Offered);
        // The offer runs out after the hold.
        assert_eq!(pool.state(ip(10), t(31)), LeaseState::Free);
    }

    #[test]
    fn a_requested_address_is_offered_when_free() {
        let mut pool = Pool::new(PoolConfig::default());
        assert_eq!(pool.offer(&key(1), Some(ip(42)), t(0)), Some(ip(42)));
        // Outside the pool: the lowest free one instead.
        assert_eq!(pool.offer(&key(2), Some(ip(200)), t(0)), Some(ip(10)));
        // Taken: ditto.
        assert_eq!(pool.offer(&key(3), Some(ip(42)), t(0)), Some(ip(11)));
    }

    #[test]
    fn request_binds_the_offer_and_refuses_others() {
        let mut pool = Pool::new(PoolConfig::default());
        let a = pool.offer(&key(1), None, t(0)).unwrap();
        let b = pool.request(&key(1), a, true, t(1)).unwrap();
        assert_eq!(b, Binding { addr: a, lease_time: Duration::from_secs(120), expires: t(121) });
        assert_eq!(pool.binding_of(&key(1)), Some(a));
        assert_eq!(pool.request(&key(2), a, false, t(2)), Err(Refusal::Taken(a)));
        assert_eq!(pool.request(&key(2), ip(20), true, t(2)), Err(Refusal::NotOffered(ip(20))));
        assert_eq!(pool.request(&key(2), ip(200), false, t(2)), Err(Refusal::OutsidePool(ip(200))));
        let far = Ipv4Addr::new(10, 0, 0, 5);
        assert_eq!(pool.request(&key(2), far, false, t(2)), Err(Refusal::WrongSubnet(far)));
        assert_eq!(Refusal::WrongSubnet(far).to_string(), "10.0.0.5 is not on this network");
    }

    #[test]
    fn leases_expire_and_renewals_extend_them() {
        let mut pool = Pool::new(PoolConfig::default());
        let a = pool.offer(&key(1), Some(ip(42)), t(0)).unwrap();
        pool.request(&key(1), a, true, t(0)).unwrap();
        let renewed = pool.request(&key(1), a, false, t(60)).unwrap();
        assert_eq!(renewed.expires, t(180));
        assert_eq!(pool.state(a, t(179)), LeaseState::Bound);
        assert_eq!(pool.state(a, t(180)), LeaseState::Free);
        assert_eq!(pool.next_expiry(), None);
        // The lease ended at 180 s, and the record says so.
        let last = pool.transitions().last().unwrap();
        assert_eq!((last.to_string(), last.at), ("192.0.2.42 state=BOUND=>FREE".into(), t(180)));
        // A returning client gets its old address back, though a lower one is free.
        assert_eq!(pool.offer(&key(1), None, t(200)), Some(ip(42)));
        assert_eq!(pool.offer(&key(2), None, t(200)), Some(ip(10)));
    }

    #[test]
    fn release_frees_and_decline_quarantines() {
        let mut pool = Pool::new(PoolConfig::default());
        let a = pool.offer(&key(1), None, t(0)).unwrap();
        pool.request(&key(1), a, true, t(0)).unwrap();
        assert!(!pool.release(&key(2), a, t(1)), "only the holder can release");
        assert!(pool.release(&key(1), a, t(1)));
        assert_eq!(pool.offer(&key(2), None, t(2)), Some(a));
        pool.request(&key(2), a, true, t(2)).unwrap();
        assert!(pool.decline(&key(2), a, t(3)));
        assert_eq!(pool.state(a, t(3)), LeaseState::Declined);
        assert_eq!(pool.offer(&key(3), Some(a), t(4)), Some(ip(11)));
        assert_eq!(pool.request(&key(3), a, false, t(4)), Err(Refusal::Declined(a)));
        assert_eq!(pool.state(a, t(603)), LeaseState::Free);
        let states: Vec<String> = pool.transitions().filter(|t| t.addr == a).map(|t| t.to_string()).collect();
        assert_eq!(
            states,
            [
                "192.0.2.10 state=FREE=>OFFERED",
                "192.0.2.10 state=OFFERED=>BOUND",
                "192.0.2.10 state=BOUND=>FREE",
                "192.0.2.10 state=FREE=>OFFERED",
                "192.0.2.10 state=OFFERED=>BOUND",
                "192.0.2.10 state=BOUND=>DECLINED",
                "192.0.2.10 state=DECLINED=>FREE",
            ]
        );
    }

    #[test]
    fn an_exhausted_pool_offers_nothing() {
        let config = PoolConfig { first: ip(10), last: ip(11), ..PoolConfig::default() };
        let mut pool = Pool::new(config);
        assert!(pool.offer(&key(1), None, t(0)).is_some());
        assert!(pool.offer(&key(2), None, t(0)).is_some());
        assert_eq!(pool.offer(&key(3), None, t(0)), None);
        // Once the offers run out, there is room again.
        assert!(pool.offer(&key(3), None, t(30)).is_some());
    }

    #[test]
    fn client_key_prefers_client_id() {
        let mut msg = v4::Message::new_with_id(
            1,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &[2, 0, 0, 0, 0, 1],
        );
        assert_eq!(ClientKey::of(&msg), ClientKey::Chaddr(vec![2, 0, 0, 0, 0, 1]));
        msg.opts_mut().insert(DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 1]));
        assert_eq!(ClientKey::of(&msg), ClientKey::ClientId(vec![1, 2, 0, 0, 0, 0, 1]));
    }
}
