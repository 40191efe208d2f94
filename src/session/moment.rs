//! The moment of its conversation each step is. A decoder sees one message; what it means
//! depends on what came before: the ACK that completes a handshake is not the ACK of a FIN, a
//! DHCP ACK after a renewal is not the A of DORA, and a segment or a DISCOVER sent again is not
//! new. [`Moments`] follows every conversation of a run, in step order, and refines each
//! step's `kind` (`tcp.ack` → `tcp.ack.last`, `dhcp.ack` → `dhcp.ack.renew`) and marks
//! repetitions (`again`), from the steps' fields alone: sans-IO, the same on every wire.
//!
//! TCP (RFC 9293 §3.3, the same reading a packet analyser does):
//!
//! ```text
//!  SYN                      tcp.syn            sent again with the same ISN → again
//!  SYN,ACK                  tcp.syn-ack
//!  ACK of the peer's ISN+1  tcp.ack.handshake  the handshake's third segment
//!  data                     tcp.data           starting below what the side sent already → again
//!  ACK, ack moves on        tcp.ack.data       acknowledges data
//!  ACK below one sent       tcp.ack.old        held up on the way, it arrives late
//!  ACK, same ack            tcp.ack.dup        a duplicate ACK (a copy, a gap) or,
//!                           tcp.ack.window     with a new window, a window update
//!  FIN, peer's FIN not seen tcp.fin.first      the active close (`.data` when it carries data)
//!  FIN acking the peer's    tcp.fin.second     the passive close
//!  FIN, the peer's on its   tcp.fin.simultaneous both closed at once: FINs cross on the way
//!    way, not acknowledged
//!  ACK of the peer's FIN    tcp.ack.fin        the side that has not closed yet
//!                           tcp.ack.last       the side that closed first: then TIME-WAIT
//!                           tcp.ack.closing    in a simultaneous close: CLOSING → TIME-WAIT
//!                           ….fin-again        the same ACK for a FIN that came again
//!  RST answering a SYN      tcp.rst.refused    nothing listens on that port
//!  RST after its FIN's ACK  tcp.rst.closed     the connection is gone on that side
//! ```
//!
//! On the host wire without a capture, the socket API reports each side's close without its
//! segment: the first is `socket.close.first` (the active close), the next `socket.close.second`.
//!
//! SMTP and WebSocket have no stack to read: their states (`MAIL-FROM`, `DATA`; `OPEN`,
//! `CLOSING`) are what the dialogue so far makes them, so a step shows them on any wire, with
//! our server or a real one.
//!
//! DHCP (RFC 2131): a REQUEST says its own moment (`selecting`, `reboot`, `renew`,
//! `rebind`; see [`crate::wire::dhcp`]); the server's ACK or NAK takes the moment of the
//! REQUEST with its xid (`dhcp.ack.selecting` is the A of DORA); a message of a type its sender
//! already sent with the same xid is sent again.

use super::{Fate, Step};
use std::collections::{HashMap, VecDeque};

/// Every moment a TCP segment can have (`.data` marks a FIN that carries data), for checks
/// that each has its own narration.
pub const TCP_MOMENTS: &[&str] = &[
    "tcp.syn",
    "tcp.syn-ack",
    "tcp.ack.handshake",
    "tcp.data",
    "tcp.ack.data",
    "tcp.ack.dup",
    "tcp.ack.window",
    "tcp.ack.old",
    "tcp.fin.first",
    "tcp.fin.first.data",
    "tcp.fin.second",
    "tcp.fin.second.data",
    "tcp.fin.simultaneous",
    "tcp.fin.simultaneous.data",
    "tcp.ack.fin",
    "tcp.ack.fin.fin-again",
    "tcp.ack.last",
    "tcp.ack.last.fin-again",
    "tcp.ack.closing",
    "tcp.ack.closing.fin-again",
    "tcp.rst",
    "tcp.rst.refused",
    "tcp.rst.closed",
];

/// Conversations followed at once; the oldest is forgotten past this (a long `serve`).
const MAX_CONVERSATIONS: usize = 1024;

