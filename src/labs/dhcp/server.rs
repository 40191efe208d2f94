//! The lab's DHCP server (RFC 2131 §4.3), sans-IO: a decoded message and the time in, the reply
//! and where it goes out. It never sends anything by itself; whoever owns the socket decides.
//!
//! ```text
//!  DISCOVER                      → OFFER   an address reserved from the pool
//!  REQUEST  server id, 50        → ACK     SELECTING: the client takes this server's offer
//!           (another server id)  → —       the client took another server's offer: ours ends
//!           50, no ciaddr        → ACK     INIT-REBOOT: the client asks for its old address
//!           ciaddr, no 50        → ACK     RENEWING (unicast) or REBINDING (broadcast)
//!           not the client's     → NAK     wrong subnet, outside the pool, taken, not offered
//!  RELEASE                       → —       the address goes back to the pool
//!  DECLINE                       → —       the address is in use by someone: out of the pool
//!  INFORM                        → ACK     settings only: no yiaddr, no lease
//! ```
//!
//! The server answers only for its own subnet: relayed messages (giaddr set) and replies from
//! other servers are ignored.

use super::lease::{Binding, ClientKey, Instant, Pool, PoolConfig};
use super::wire::{self, chaddr};
use dhcproto::v4::{self, DhcpOption, MessageType, Opcode, OptionCode};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Where a reply goes (RFC 2131 §4.1, for a server with no relay agents in between).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255:68: the client has no address yet (or a NAK, which is always broadcast).
    Broadcast,
    /// The client's address, port 68: it told us its address in `ciaddr` (renewing, INFORM).
    Unicast(Ipv4Addr),
}

/// A message for the server to send, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub message: v4::Message,
    pub to: Destination,
}

impl Reply {
    /// The UDP destination: port 68, the client's port.
    pub fn addr(&self) -> SocketAddrV4 {
        match self.to {
            Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, v4::CLIENT_PORT),
            Destination::Unicast(a) => SocketAddrV4::new(a, v4::CLIENT_PORT),
        }
    }

    /// The bytes to put in the UDP datagram.
    pub fn bytes(&self) -> Vec<u8> {
        wire::encode(&self.message)
    }
}

/// The server: its pool, and nothing else; every decision is in [`Server::handle`].
#[derive(Debug, Clone)]
pub struct Server {
    /// The addresses, who has which, and until when.
    pool: Pool,
}

impl Default for Server {
    fn default() -> Self {
        Server::new(PoolConfig::default())
    }
}

impl Server {
    pub fn new(config: PoolConfig) -> Self {
        Server { pool: Pool::new(config) }
    }