/// Every conversation of one run so far.
#[derive(Debug, Default)]
pub struct Moments {
    tcp: Bounded<(String, String), Connection>,
    dhcp: Bounded<String, Transaction>,
    /// Closes the socket API reported, by (session, connection): the first is the active one.
    closes: Bounded<(u32, Option<String>), u32>,
    /// Application dialogues with no stack to read, by (session, connection): each end's state
    /// as the messages so far make it.
    dialogues: Bounded<(u32, Option<String>), Dialogue>,
    /// The moment of each segment seen lately, and whether it was a repeat: a router's copy of
    /// a segment on its next cable is the same moment again, not a retransmission.
    segments: Bounded<SegmentId, (String, bool)>,
}

/// What tells one TCP segment from another: a hash of its ends, numbers, flags (SYN, FIN, RST)
/// and length (no copy of the ends kept for each segment of a long transfer).
type SegmentId = u64;

/// What each end of an SMTP session or a WebSocket connection is in: `[client, server]`.
#[derive(Debug)]
struct Dialogue {
    states: [&'static str; 2],
}

impl Default for Dialogue {
    fn default() -> Self {
        Dialogue { states: ["CONNECTING", "CONNECTING"] }
    }
}

impl Moments {
    /// Refines `step.kind` by what came before it, and marks repetitions.
    pub fn place(&mut self, step: &mut Step) {
        // The cable's second copy of a frame is the same message again: nothing new happened.
        if step.fate == Fate::Duplicate {
            return;
        }
        match step.proto.as_str() {
            "TCP" if step.frame => self.tcp_segment(step),
            "TCP" if step.kind == "socket.close" => {
                // Who closes first: the socket API's view of the active and the passive close.
                let seen = self.closes.entry((step.session, step.conn.clone()));
                *seen += 1;
                step.kind.push_str(if *seen == 1 { ".first" } else { ".second" });
            }
            "DHCP" => self.dhcp_message(step),
            "SMTP" | "HTTP" | "WebSocket" if step.layer == super::Layer::Application => self.dialogue(step),
            _ => {}
        }
    }

    /// The states of an application dialogue after this message: SMTP's session state, as
    /// the lab's server names it (RFC 5321 §4.1.4's order of commands), the same for both ends;
    /// WebSocket's per end (RFC 6455 §4, §7: CONNECTING, OPEN, CLOSING, CLOSED).
    fn dialogue(&mut self, step: &mut Step) {
        let d = self.dialogues.entry((step.session, step.conn.clone()));
        let sender = usize::from(step.from == "server");
        let kind = step.kind.as_str();
        if step.proto == "SMTP" {
            let reply = kind.strip_prefix("smtp.reply.");
            let code = reply.and_then(|r| r.split('.').next()).unwrap_or("");
            let answers = reply.and_then(|r| r.split_once('.')).map_or("", |(_, a)| a);
            let next = match (code, answers) {
                ("220", _) => Some("GREETED"),
                ("250", "EHLO" | "HELO") => Some("READY"),
                ("250", "RSET") if d.states[1] != "GREETED" => Some("READY"),
                ("250", "MAIL") => Some("MAIL-FROM"),
                ("250" | "251", "RCPT") => Some("RCPT-TO"),
                ("354", "DATA") => Some("DATA"),
                (_, "text") => Some("READY"),
                ("221", _) => Some("QUIT"),
                _ => None,
            };
            if let Some(next) = next {
                d.states = [next, next];
            }
        } else {
            let other = 1 - sender;
            match kind {
                // A 101 the client cannot accept (a wrong Sec-WebSocket-Accept, say): its sender
                // thinks the connection open, the client fails it (RFC 6455 §4.1).
                "ws.handshake.response" if step.malformed.is_some() => {
                    d.states[sender] = "OPEN";
                    d.states[other] = "CLOSED";
                }
                "ws.handshake.response" => d.states = ["OPEN", "OPEN"],
                "ws.handshake.refused" => d.states = ["CLOSED", "CLOSED"],
                k if k.starts_with("ws.frame.close") => {
                    // Whoever sends a close frame, and whoever receives one, is closing.
                    d.states[sender] = "CLOSING";
                    d.states[other] = "CLOSING";
                }
                _ => {}
            }
        }
        step.states = vec![("client".into(), d.states[0].into()), ("server".into(), d.states[1].into())];
    }

    fn tcp_segment(&mut self, step: &mut Step) {
        let Some(seg) = Segment::read(step) else { return };
        let id = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&seg.src, &seg.dst, seg.seq, seg.ack, [seg.syn, seg.fin, seg.rst], seg.len).hash(&mut h);
            h.finish()
        };
        if step.forwarded
            && let Some((kind, again)) = self.segments.get(&id)
        {
            if step.malformed.is_none() {
                step.kind = kind.clone();
            }
            step.again = *again;
            return;
        }
        let key =
            if seg.src <= seg.dst { (seg.src.clone(), seg.dst.clone()) } else { (seg.dst.clone(), seg.src.clone()) };
        let conn = self.tcp.entry(key);
        let (sender, peer) = conn.sides(&seg.src);
        let (kind, again) = classify(&seg, sender, peer);
        if seg.fin && sender.fin_moment.is_none() {
            sender.fin_moment = ["tcp.fin.first", "tcp.fin.second", "tcp.fin.simultaneous"]
                .into_iter()
                .find(|&m| kind.strip_suffix(".data").unwrap_or(&kind) == m);
        }
        sender.sent(&seg, seg.acks_fin_of(peer));
        // A damaged frame shows what it could; its moment is still the sender's. Sending moves
        // the sender's state even if the cable loses the frame; only a frame that arrives whole
        // moves the receiver's.
        let delivered = step.malformed.is_none() && step.fate.taken_in();
        follow(&kind, &seg, sender, peer, delivered);
        if step.states.is_empty() {
            // No stack to read (a capture): the states the segments themselves say.
            let mut states = Vec::new();
            for (who, side) in [(&step.from, &*sender), (&step.to, &*peer)] {
                if let Some(state) = side.state {
                    states.push((who.clone(), state.to_string()));
                }
            }
            states.sort_by_key(|(who, _)| who != "client");
            step.states = states;
        }
        *self.segments.entry(id) = (kind.clone(), again);
        if step.malformed.is_none() {
            step.kind = kind;
        }
        step.again = again;
    }

    fn dhcp_message(&mut self, step: &mut Step) {
        let (Some(xid), Some(kind)) = (step.value("DHCP.xid"), step.value("DHCP.message_type")) else { return };
        let t = self.dhcp.entry(xid);
        let sent = (step.from.clone(), kind.clone());
        step.again = t.sent.contains(&sent);
        if !step.again {
            t.sent.push(sent);
        }
        match kind.as_str() {
            "REQUEST" | "INFORM" => t.asked = Some(step.kind.strip_prefix("dhcp.").unwrap_or(&step.kind).to_string()),
            "ACK" | "NAK" if !step.kind.ends_with(".inform") => {
                // The answer takes the moment of the question: request.renew → ack.renew.
                if let Some(moment) = t.asked.as_deref().and_then(|a| a.strip_prefix("request.")) {
                    step.kind = format!("{}.{moment}", step.kind);
                }
            }
            _ => {}
        }
    }
}