    /// The pool, for the UI's lease table and for tests.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn pool_mut(&mut self) -> &mut Pool {
        &mut self.pool
    }

    fn config(&self) -> &PoolConfig {
        self.pool.config()
    }

    /// A UDP payload that arrived on port 67: decoded, then [`Server::handle`]d. Bytes that are
    /// not a DHCP message get no answer.
    pub fn handle_bytes(&mut self, payload: &[u8], now: Instant) -> Option<Reply> {
        let msg = wire::parse(payload).ok()?;
        self.handle(&msg, now)
    }

    /// One message from a client. Returns the reply to send, if the message asks for one.
    pub fn handle(&mut self, msg: &v4::Message, now: Instant) -> Option<Reply> {
        if msg.opcode() != Opcode::BootRequest || !msg.giaddr().is_unspecified() || chaddr(msg).is_empty() {
            return None;
        }
        let client = ClientKey::of(msg);
        let requested = addr_option(msg, OptionCode::RequestedIpAddress);
        let server_id = addr_option(msg, OptionCode::ServerIdentifier);
        let ours = server_id.is_none_or(|s| s == self.config().server_id);
        match msg.opts().msg_type()? {
            MessageType::Discover => {
                let addr = self.pool.offer(&client, requested, now)?;
                Some(self.offer(msg, addr))
            }
            MessageType::Request => self.request(msg, &client, requested, server_id, now),
            MessageType::Release => {
                if ours {
                    self.pool.release(&client, msg.ciaddr(), now);
                }
                None
            }
            MessageType::Decline => {
                if ours && let Some(addr) = requested {
                    self.pool.decline(&client, addr, now);
                }
                None
            }
            MessageType::Inform => {
                let ciaddr = msg.ciaddr();
                if !self.config().in_subnet(ciaddr) || ciaddr.is_unspecified() {
                    return None;
                }
                let mut ack = self.reply(msg, MessageType::Ack, Ipv4Addr::UNSPECIFIED);
                ack.set_ciaddr(ciaddr);
                self.settings(&mut ack);
                Some(Reply { message: ack, to: Destination::Unicast(ciaddr) })
            }
            _ => None,
        }
    }

    /// REQUEST, in whichever client state it was sent (RFC 2131 §4.3.2).
    fn request(
        &mut self,
        msg: &v4::Message,
        client: &ClientKey,
        requested: Option<Ipv4Addr>,
        server_id: Option<Ipv4Addr>,
        now: Instant,
    ) -> Option<Reply> {
        let ciaddr = msg.ciaddr();
        let result = match (server_id, requested) {
            // SELECTING, but the client chose another server: our offer ends, and we say nothing.
            (Some(s), _) if s != self.config().server_id => {
                self.pool.withdraw_offer(client, now);
                return None;
            }
            // SELECTING: the client takes our offer.
            (Some(_), Some(addr)) if ciaddr.is_unspecified() => self.pool.request(client, addr, true, now),
            // INIT-REBOOT: the client asks to keep the address it had.
            (None, Some(addr)) if ciaddr.is_unspecified() => self.pool.request(client, addr, false, now),
            // RENEWING (unicast to us) or REBINDING (broadcast): extend the lease on ciaddr.
            (None, None) if !ciaddr.is_unspecified() => self.pool.request(client, ciaddr, false, now),
            // Not a REQUEST RFC 2131 table 5 allows.
            _ => return None,
        };
        Some(match result {
            Ok(binding) => self.ack(msg, binding),
            Err(refusal) => {
                let mut nak = self.reply(msg, MessageType::Nak, Ipv4Addr::UNSPECIFIED);
                nak.opts_mut().insert(DhcpOption::Message(refusal.to_string()));
                Reply { message: nak, to: Destination::Broadcast }
            }
        })
    }

    fn offer(&self, msg: &v4::Message, addr: Ipv4Addr) -> Reply {
        let mut offer = self.reply(msg, MessageType::Offer, addr);
        self.lease_options(&mut offer, self.config().lease_time.as_secs());
        self.settings(&mut offer);
        Reply { message: offer, to: Destination::Broadcast }
    }

    fn ack(&self, msg: &v4::Message, binding: Binding) -> Reply {
        let mut ack = self.reply(msg, MessageType::Ack, binding.addr);
        // ciaddr echoes the REQUEST's: set when renewing or rebinding (RFC 2131 table 3).
        ack.set_ciaddr(msg.ciaddr());
        self.lease_options(&mut ack, binding.lease_time.as_secs());
        self.settings(&mut ack);
        let to =
            if msg.ciaddr().is_unspecified() { Destination::Broadcast } else { Destination::Unicast(msg.ciaddr()) };
        Reply { message: ack, to }
    }

    /// A reply's header (RFC 2131 table 3): the client's xid, flags and chaddr, and option 53 and
    /// 54 (the server identifier, so the client knows whom it talks to).
    fn reply(&self, msg: &v4::Message, t: MessageType, yiaddr: Ipv4Addr) -> v4::Message {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut reply = v4::Message::new_with_id(msg.xid(), unspecified, yiaddr, unspecified, unspecified, chaddr(msg));
        reply.set_opcode(Opcode::BootReply).set_htype(msg.htype()).set_flags(msg.flags());
        reply.opts_mut().insert(DhcpOption::MessageType(t));
        reply.opts_mut().insert(DhcpOption::ServerIdentifier(self.config().server_id));
        reply
    }

    /// Options 51, 58 and 59: the lease and when to renew and rebind (RFC 2132 §9.2, §9.11, §9.12).
    fn lease_options(&self, reply: &mut v4::Message, lease_secs: u64) {
        let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        let lease = u32::try_from(lease_secs).unwrap_or(u32::MAX);
        reply.opts_mut().insert(DhcpOption::AddressLeaseTime(lease));
        reply.opts_mut().insert(DhcpOption::Renewal(secs(self.config().t1())));
        reply.opts_mut().insert(DhcpOption::Rebinding(secs(self.config().t2())));
    }

    /// Options 1, 3 and 6: the subnet mask, the router and the name servers.
    fn settings(&self, reply: &mut v4::Message) {
        let c = self.config();
        reply.opts_mut().insert(DhcpOption::SubnetMask(c.mask));
        reply.opts_mut().insert(DhcpOption::Router(vec![c.router]));
        if !c.dns.is_empty() {
            reply.opts_mut().insert(DhcpOption::DomainNameServer(c.dns.clone()));
        }
    }
}

/// An address option (50 or 54), if the message has it.
fn addr_option(msg: &v4::Message, code: OptionCode) -> Option<Ipv4Addr> {
    match msg.opts().get(code) {
        Some(DhcpOption::RequestedIpAddress(a) | DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::dhcp::lease::LeaseState;
    use dhcproto::v4::Flags;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, last)
    }

    fn t(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    /// A client message, built by hand so the server is tested on its own.
    fn request(t: MessageType, mac: [u8; 6], ciaddr: Ipv4Addr, opts: &[DhcpOption]) -> v4::Message {
        let zero = Ipv4Addr::UNSPECIFIED;
        let mut m = v4::Message::new_with_id(0x1234_5678, ciaddr, zero, zero, zero, &mac);
        m.set_flags(Flags::default().set_broadcast());
        m.opts_mut().insert(DhcpOption::MessageType(t));
        for o in opts {
            m.opts_mut().insert(o.clone());
        }
        m
    }

    fn discover(mac: [u8; 6]) -> v4::Message {
        request(MessageType::Discover, mac, Ipv4Addr::UNSPECIFIED, &[])
    }

    fn select(mac: [u8; 6], addr: Ipv4Addr) -> v4::Message {
        let opts = [DhcpOption::RequestedIpAddress(addr), DhcpOption::ServerIdentifier(SERVER)];
        request(MessageType::Request, mac, Ipv4Addr::UNSPECIFIED, &opts)
    }

    fn msg_type(r: &Reply) -> MessageType {
        r.message.opts().msg_type().unwrap()
    }

    fn nak_text(r: &Reply) -> String {
        match r.message.opts().get(OptionCode::Message) {
            Some(DhcpOption::Message(s)) => s.clone(),
            other => panic!("no message option: {other:?}"),
        }
    }

    #[test]
    fn offer_and_ack_carry_the_rfc_2132_options() {
        let mut server = Server::default();
        let offer = server.handle(&discover(MAC), t(0)).unwrap();
        assert_eq!(msg_type(&offer), MessageType::Offer);
        assert_eq!(offer.to, Destination::Broadcast);
        assert_eq!(offer.addr().to_string(), "255.255.255.255:68");
        let m = &offer.message;
        assert_eq!((m.opcode(), m.xid(), m.chaddr(), m.yiaddr()), (Opcode::BootReply, 0x1234_5678, &MAC[..], ip(10)));
        assert!(m.flags().broadcast());
        let opts = m.opts();
        assert_eq!(opts.get(OptionCode::SubnetMask), Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0))));
        assert_eq!(opts.get(OptionCode::Router), Some(&DhcpOption::Router(vec![SERVER])));
        assert_eq!(opts.get(OptionCode::DomainNameServer), Some(&DhcpOption::DomainNameServer(vec![SERVER])));
        assert_eq!(opts.get(OptionCode::AddressLeaseTime), Some(&DhcpOption::AddressLeaseTime(120)));
        assert_eq!(opts.get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
        assert_eq!(opts.get(OptionCode::Renewal), Some(&DhcpOption::Renewal(60)));
        assert_eq!(opts.get(OptionCode::Rebinding), Some(&DhcpOption::Rebinding(105)));

        let ack = server.handle(&select(MAC, ip(10)), t(1)).unwrap();
        assert_eq!(msg_type(&ack), MessageType::Ack);
        assert_eq!((ack.message.yiaddr(), ack.to), (ip(10), Destination::Broadcast));
        assert_eq!(ack.message.opts().get(OptionCode::AddressLeaseTime), Some(&DhcpOption::AddressLeaseTime(120)));
        assert_eq!(server.pool_mut().state(ip(10), t(1)), LeaseState::Bound);
        // What goes on the wire decodes back to the same message.
        assert_eq!(wire::parse(&ack.bytes()).unwrap(), ack.message);
    }

    #[test]
    fn request_for_what_was_not_offered_is_naked() {
        let mut server = Server::default();
        let nak = server.handle(&select(MAC, ip(10)), t(0)).unwrap();
        assert_eq!((msg_type(&nak), nak.to), (MessageType::Nak, Destination::Broadcast));
        assert_eq!(nak.message.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(nak.message.opts().get(OptionCode::AddressLeaseTime), None);
        assert_eq!(nak_text(&nak), "192.0.2.10 was not offered to this client");
    }

    #[test]
    fn init_reboot_outside_the_pool_or_taken_is_naked() {
        let mut server = Server::default();
        let reboot = |mac, addr| {
            request(MessageType::Request, mac, Ipv4Addr::UNSPECIFIED, &[DhcpOption::RequestedIpAddress(addr)])
        };
        let nak = server.handle(&reboot(MAC, Ipv4Addr::new(10, 0, 0, 99)), t(0)).unwrap();
        assert_eq!(nak_text(&nak), "10.0.0.99 is not on this network");
        let nak = server.handle(&reboot(MAC, ip(200)), t(0)).unwrap();
        assert_eq!(nak_text(&nak), "192.0.2.200 is not in this server's pool");
        // Another client holds .10.
        server.handle(&discover([2, 0, 0, 0, 0, 9]), t(0)).unwrap();
        server.handle(&select([2, 0, 0, 0, 0, 9], ip(10)), t(0)).unwrap();
        let nak = server.handle(&reboot(MAC, ip(10)), t(1)).unwrap();
        assert_eq!(nak_text(&nak), "192.0.2.10 is in use by another client");
        // A free address in the pool: the authoritative lab server grants it.
        let ack = server.handle(&reboot(MAC, ip(33)), t(1)).unwrap();
        assert_eq!((msg_type(&ack), ack.message.yiaddr()), (MessageType::Ack, ip(33)));
    }

    #[test]
    fn renewing_is_unicast_and_extends_the_lease() {
        let mut server = Server::default();
        server.handle(&discover(MAC), t(0)).unwrap();
        server.handle(&select(MAC, ip(10)), t(0)).unwrap();
        let renew = request(MessageType::Request, MAC, ip(10), &[]);
        let ack = server.handle(&renew, t(60)).unwrap();
        assert_eq!((msg_type(&ack), ack.to), (MessageType::Ack, Destination::Unicast(ip(10))));
        assert_eq!((ack.message.ciaddr(), ack.message.yiaddr()), (ip(10), ip(10)));
        assert_eq!(ack.addr().to_string(), "192.0.2.10:68");
        assert_eq!(server.pool_mut().state(ip(10), t(179)), LeaseState::Bound);
    }

    #[test]
    fn choosing_another_server_withdraws_the_offer() {
        let mut server = Server::default();
        server.handle(&discover(MAC), t(0)).unwrap();
        let other = [DhcpOption::RequestedIpAddress(ip(99)), DhcpOption::ServerIdentifier(ip(3))];
        assert_eq!(server.handle(&request(MessageType::Request, MAC, Ipv4Addr::UNSPECIFIED, &other), t(1)), None);
        assert_eq!(server.pool_mut().state(ip(10), t(1)), LeaseState::Free);
    }

    #[test]
    fn release_frees_and_decline_marks_bad() {
        let mut server = Server::default();
        server.handle(&discover(MAC), t(0)).unwrap();
        server.handle(&select(MAC, ip(10)), t(0)).unwrap();
        let release = request(MessageType::Release, MAC, ip(10), &[DhcpOption::ServerIdentifier(SERVER)]);
        assert_eq!(server.handle(&release, t(5)), None);
        assert_eq!(server.pool_mut().state(ip(10), t(5)), LeaseState::Free);

        server.handle(&discover(MAC), t(6)).unwrap();
        server.handle(&select(MAC, ip(10)), t(6)).unwrap();
        let opts = [DhcpOption::RequestedIpAddress(ip(10)), DhcpOption::ServerIdentifier(SERVER)];
        let decline = request(MessageType::Decline, MAC, Ipv4Addr::UNSPECIFIED, &opts);
        assert_eq!(server.handle(&decline, t(7)), None);
        assert_eq!(server.pool_mut().state(ip(10), t(7)), LeaseState::Declined);
        let offer = server.handle(&discover(MAC), t(8)).unwrap();
        assert_eq!(offer.message.yiaddr(), ip(11));
    }

    #[test]
    fn inform_gets_settings_without_a_lease() {
        let mut server = Server::default();
        let inform = request(MessageType::Inform, MAC, ip(77), &[]);
        let ack = server.handle(&inform, t(0)).unwrap();
        assert_eq!((msg_type(&ack), ack.to), (MessageType::Ack, Destination::Unicast(ip(77))));
        let m = &ack.message;
        assert_eq!((m.yiaddr(), m.ciaddr()), (Ipv4Addr::UNSPECIFIED, ip(77)));
        for code in [OptionCode::AddressLeaseTime, OptionCode::Renewal, OptionCode::Rebinding] {
            assert_eq!(m.opts().get(code), None, "{code:?}");
        }
        assert!(m.opts().get(OptionCode::SubnetMask).is_some());
        assert_eq!(server.pool().entries().count(), 0, "INFORM takes nothing from the pool");
        // From another network: not ours to answer.
        assert_eq!(server.handle(&request(MessageType::Inform, MAC, Ipv4Addr::new(10, 0, 0, 1), &[]), t(0)), None);
    }

    #[test]
    fn ignores_replies_relays_and_garbage() {
        let mut server = Server::default();
        let mut reply = discover(MAC);
        reply.set_opcode(Opcode::BootReply);
        assert_eq!(server.handle(&reply, t(0)), None);
        let mut relayed = discover(MAC);
        relayed.set_giaddr(Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(server.handle(&relayed, t(0)), None);
        assert_eq!(server.handle_bytes(b"hello", t(0)), None);
        let mut no_type = discover(MAC);
        no_type.opts_mut().remove(OptionCode::MessageType);
        assert_eq!(server.handle_bytes(&wire::encode(&no_type), t(0)), None);
        assert!(server.handle_bytes(&wire::encode(&discover(MAC)), t(0)).is_some());
    }
}