/// A map that forgets its oldest entries past [`MAX_CONVERSATIONS`].
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Default> Bounded<K, V> {
    fn entry(&mut self, key: K) -> &mut V {
        if !self.map.contains_key(&key) {
            if self.order.len() >= MAX_CONVERSATIONS
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
            self.order.push_back(key.clone());
        }
        self.map.entry(key).or_default()
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
}

/// One DHCP exchange (one xid).
#[derive(Debug, Default)]
struct Transaction {
    /// (sender, message type) already seen.
    sent: Vec<(String, String)>,
    /// The client's question, as a kind without `dhcp.` (`request.renew`, `inform`).
    asked: Option<String>,
}

/// What a TCP segment says, read from a step's fields.
struct Segment {
    /// `address:port` of each end.
    src: String,
    dst: String,
    seq: u32,
    ack: Option<u32>,
    window: u64,
    syn: bool,
    fin: bool,
    rst: bool,
    len: u32,
}

impl Segment {
    fn read(step: &Step) -> Option<Segment> {
        let flags = step.value("TCP.flags")?;
        let has = |f: &str| flags.split(',').any(|x| x == f);
        let at = |ip: &str, port: &str| Some(format!("{}:{}", step.value(ip)?, step.number(port)?));
        Some(Segment {
            src: at("IPv4.src", "TCP.src_port")?,
            dst: at("IPv4.dst", "TCP.dst_port")?,
            seq: step.number("TCP.seq")? as u32,
            ack: has("ACK").then(|| step.number("TCP.ack")).flatten().map(|a| a as u32),
            window: step.number("TCP.window").unwrap_or(0),
            syn: has("SYN"),
            fin: has("FIN"),
            rst: has("RST"),
            len: step.number("TCP.payload_len").unwrap_or(0) as u32,
        })
    }

    /// Whether it acknowledges `peer`'s FIN: its sender has taken that FIN in.
    fn acks_fin_of(&self, peer: &Side) -> bool {
        peer.fin.is_some_and(|f| self.ack == Some(f.wrapping_add(1)))
    }

    /// The sequence number after this segment: SYN and FIN count one each.
    fn end(&self) -> u32 {
        self.seq.wrapping_add(self.len).wrapping_add(u32::from(self.syn)).wrapping_add(u32::from(self.fin))
    }
}

/// `a` comes before `b` in sequence space (RFC 9293 §3.4: modulo 2^32).
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// What one end of a connection has sent so far.
#[derive(Debug, Default)]
struct Side {
    /// The address and port it sends from.
    addr: String,
    /// Its initial sequence number, from its SYN.
    isn: Option<u32>,
    /// The sequence number after the last byte (or SYN, FIN) it sent: SND.NXT at its highest.
    next: Option<u32>,
    /// Where its FIN sits in sequence space.
    fin: Option<u32>,
    /// How many times it sent its FIN.
    fins: u32,
    /// What its first FIN was: `tcp.fin.first`, `.second` or `.simultaneous`.
    fin_moment: Option<&'static str>,
    /// It sent its FIN before it took the peer's in: an active close, which ends in TIME-WAIT
    /// (both sides, when they close at once).
    closed_first: bool,
    /// The last acknowledgment number and window it sent.
    acked: Option<(u32, u64)>,
    /// Its TCP state as the segments so far say it (RFC 9293 §3.3.2), once one has.
    state: Option<&'static str>,
}

impl Side {
    fn sent(&mut self, seg: &Segment, took_peer_fin: bool) {
        if seg.syn {
            self.isn = Some(seg.seq);
        }
        if seg.fin {
            self.closed_first |= self.fin.is_none() && !took_peer_fin;
            self.fin = Some(seg.seq.wrapping_add(seg.len));
            self.fins += 1;
        }
        let end = seg.end();
        if self.next.is_none_or(|n| before(n, end)) {
            self.next = Some(end);
        }
        // An acknowledgment older than one already sent (held up on the way) changes nothing.
        if let Some(ack) = seg.ack.filter(|&a| self.acked.is_none_or(|(last, _)| !before(a, last))) {
            self.acked = Some((ack, seg.window));
        }
    }
}

/// Both ends of one TCP connection.
#[derive(Debug, Default)]
struct Connection {
    sides: [Side; 2],
}

impl Connection {
    /// (the side sending from `src`, the other), claiming a fresh side for a new address.
    fn sides(&mut self, src: &str) -> (&mut Side, &mut Side) {
        let i = match self.sides.iter().position(|s| s.addr == src) {
            Some(i) => i,
            None => {
                let i = self.sides.iter().position(|s| s.addr.is_empty()).unwrap_or(0);
                self.sides[i] = Side { addr: src.to_string(), ..Side::default() };
                i
            }
        };
        let [a, b] = &mut self.sides;
        if i == 0 { (a, b) } else { (b, a) }
    }
}

/// The states a segment of this moment moves its sender and, if it arrives, its receiver to
/// (RFC 9293 §3.3.2), as a packet analyser follows them: the sender is in the state it sent the
/// segment from, the receiver in the one taking it in leads to. A segment sent again means
/// what it meant the first time.
fn follow(kind: &str, seg: &Segment, sender: &mut Side, peer: &mut Side, delivered: bool) {
    let moment = kind.strip_prefix("tcp.").unwrap_or(kind);
    let (s, p): (Option<&'static str>, Option<&'static str>) = match moment {
        "syn" => (Some("SYN-SENT"), None),
        "syn-ack" => (Some("SYN-RECEIVED"), Some("ESTABLISHED")),
        "ack.handshake" => (Some("ESTABLISHED"), Some("ESTABLISHED")),
        "fin.first" | "fin.first.data" => (Some("FIN-WAIT-1"), Some("CLOSE-WAIT")),
        "ack.fin" | "ack.fin.fin-again" => (None, Some("FIN-WAIT-2")),
        // Taking it in, the side that closed first has its own FIN acknowledged: TIME-WAIT.
        "fin.second" | "fin.second.data" => (Some("LAST-ACK"), Some("TIME-WAIT")),
        // Neither has the other's FIN yet: each takes the other's in FIN-WAIT-1 → CLOSING.
        "fin.simultaneous" | "fin.simultaneous.data" => (Some("FIN-WAIT-1"), Some("CLOSING")),
        "ack.last" | "ack.last.fin-again" => (Some("TIME-WAIT"), Some("CLOSED")),
        "ack.closing" | "ack.closing.fin-again" => {
            // The sender waits in CLOSING until its own FIN is acknowledged (perhaps already).
            let acked = sender.fin.is_some_and(|f| peer.acked.is_some_and(|(a, _)| a == f.wrapping_add(1)));
            (Some(if acked { "TIME-WAIT" } else { "CLOSING" }), Some("TIME-WAIT"))
        }
        // A side that is done resets a late segment; the peer takes the reset only if its
        // sequence number is exactly the next it expects (RFC 5961 §3.2), which is what it
        // acknowledged last, else ignores it.
        "rst.closed" => {
            let expected = peer.acked.is_some_and(|(next, _)| next == seg.seq);
            (Some("CLOSED"), expected.then_some("CLOSED"))
        }
        m if m.starts_with("rst") => (Some("CLOSED"), Some("CLOSED")),
        _ => {
            // Data and acknowledgments: a side not yet seen is past the handshake if it sends
            // them; one that acknowledges a SYN-RECEIVED peer's SYN completes its handshake (the
            // third segment was lost, or rode with the first data).
            let completes =
                peer.state == Some("SYN-RECEIVED") && peer.isn.is_some_and(|i| seg.ack == Some(i.wrapping_add(1)));
            (sender.state.or(Some("ESTABLISHED")), completes.then_some("ESTABLISHED"))
        }
    };
    // States only move on: a late segment (held up on the way) never takes one back.
    if let Some(s) = s.filter(|&s| forward(sender.state, s)) {
        sender.state = Some(s);
    }
    if let Some(p) = p.filter(|&p| delivered && forward(peer.state, p)) {
        peer.state = Some(p);
    }
}

/// Whether moving from `now` to `next` goes forward on the way from opening to closed.
fn forward(now: Option<&str>, next: &str) -> bool {
    let rank = |s: &str| match s {
        "SYN-SENT" | "SYN-RECEIVED" => 1,
        "ESTABLISHED" => 2,
        "FIN-WAIT-1" | "CLOSE-WAIT" => 3,
        "FIN-WAIT-2" | "CLOSING" | "LAST-ACK" => 4,
        "TIME-WAIT" => 5,
        "CLOSED" => 6,
        _ => 0,
    };
    now.is_none_or(|now| rank(next) >= rank(now))
}

/// The segment's moment, and whether it repeats what its sender sent already.
fn classify(seg: &Segment, sender: &Side, peer: &Side) -> (String, bool) {
    let repeats = |from_seq: u32| sender.next.is_some_and(|n| before(from_seq, n));
    if seg.rst {
        // A reset answering a SYN from a host that never sent one of its own: nothing listens.
        // From a host whose own FIN was acknowledged: the connection is gone on its side.
        let closed = sender.fin.is_some_and(|f| peer.acked.is_some_and(|(a, _)| a == f.wrapping_add(1)));
        let kind = if sender.isn.is_none() && peer.isn.is_some() {
            "tcp.rst.refused"
        } else if sender.isn.is_some() && sender.acked.is_none() && peer.isn.is_some() {
            // Its SYN was answered with a SYN-ACK, and it resets instead of acknowledging: the
            // handshake is refused half-way (a SYN scan's stack, which opened nothing).
            "tcp.rst.syn-ack"
        } else if closed {
            "tcp.rst.closed"
        } else {
            "tcp.rst"
        };
        return (kind.into(), false);
    }
    if seg.syn {
        let kind = if seg.ack.is_some() { "tcp.syn-ack" } else { "tcp.syn" };
        return (kind.into(), sender.isn == Some(seg.seq));
    }
    if seg.fin {
        let again = sender.fin.is_some_and(|f| f == seg.seq.wrapping_add(seg.len));
        // A FIN sent again means what it meant the first time.
        let mut kind = match sender.fin_moment.filter(|_| again) {
            Some(moment) => moment,
            None if seg.acks_fin_of(peer) => "tcp.fin.second",
            None if peer.fin.is_some() => "tcp.fin.simultaneous",
            None => "tcp.fin.first",
        }
        .to_string();
        if seg.len > 0 {
            kind.push_str(".data");
        }
        return (kind, again);
    }
    if seg.len > 0 {
        return ("tcp.data".into(), repeats(seg.seq));
    }
    let Some(ack) = seg.ack else { return ("tcp".into(), false) };
    if sender.acked.is_some_and(|(last, _)| before(ack, last)) {
        return ("tcp.ack.old".into(), false);
    }
    let new_ack = sender.acked.is_none_or(|(a, _)| a != ack);
    let kind = if peer.fin.is_some_and(|f| ack == f.wrapping_add(1)) {
        // The side that closed first sends the last ACK; acknowledged once already, the ACK
        // answers the FIN sent again, or it is a late copy of the same ACK.
        match (sender.closed_first, new_ack, peer.fins > 1) {
            (true, true, _) if peer.closed_first => "tcp.ack.closing",
            (true, false, true) if peer.closed_first => "tcp.ack.closing.fin-again",
            (true, true, _) => "tcp.ack.last",
            (true, false, true) => "tcp.ack.last.fin-again",
            (false, true, _) => "tcp.ack.fin",
            (false, false, true) => "tcp.ack.fin.fin-again",
            (_, false, false) => "tcp.ack.dup",
        }
    } else if sender.acked.is_none() && peer.isn.is_some_and(|i| ack == i.wrapping_add(1)) {
        "tcp.ack.handshake"
    } else if new_ack {
        "tcp.ack.data"
    } else if sender.acked.is_some_and(|(_, w)| w != seg.window) {
        "tcp.ack.window"
    } else {
        "tcp.ack.dup"
    };
    (kind.into(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Field;

    /// A TCP segment step between 192.0.2.1:5000 (`client`) and 192.0.2.2:7 (`server`).
    fn seg(from_client: bool, flags: &str, seq: u32, ack: u32, len: u32, window: u64) -> Step {
        let (src, dst, sp, dp, from, to) = if from_client {
            ("192.0.2.1", "192.0.2.2", 5000, 7, "client", "server")
        } else {
            ("192.0.2.2", "192.0.2.1", 7, 5000, "server", "client")
        };
        let f = |p: &str, v: serde_json::Value| Field { path: p.into(), value: v, range: [0, 0] };
        Step {
            proto: "TCP".into(),
            frame: true,
            from: from.into(),
            to: to.into(),
            kind: "tcp".into(),
            fields: vec![
                f("IPv4.src", src.into()),
                f("IPv4.dst", dst.into()),
                f("TCP.src_port", sp.into()),
                f("TCP.dst_port", dp.into()),
                f("TCP.seq", seq.into()),
                f("TCP.ack", ack.into()),
                f("TCP.flags", flags.into()),
                f("TCP.window", window.into()),
                f("TCP.payload_len", len.into()),
            ],
            ..Step::default()
        }
    }

    fn kinds(steps: Vec<Step>) -> Vec<String> {
        let mut m = Moments::default();
        steps
            .into_iter()
            .map(|mut s| {
                m.place(&mut s);
                if s.again { format!("{}~again", s.kind) } else { s.kind }
            })
            .collect()
    }

    #[test]
    fn a_whole_connection_near_the_wrap() {
        // ISNs just below 2^32, so the numbers wrap during the exchange.
        let (c, s) = (u32::MAX - 2, u32::MAX);
        let c1 = c.wrapping_add(1);
        let s1 = s.wrapping_add(1);
        let steps = vec![
            seg(true, "SYN", c, 0, 0, 100),
            seg(false, "SYN,ACK", s, c1, 0, 100),
            seg(true, "ACK", c1, s1, 0, 100),
            seg(true, "ACK,PSH", c1, s1, 10, 100),
            seg(false, "ACK", s1, c1.wrapping_add(10), 0, 100),
            seg(false, "ACK", s1, c1.wrapping_add(10), 0, 200),
            seg(true, "ACK,FIN", c1.wrapping_add(10), s1, 0, 100),
            seg(false, "ACK", s1, c1.wrapping_add(11), 0, 200),
            seg(false, "ACK,FIN", s1, c1.wrapping_add(11), 0, 200),
            seg(true, "ACK", c1.wrapping_add(11), s1.wrapping_add(1), 0, 100),
        ];
        assert_eq!(
            kinds(steps),
            [
                "tcp.syn",
                "tcp.syn-ack",
                "tcp.ack.handshake",
                "tcp.data",
                "tcp.ack.data",
                "tcp.ack.window",
                "tcp.fin.first",
                "tcp.ack.fin",
                "tcp.fin.second",
                "tcp.ack.last"
            ]
        );
    }

    /// Both programs close at once: the FINs cross on the way, each side takes the other's in
    /// FIN-WAIT-1 and goes CLOSING, and each one's ACK takes the other to TIME-WAIT.
    #[test]
    fn a_simultaneous_close() {
        let mut m = Moments::default();
        let steps = [
            seg(true, "SYN", 100, 0, 0, 10),
            seg(false, "SYN,ACK", 500, 101, 0, 10),
            seg(true, "ACK", 101, 501, 0, 10),
            seg(true, "ACK,FIN", 101, 501, 0, 10),
            seg(false, "ACK,FIN", 501, 101, 0, 10),
            seg(true, "ACK", 102, 502, 0, 10),
            seg(false, "ACK", 502, 102, 0, 10),
            seg(true, "ACK,FIN", 101, 501, 0, 10),
        ];
        let seen: Vec<_> = steps
            .into_iter()
            .map(|mut s| {
                m.place(&mut s);
                (format!("{}{}", s.kind, if s.again { "~again" } else { "" }), s.states)
            })
            .collect();
        let kinds: Vec<_> = seen.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds[3..],
            ["tcp.fin.first", "tcp.fin.simultaneous", "tcp.ack.closing", "tcp.ack.closing", "tcp.fin.first~again"]
        );
        let states = |i: usize| seen[i].1.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>();
        assert_eq!(states(4), ["CLOSING", "FIN-WAIT-1"], "the server's FIN reaches a client in FIN-WAIT-1");
        assert_eq!(states(5), ["CLOSING", "TIME-WAIT"]);
        assert_eq!(states(6), ["TIME-WAIT", "TIME-WAIT"]);
    }

    #[test]
    fn retransmissions_and_duplicate_acks() {
        let steps = vec![
            seg(true, "SYN", 100, 0, 0, 10),
            seg(true, "SYN", 100, 0, 0, 10),
            seg(false, "SYN,ACK", 500, 101, 0, 10),
            seg(true, "ACK", 101, 501, 0, 10),
            seg(true, "ACK,PSH", 101, 501, 5, 10),
            seg(true, "ACK,PSH", 101, 501, 5, 10),
            seg(false, "ACK", 501, 106, 0, 10),
            seg(false, "ACK", 501, 106, 0, 10),
            seg(true, "ACK,FIN,PSH", 106, 501, 3, 10),
            seg(true, "ACK,FIN,PSH", 106, 501, 3, 10),
        ];
        assert_eq!(
            kinds(steps),
            [
                "tcp.syn",
                "tcp.syn~again",
                "tcp.syn-ack",
                "tcp.ack.handshake",
                "tcp.data",
                "tcp.data~again",
                "tcp.ack.data",
                "tcp.ack.dup",
                "tcp.fin.first.data",
                "tcp.fin.first.data~again"
            ]
        );
    }

    #[test]
    fn a_fin_sent_again_is_acknowledged_again_and_a_closed_side_resets() {
        let steps = vec![
            seg(true, "SYN", 100, 0, 0, 10),
            seg(false, "SYN,ACK", 500, 101, 0, 10),
            seg(true, "ACK", 101, 501, 0, 10),
            seg(true, "ACK,FIN", 101, 501, 0, 10),
            seg(false, "ACK,FIN", 501, 102, 0, 10),
            seg(true, "ACK", 102, 502, 0, 10),
            // The last ACK was lost: the FIN again, acknowledged again from TIME-WAIT.
            seg(false, "ACK,FIN", 501, 102, 0, 10),
            seg(true, "ACK", 102, 502, 0, 10),
            // A late copy reaches the side that is gone: it resets.
            seg(false, "ACK,RST", 502, 0, 0, 0),
        ];
        assert_eq!(
            kinds(steps),
            [
                "tcp.syn",
                "tcp.syn-ack",
                "tcp.ack.handshake",
                "tcp.fin.first",
                "tcp.fin.second",
                "tcp.ack.last",
                "tcp.fin.second~again",
                "tcp.ack.last.fin-again",
                "tcp.rst.closed"
            ]
        );
    }

    /// A reset is taken only at the very sequence number its receiver acknowledged last.
    #[test]
    fn a_reset_off_the_expected_number_is_ignored() {
        let client_state = |rst_seq: u32| {
            let mut m = Moments::default();
            let steps = [
                seg(true, "SYN", 100, 0, 0, 10),
                seg(false, "SYN,ACK", 500, 101, 0, 10),
                seg(true, "ACK", 101, 501, 0, 10),
                seg(true, "ACK,FIN", 101, 501, 0, 10),
                seg(false, "ACK,FIN", 501, 102, 0, 10),
                seg(true, "ACK", 102, 502, 0, 10),
                seg(false, "ACK,RST", rst_seq, 0, 0, 0),
            ];
            let mut last = Step::default();
            for mut s in steps {
                m.place(&mut s);
                last = s;
            }
            assert_eq!(last.kind, "tcp.rst.closed");
            last.states[0].1.clone()
        };
        assert_eq!(client_state(502), "CLOSED");
        assert_eq!(client_state(9000), "TIME-WAIT");
    }

    #[test]
    fn a_reset_to_a_syn_means_nothing_listens() {
        let steps = vec![seg(true, "SYN", 9, 0, 0, 10), seg(false, "ACK,RST", 0, 10, 0, 0)];
        assert_eq!(kinds(steps), ["tcp.syn", "tcp.rst.refused"]);
    }

    fn dhcp(from: &str, kind: &str, t: &str, xid: &str) -> Step {
        let f = |p: &str, v: &str| Field { path: p.into(), value: v.into(), range: [0, 0] };
        Step {
            proto: "DHCP".into(),
            from: from.into(),
            kind: kind.into(),
            fields: vec![f("DHCP.xid", xid), f("DHCP.message_type", t)],
            ..Step::default()
        }
    }

    #[test]
    fn answers_take_the_moment_of_their_question() {
        let steps = vec![
            dhcp("client", "dhcp.discover", "DISCOVER", "0x1"),
            dhcp("client", "dhcp.discover", "DISCOVER", "0x1"),
            dhcp("server", "dhcp.offer", "OFFER", "0x1"),
            dhcp("client", "dhcp.request.selecting", "REQUEST", "0x1"),
            dhcp("server", "dhcp.ack", "ACK", "0x1"),
            dhcp("client", "dhcp.request.renew", "REQUEST", "0x2"),
            dhcp("server", "dhcp.ack", "ACK", "0x2"),
            dhcp("client", "dhcp.request.reboot", "REQUEST", "0x3"),
            dhcp("server", "dhcp.nak", "NAK", "0x3"),
            dhcp("client", "dhcp.inform", "INFORM", "0x4"),
            dhcp("server", "dhcp.ack.inform", "ACK", "0x4"),
        ];
        assert_eq!(
            kinds(steps),
            [
                "dhcp.discover",
                "dhcp.discover~again",
                "dhcp.offer",
                "dhcp.request.selecting",
                "dhcp.ack.selecting",
                "dhcp.request.renew",
                "dhcp.ack.renew",
                "dhcp.request.reboot",
                "dhcp.nak.reboot",
                "dhcp.inform",
                "dhcp.ack.inform"
            ]
        );
    }
}
