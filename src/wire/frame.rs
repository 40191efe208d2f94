//! One Ethernet II frame, as it crossed the lab's virtual cable, decoded into one step.
//!
//! A frame nests its layers like envelopes, each header saying what the next one is:
//!
//! ```text
//! Ethernet II     dst MAC, src MAC, EtherType                  14 bytes
//! ├─ 0x0806 ARP   who has / is at                              28 bytes           → a link step
//! └─ 0x0800 IPv4  lengths, TTL, protocol, checksum, addresses  20–60 bytes
//!    ├─ 1  ICMP   type, code, checksum, echo id and seq         8 bytes + data     → a network step
//!    ├─ 6  TCP    ports, seq, ack, flags, window, options      20–60 bytes + data → a transport step
//!    └─ 17 UDP    ports, length, checksum                       8 bytes + data     → a transport step
//! ```
//!
//! [`decode`] gives one [`Message`] per frame, at the highest layer the frame holds whole
//! (DESIGN.md, "The step"), with the fields of every layer under it, outermost first, each with its
//! byte range inside the frame so the hex pane can light it up. etherparse reads the headers; the
//! offset tables in `field` say where each field sits, for those ranges.
//!
//! A frame the cable corrupted is still a step: the fields that could be read, and `malformed`
//! listing every check that failed: a header cut short, a length that points past the frame, a
//! checksum that does not match (the receiving kernel drops such a frame without a word).
//!
//! [`udp_payload`] finds what a UDP datagram carries, for labs that decode it themselves (DHCP).

use crate::locale::{en, term};
use crate::session::{Field, Layer, hex};
use crate::wire::{Message, printable};
use etherparse::checksum::Sum16BitWords;
use etherparse::{
    ArpPacketSlice, EtherType, Ethernet2HeaderSlice, Icmpv4Slice, Icmpv4Type, IpNumber, Ipv4HeaderSlice,
    TcpHeaderSlice, TcpOptionElement, TcpOptionReadError, TcpOptionsIterator, UdpHeaderSlice, err,
};
use std::net::Ipv4Addr;
use std::ops::Range;

/// Where each field sits inside its header, counted from the header's first byte.
pub(crate) mod field {
    /// Ethernet II (IEEE 802.3 clause 3, RFC 894).
    pub mod ethernet {
        use std::ops::Range;
        pub const DST: Range<usize> = 0..6;
        pub const SRC: Range<usize> = 6..12;
        pub const TYPE: Range<usize> = 12..14;
        pub const LEN: usize = 14;
    }

    /// ARP for Ethernet and IPv4 (RFC 826): 6-byte hardware and 4-byte protocol addresses.
    pub mod arp {
        use std::ops::Range;
        pub const HARDWARE_TYPE: Range<usize> = 0..2;
        pub const PROTOCOL_TYPE: Range<usize> = 2..4;
        pub const HARDWARE_LEN: Range<usize> = 4..5;
        pub const PROTOCOL_LEN: Range<usize> = 5..6;
        pub const OPERATION: Range<usize> = 6..8;
        pub const SENDER_MAC: Range<usize> = 8..14;
        pub const SENDER_IP: Range<usize> = 14..18;
        pub const TARGET_MAC: Range<usize> = 18..24;
        pub const TARGET_IP: Range<usize> = 24..28;
        pub const LEN: usize = 28;
    }

    /// IPv4 (RFC 791 §3.1). Version and IHL share the first byte; flags and fragment offset the
    /// seventh and eighth.
    pub mod ipv4 {
        use std::ops::Range;
        pub const VERSION_IHL: Range<usize> = 0..1;
        pub const DSCP_ECN: Range<usize> = 1..2;
        pub const TOTAL_LEN: Range<usize> = 2..4;
        pub const IDENTIFICATION: Range<usize> = 4..6;
        pub const FLAGS: Range<usize> = 6..7;
        pub const FRAGMENT_OFFSET: Range<usize> = 6..8;
        pub const TTL: Range<usize> = 8..9;
        pub const PROTOCOL: Range<usize> = 9..10;
        pub const CHECKSUM: Range<usize> = 10..12;
        pub const SRC: Range<usize> = 12..16;
        pub const DST: Range<usize> = 16..20;
        /// The header without options; options run from here to IHL × 4.
        pub const MIN_LEN: usize = 20;
    }

    /// TCP (RFC 9293 §3.1). The data offset is the high nibble of byte 12; the flags are byte 13.
    pub mod tcp {
        use std::ops::Range;
        pub const SRC_PORT: Range<usize> = 0..2;
        pub const DST_PORT: Range<usize> = 2..4;
        pub const SEQ: Range<usize> = 4..8;
        pub const ACK: Range<usize> = 8..12;
        pub const DATA_OFFSET: Range<usize> = 12..13;
        pub const FLAGS: Range<usize> = 13..14;
        pub const WINDOW: Range<usize> = 14..16;
        pub const CHECKSUM: Range<usize> = 16..18;
        pub const URGENT_PTR: Range<usize> = 18..20;
        /// The header without options; options run from here to data offset × 4.
        pub const MIN_LEN: usize = 20;
    }

    /// UDP (RFC 768).
    pub mod udp {
        use std::ops::Range;
        pub const SRC_PORT: Range<usize> = 0..2;
        pub const DST_PORT: Range<usize> = 2..4;
        pub const LENGTH: Range<usize> = 4..6;
        pub const CHECKSUM: Range<usize> = 6..8;
        pub const LEN: usize = 8;
    }

    /// ICMP (RFC 792); identifier and sequence are those of echo messages.
    pub mod icmp {
        use std::ops::Range;
        pub const TYPE: Range<usize> = 0..1;
        pub const CODE: Range<usize> = 1..2;
        pub const CHECKSUM: Range<usize> = 2..4;
        pub const IDENTIFIER: Range<usize> = 4..6;
        pub const SEQUENCE: Range<usize> = 6..8;
    }
}

/// Characters of a text payload kept in the `TCP.payload` field, and in the summary.
const PAYLOAD_TEXT_CHARS: usize = 256;
const SUMMARY_TEXT_CHARS: usize = 40;
/// Bytes of a binary payload shown as hex in the `TCP.payload` field.
const PAYLOAD_HEX_BYTES: usize = 128;

/// What the IPv4 header's checksum is called in notes and reasons (`IPv4 header checksum ...`).
const IPV4_HEADER: &str = term("IPv4 header");

/// UDP ports whose payload the frame decoder reads on: DHCP's server and client ports.
const DHCP_PORTS: [u16; 2] = [67, 68];
/// DNS's port, UDP and TCP.
pub const DNS_PORT: u16 = 53;

/// Decodes one Ethernet II frame into one step, at the highest layer the frame holds whole: a
/// DHCP message is a DHCP step, with the Ethernet, IPv4 and UDP fields before its own.
///
/// Never fails: a frame that does not decode gives a message with the fields that could be read,
/// `kind` `frame.malformed`, and `malformed` naming every check that failed, joined by `; `.
pub fn decode(frame: &[u8]) -> Message {
    decode_frame(frame, false)
}

/// The decode of a frame a router passed on (`new`), made from `came`, the decode of the frame
/// it came in as (`old`): forwarding changes only the MAC addresses, the TTL and the header
/// checksum, so only their fields and the note on checksums are made again, not the rest (a
/// frame across three routers is decoded once, not four times). `None` where anything else
/// differs, or either header's checksum is wrong: then [`decode`] it.
pub fn forwarded(mut came: Message, old: &[u8], new: &[u8]) -> Option<Message> {
    use field::{ethernet, ipv4};
    let (ttl, sum) = (ethernet::LEN + ipv4::TTL.start, ethernet::LEN + ipv4::CHECKSUM.start);
    let same = |range: Range<usize>| old.get(range.clone()) == new.get(range);
    let ihl = usize::from(new.get(ethernet::LEN)? & 0x0f) * 4;
    let header = |frame: &'_ [u8]| frame.get(ethernet::LEN..ethernet::LEN + ihl).map(<[u8]>::to_vec);
    let (old_header, new_header) = (header(old)?, header(new)?);
    let sealed = |h: &[u8]| be16(h, ipv4::CHECKSUM) == internet_checksum(h, ipv4::CHECKSUM);
    if old.len() != new.len()
        || new[ethernet::TYPE] != [0x08, 0x00]
        || !same(ethernet::TYPE.start..ttl)
        || !same(ttl + 1..sum)
        || !same(sum + 2..new.len())
        || came.malformed.is_some()
        || !sealed(&old_header)
        || !sealed(&new_header)
    {
        return None;
    }
    let (was, now) = (be16(&old_header, ipv4::CHECKSUM), be16(&new_header, ipv4::CHECKSUM));
    for f in &mut came.fields {
        match f.path.as_str() {
            "Ethernet.dst" => f.value = mac(&new[ethernet::DST]).into(),
            "Ethernet.src" => f.value = mac(&new[ethernet::SRC]).into(),
            "IPv4.ttl" => f.value = new[ttl].into(),
            "IPv4.checksum" => f.value = format!("0x{now:04x}").into(),
            _ => {}
        }
    }
    let (said, says) = (format!("IPv4 header 0x{was:04x}"), format!("IPv4 header 0x{now:04x}"));
    for note in came.notes.iter_mut().filter(|n| n.starts_with("checksums ok: IPv4 header 0x")) {
        *note = note.replacen(&said, &says, 1);
    }
    Some(came)
}

/// Like [`decode`], for a frame captured on a real interface: a TCP or UDP checksum there may be
/// a placeholder, because the sender's card fills it in on the way out (checksum offload); a
/// mismatch is a note, not a fault.
pub fn decode_captured(frame: &[u8]) -> Message {
    decode_frame(frame, true)
}

fn decode_frame(frame: &[u8], captured: bool) -> Message {
    let below = decode_layers(frame, captured);
    if below.malformed.is_some() {
        return below;
    }
    if let Some((src, dst, range)) = tcp_payload(frame)
        && (src == DNS_PORT || dst == DNS_PORT)
        && range.len() > 2
    {
        return dns_over_tcp(frame, below, range);
    }
    let Some((src, dst, range)) = udp_payload(frame) else { return below };
    if src == DNS_PORT || dst == DNS_PORT {
        return above(below, super::dns::describe(&frame[range.clone()], range.start));
    }
    if !(DHCP_PORTS.contains(&src) && DHCP_PORTS.contains(&dst)) {
        return below;
    }
    let mut app = super::dhcp::describe(&frame[range.clone()], range.start);
    // A REQUEST with ciaddr set renews by unicast or, sent to everyone, rebinds (RFC 2131
    // §4.4.5): only the destination tells them apart.
    let broadcast = below.fields.iter().any(|f| f.path == "IPv4.dst" && f.value == "255.255.255.255");
    if app.kind == "dhcp.request.renew" && broadcast {
        app.kind = "dhcp.request.rebind".into();
        app.summary = app.summary.replace(" renew ", " rebind (broadcast) ");
    }
    above(below, app)
}

/// An application message with the frame's own fields and notes before its own.
fn above(mut below: Message, mut app: Message) -> Message {
    below.fields.append(&mut app.fields);
    app.fields = below.fields;
    below.notes.append(&mut app.notes);
    app.notes = below.notes;
    app
}

/// A DNS message over TCP (RFC 1035 §4.2.2, RFC 7766): two bytes of length, then the message.
/// A segment holding only part of one stays a TCP step.
fn dns_over_tcp(frame: &[u8], below: Message, range: Range<usize>) -> Message {
    let payload = &frame[range.clone()];
    let len = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
    if payload.len() != 2 + len {
        return below;
    }
    let mut app = super::dns::describe(&payload[2..], range.start + 2);
    app.fields.insert(0, Field::new("DNS.tcp_length", len, range.start..range.start + 2));
    if app.malformed.is_none() {
        app.kind.push_str(".tcp");
    }
    above(below, app)
}

/// Where a TCP segment's payload sits in a frame: `(source port, destination port, range)`.
pub fn tcp_payload(frame: &[u8]) -> Option<(u16, u16, Range<usize>)> {
    let packet = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let etherparse::TransportSlice::Tcp(tcp) = packet.transport? else { return None };
    let start = tcp.payload().as_ptr() as usize - frame.as_ptr() as usize;
    Some((tcp.source_port(), tcp.destination_port(), start..start + tcp.payload().len()))
}

/// An ICMP message on its own, as an ICMP socket sends and receives it (no Ethernet, no IPv4
/// header): a network step.
pub fn decode_icmp(message: &[u8]) -> Message {
    icmp(Reading::new(message), 0..message.len(), true)
}

/// The frame's own layers: Ethernet, ARP or IPv4, and TCP, UDP or ICMP.
fn decode_layers(frame: &[u8], captured: bool) -> Message {
    let mut r = Reading::new(frame);
    r.captured = captured;
    let Ok(eth) = Ethernet2HeaderSlice::from_slice(frame) else {
        let reason = en(
            "frame cut short: {got} of the {need} bytes of an Ethernet header",
            &[("got", &frame.len()), ("need", &field::ethernet::LEN)],
        );
        r.problem(reason.clone());
        return r.finish(Layer::Link, "Ethernet", "frame.malformed", reason);
    };
    let ether_type = eth.ether_type();
    r.field("Ethernet.dst", mac(&eth.destination()), field::ethernet::DST);
    r.field("Ethernet.src", mac(&eth.source()), field::ethernet::SRC);
    r.field("Ethernet.type", ether_type_text(ether_type), field::ethernet::TYPE);
    if eth.destination() == [0xff; 6] {
        r.note(en("Ethernet.dst ff:ff:ff:ff:ff:ff: a broadcast, every host on the link reads it", &[]));
    }
    let base = field::ethernet::LEN;
    match ether_type {
        EtherType::ARP => arp(r, base),
        EtherType::IPV4 => ipv4(r, base),
        _ => {
            let summary = format!("EtherType {}, {} bytes", ether_type_text(ether_type), frame.len() - base);
            r.finish(Layer::Link, "Ethernet", "ethernet", summary)
        }
    }
}

/// Where a UDP datagram's payload sits in a frame, for labs that read what UDP carries (DHCP):
/// `(source port, destination port, payload range in the frame)`.
///
/// `None` unless the frame is Ethernet II, then IPv4 that is not a fragment, then a whole UDP
/// header. Lengths that point past the frame are cut at its end; checksums are not checked here:
/// [`decode`] reports them, so a lab that shows the step calls both.
pub fn udp_payload(frame: &[u8]) -> Option<(u16, u16, Range<usize>)> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).ok()?;
    if eth.ether_type() != EtherType::IPV4 {
        return None;
    }
    let base = field::ethernet::LEN;
    let ip = Ipv4HeaderSlice::from_slice(&frame[base..]).ok()?;
    if ip.protocol() != IpNumber::UDP || ip.is_fragmenting_payload() {
        return None;
    }
    let start = base + ip.slice().len();
    let (end, _) = ipv4_end(frame, base, ip.slice().len(), ip.total_len());
    let udp = UdpHeaderSlice::from_slice(frame.get(start..end)?).ok()?;
    Some((udp.source_port(), udp.destination_port(), udp_payload_range(start, end, udp.length())))
}

/// What has been read of a frame so far: the fields, outermost layer first, notes on checks that
/// passed, and every check that failed.
struct Reading<'a> {
    frame: &'a [u8],
    fields: Vec<Field>,
    /// Things worth knowing (a broadcast, padding).
    notes: Vec<String>,
    /// The IPv4 header's checksum, hex, if it matched; said first in the note on checksums.
    ipv4_ok: Option<String>,
    /// The other checksums that matched (`TCP 0xdfbf`), said in the same note.
    sums_ok: Vec<String>,
    /// Checks that failed; any one makes the step malformed.
    problems: Vec<String>,
    /// Captured on a real interface: transport checksums may not be filled in yet.
    captured: bool,
}

impl<'a> Reading<'a> {
    fn new(frame: &'a [u8]) -> Self {
        Reading {
            frame,
            fields: Vec::new(),
            notes: Vec::new(),
            ipv4_ok: None,
            sums_ok: Vec::new(),
            problems: Vec::new(),
            captured: false,
        }
    }

    /// Adds a field; `range` is inside the whole frame.
    fn field(&mut self, path: impl Into<String>, value: impl Into<serde_json::Value>, range: Range<usize>) {
        self.fields.push(Field::new(path, value, range));
    }

    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn problem(&mut self, reason: impl Into<String>) {
        self.problems.push(reason.into());
    }

    /// Compares a checksum as sent with the one the bytes call for.
    fn checksum(&mut self, what: &str, sent: u16, expected: u16) {
        let (sent_hex, expected_hex) = (format!("{sent:04x}"), format!("{expected:04x}"));
        if sent == expected && what == IPV4_HEADER {
            self.ipv4_ok = Some(sent_hex);
        } else if sent == expected {
            self.sums_ok.push(format!("{what} 0x{sent_hex}"));
        } else if self.captured && matches!(what, "TCP" | "UDP") {
            self.note(en(
                "{what} checksum 0x{sent} is a placeholder: the sending card fills it in on the way out (checksum offload)",
                &[("what", &what), ("sent", &sent_hex)],
            ));
        } else {
            self.problem(en(
                "{what} checksum 0x{sent} should be 0x{expected}",
                &[("what", &what), ("sent", &sent_hex), ("expected", &expected_hex)],
            ));
        }
    }

    /// The step, at the layer the reading reached; a failed check makes it `frame.malformed`.
    fn finish(self, layer: Layer, proto: &'static str, kind: &str, summary: String) -> Message {
        let kind = if self.problems.is_empty() { kind } else { "frame.malformed" };
        let mut msg = Message::new(layer, proto, kind, summary);
        msg.fields = self.fields;
        msg.notes = self.notes;
        // `checksums ok: IPv4 header 0x1234, TCP 0xabcd`: a template for each shape, so a
        // Korean screen says the IPv4 header in Korean too.
        let sums = self.sums_ok.join(", ");
        let note = match (&self.ipv4_ok, sums.is_empty()) {
            (Some(ip), false) => Some(en("checksums ok: IPv4 header 0x{ip}, {sums}", &[("ip", ip), ("sums", &sums)])),
            (Some(ip), true) => Some(en("checksums ok: IPv4 header 0x{ip}", &[("ip", ip)])),
            (None, false) => Some(en("checksums ok: {sums}", &[("sums", &sums)])),
            (None, true) => None,
        };
        msg.notes.extend(note);
        if !self.problems.is_empty() {
            msg = msg.malformed(self.problems.join("; "));
        }
        msg
    }
}

/// `range`, given inside a header that starts at `base`, as a range inside the frame.
fn at(base: usize, range: Range<usize>) -> Range<usize> {
    base + range.start..base + range.end
}

/// ARP (RFC 826): a link step, `who has` or `is at`.
fn arp(mut r: Reading, base: usize) -> Message {
    let frame = r.frame;
    let arp = match ArpPacketSlice::from_slice(&frame[base..]) {
        Ok(arp) => arp,
        Err(e) => {
            let reason =
                en("ARP packet cut short: {got} of {need} bytes", &[("got", &e.len), ("need", &e.required_len)]);
            r.problem(reason.clone());
            return r.finish(Layer::Link, "ARP", "frame.malformed", reason);
        }
    };
    let hardware = arp.hw_addr_type().0;
    let protocol = arp.proto_addr_type();
    r.field("ARP.hardware_type", hardware_type_text(hardware), at(base, field::arp::HARDWARE_TYPE));
    r.field("ARP.protocol_type", ether_type_text(protocol), at(base, field::arp::PROTOCOL_TYPE));
    r.field("ARP.hardware_len", arp.hw_addr_size(), at(base, field::arp::HARDWARE_LEN));
    r.field("ARP.protocol_len", arp.proto_addr_size(), at(base, field::arp::PROTOCOL_LEN));
    let operation = arp.operation().0;
    let operation_text = match operation {
        1 => "request".to_string(),
        2 => "reply".to_string(),
        other => other.to_string(),
    };
    r.field("ARP.operation", operation_text, at(base, field::arp::OPERATION));
    if hardware != 1 || protocol != EtherType::IPV4 {
        r.problem(en(
            "ARP for hardware type {hardware} and protocol {protocol}: this lab's Ethernet carries only Ethernet/IPv4 ARP",
            &[("hardware", &hardware), ("protocol", &ether_type_text(protocol))],
        ));
    }
    if arp.hw_addr_size() != 6 || arp.proto_addr_size() != 4 {
        r.problem(en(
            "ARP addresses of {hardware} and {protocol} bytes, not 6 (MAC) and 4 (IPv4)",
            &[("hardware", &arp.hw_addr_size()), ("protocol", &arp.proto_addr_size())],
        ));
        return r.finish(Layer::Link, "ARP", "arp", format!("ARP operation {operation}"));
    }
    // The lengths are 6 and 4, so the address slices have these sizes.
    let sender_mac = mac(arp.sender_hw_addr());
    let target_mac = mac(arp.target_hw_addr());
    let sender_ip = ipv4_text(arp.sender_protocol_addr());
    let target_ip = ipv4_text(arp.target_protocol_addr());
    r.field("ARP.sender_mac", sender_mac.clone(), at(base, field::arp::SENDER_MAC));
    r.field("ARP.sender_ip", sender_ip.clone(), at(base, field::arp::SENDER_IP));
    r.field("ARP.target_mac", target_mac, at(base, field::arp::TARGET_MAC));
    r.field("ARP.target_ip", target_ip.clone(), at(base, field::arp::TARGET_IP));
    padding_note(&mut r, base + field::arp::LEN);
    let (kind, summary) = match operation {
        1 => {
            if sender_ip == target_ip {
                r.note(en("gratuitous ARP: the sender announces its own address", &[]));
            }
            ("arp.request", format!("who has {target_ip}? tell {sender_ip}"))
        }
        2 => ("arp.reply", format!("{sender_ip} is at {sender_mac}")),
        other => ("arp", format!("ARP operation {other} from {sender_ip}")),
    };
    r.finish(Layer::Link, "ARP", kind, summary)
}

/// The two IPv4 addresses, which the TCP and UDP checksums cover too (the pseudo-header).
#[derive(Clone, Copy)]
struct Addresses {
    src: [u8; 4],
    dst: [u8; 4],
}

/// IPv4 (RFC 791), then what it carries: ICMP, TCP, UDP, or anything else as an IPv4 step.
fn ipv4(mut r: Reading, base: usize) -> Message {
    let frame = r.frame;
    let packet = &frame[base..];
    let ip = match Ipv4HeaderSlice::from_slice(packet) {
        Ok(ip) => ip,
        Err(e) => {
            let reason = match e {
                err::ipv4::HeaderSliceError::Len(e) => {
                    en("IPv4 header cut short: {got} of {need} bytes", &[("got", &e.len), ("need", &e.required_len)])
                }
                err::ipv4::HeaderSliceError::Content(err::ipv4::HeaderError::UnexpectedVersion { version_number }) => {
                    en("IPv4 version {version}, should be 4", &[("version", &version_number)])
                }
                err::ipv4::HeaderSliceError::Content(err::ipv4::HeaderError::HeaderLengthSmallerThanHeader { ihl }) => {
                    en("IPv4 header length (IHL) {ihl} words, below the minimum of 5", &[("ihl", &ihl)])
                }
            };
            r.problem(reason.clone());
            // A flipped bit in the first byte breaks the version or the IHL, and the checksum too:
            // say both, over the header's fixed part.
            if let Some(header) = packet.get(..field::ipv4::MIN_LEN) {
                let sent = be16(header, field::ipv4::CHECKSUM);
                r.checksum(IPV4_HEADER, sent, internet_checksum(header, field::ipv4::CHECKSUM));
            }
            return r.finish(Layer::Network, "IPv4", "frame.malformed", reason);
        }
    };
    let header_len = ip.slice().len();
    let protocol = ip.protocol();
    let addresses = Addresses { src: ip.source(), dst: ip.destination() };
    r.field("IPv4.version", ip.version(), at(base, field::ipv4::VERSION_IHL));
    r.field("IPv4.ihl", ip.ihl(), at(base, field::ipv4::VERSION_IHL));
    r.field("IPv4.dscp", ip.dcp().value(), at(base, field::ipv4::DSCP_ECN));
    r.field("IPv4.ecn", ip.ecn().value(), at(base, field::ipv4::DSCP_ECN));
    r.field("IPv4.total_length", ip.total_len(), at(base, field::ipv4::TOTAL_LEN));
    r.field("IPv4.identification", ip.identification(), at(base, field::ipv4::IDENTIFICATION));
    r.field("IPv4.flags", ipv4_flags_text(packet[field::ipv4::FLAGS.start]), at(base, field::ipv4::FLAGS));
    r.field("IPv4.fragment_offset", ip.fragments_offset().value(), at(base, field::ipv4::FRAGMENT_OFFSET));
    r.field("IPv4.ttl", ip.ttl(), at(base, field::ipv4::TTL));
    r.field("IPv4.protocol", ip_protocol_text(protocol), at(base, field::ipv4::PROTOCOL));
    r.field("IPv4.checksum", format!("0x{:04x}", ip.header_checksum()), at(base, field::ipv4::CHECKSUM));
    r.field("IPv4.src", ip.source_addr().to_string(), at(base, field::ipv4::SRC));
    r.field("IPv4.dst", ip.destination_addr().to_string(), at(base, field::ipv4::DST));
    if header_len > field::ipv4::MIN_LEN {
        r.field("IPv4.options", hex(ip.options()), base + field::ipv4::MIN_LEN..base + header_len);
    }
    r.checksum(IPV4_HEADER, ip.header_checksum(), internet_checksum(ip.slice(), field::ipv4::CHECKSUM));

    let total_len = usize::from(ip.total_len());
    let (end, complete) = ipv4_end(frame, base, header_len, ip.total_len());
    if total_len < header_len {
        r.problem(en(
            "IPv4 total length {total} is shorter than its own header ({header} bytes)",
            &[("total", &total_len), ("header", &header_len)],
        ));
    } else if total_len > packet.len() {
        r.problem(en(
            "IPv4 total length {total} is beyond the frame: only {left} bytes follow the Ethernet header",
            &[("total", &total_len), ("left", &packet.len())],
        ));
    } else {
        padding_note(&mut r, end);
    }
    let start = base + header_len;
    let route = format!("{} → {}", ip.source_addr(), ip.destination_addr());

    if ip.is_fragmenting_payload() {
        // Only the whole packet, once reassembled, holds the transport header and its checksum.
        r.field("IPv4.payload_len", end - start, start..end);
        let more = if ip.more_fragments() { " MF" } else { "" };
        let summary = format!(
            "{route} fragment of a {} packet at offset {}{more}, {} bytes",
            protocol.keyword_str().map_or_else(|| format!("protocol {}", protocol.0), str::to_string),
            u32::from(ip.fragments_offset().value()) * 8,
            end - start
        );
        return r.finish(Layer::Network, "IPv4", "ipv4.fragment", summary);
    }
    match protocol {
        IpNumber::TCP => tcp(r, addresses, start..end, complete),
        IpNumber::UDP => udp(r, addresses, start..end, complete),
        IpNumber::ICMP => icmp(r, start..end, complete),
        _ => {
            r.field("IPv4.payload_len", end - start, start..end);
            let summary = format!("{route} protocol {}, {} bytes", ip_protocol_text(protocol), end - start);
            r.finish(Layer::Network, "IPv4", "ipv4", summary)
        }
    }
}

/// Where the IPv4 packet starting at `base`, with a header of `header_len` bytes the frame holds,
/// ends in the frame, and whether its total length was to be trusted. A total length shorter than
/// the header or beyond the frame is taken as the frame's end, so what is there can still be shown;
/// [`ipv4`] reports it. Bytes after a trusted end are Ethernet padding.
fn ipv4_end(frame: &[u8], base: usize, header_len: usize, total_len: u16) -> (usize, bool) {
    let total_len = usize::from(total_len);
    if total_len >= header_len && base + total_len <= frame.len() {
        (base + total_len, true)
    } else {
        (frame.len(), false)
    }
}

/// Notes, when a transport checksum cannot be checked, why not.
fn incomplete_note(r: &mut Reading, what: &str) {
    r.note(en("{what} checksum not checked: the IPv4 packet is not whole", &[("what", &what)]));
}

/// The internet checksum (RFC 1071) of a header or message: the ones' complement of the ones'
/// complement sum of its 16-bit words, with the checksum field at `checksum` taken as zero. The
/// IPv4 header and ICMP use it as is.
pub(crate) fn internet_checksum(bytes: &[u8], checksum: Range<usize>) -> u16 {
    // etherparse sums the words in the machine's byte order: `to_be` turns the result into the
    // number as it is written on the wire.
    Sum16BitWords::new().add_slice(&bytes[..checksum.start]).add_slice(&bytes[checksum.end..]).ones_complement().to_be()
}

/// The TCP or UDP checksum (RFC 9293 §3.1, RFC 768): the same sum, over a pseudo-header of the
/// IPv4 addresses, the protocol and the length, then the segment with its checksum field taken as
/// zero. A result of 0 is sent as 0xffff (for UDP, 0 means "no checksum").
fn pseudo_header_checksum(
    ip: Addresses,
    protocol: IpNumber,
    length: u16,
    segment: &[u8],
    checksum: Range<usize>,
) -> u16 {
    Sum16BitWords::new()
        .add_4bytes(ip.src)
        .add_4bytes(ip.dst)
        .add_2bytes([0, protocol.0])
        .add_2bytes(length.to_be_bytes())
        .add_slice(&segment[..checksum.start])
        .add_slice(&segment[checksum.end..])
        .to_ones_complement_with_no_zero()
        .to_be()
}

/// TCP (RFC 9293): a transport step.
fn tcp(mut r: Reading, ip: Addresses, segment_range: Range<usize>, complete: bool) -> Message {
    let frame = r.frame;
    let base = segment_range.start;
    let segment = &frame[segment_range.clone()];
    // The checksum covers every byte of the segment, so it is checked before the header is
    // trusted: a flipped bit in the data offset is then named as a checksum error too.
    if !complete {
        incomplete_note(&mut r, "TCP");
    } else if segment.len() >= field::tcp::CHECKSUM.end
        && let Ok(length) = u16::try_from(segment.len())
    {
        let expected = pseudo_header_checksum(ip, IpNumber::TCP, length, segment, field::tcp::CHECKSUM);
        r.checksum("TCP", be16(segment, field::tcp::CHECKSUM), expected);
    }
    // etherparse reads only a whole header. When the options are cut short (or the data offset is
    // nonsense), the fixed 20 bytes are still worth showing: read them from a copy whose data
    // offset says 5 words, and report the real data offset.
    let mut fixed = [0u8; field::tcp::MIN_LEN];
    let (header, whole) = match TcpHeaderSlice::from_slice(segment) {
        Ok(header) => (header, true),
        Err(e) => {
            let reason = match e {
                err::tcp::HeaderSliceError::Len(e) => {
                    en("TCP header cut short: {got} of {need} bytes", &[("got", &e.len), ("need", &e.required_len)])
                }
                err::tcp::HeaderSliceError::Content(err::tcp::HeaderError::DataOffsetTooSmall { data_offset }) => {
                    en("TCP data offset {offset} words, below the minimum of 5", &[("offset", &data_offset)])
                }
            };
            r.problem(reason.clone());
            let Some(head) = segment.get(..field::tcp::MIN_LEN) else {
                return r.finish(Layer::Transport, "TCP", "frame.malformed", reason);
            };
            fixed.copy_from_slice(head);
            fixed[field::tcp::DATA_OFFSET.start] = (5 << 4) | (fixed[field::tcp::DATA_OFFSET.start] & 0x0f);
            let Ok(header) = TcpHeaderSlice::from_slice(&fixed) else {
                return r.finish(Layer::Transport, "TCP", "frame.malformed", reason);
            };
            (header, false)
        }
    };
    let data_offset = segment[field::tcp::DATA_OFFSET.start] >> 4;
    let flags = tcp_flags_text(&header, &FLAGS_FIELD_ORDER);
    r.field("TCP.src_port", header.source_port(), at(base, field::tcp::SRC_PORT));
    r.field("TCP.dst_port", header.destination_port(), at(base, field::tcp::DST_PORT));
    r.field("TCP.seq", header.sequence_number(), at(base, field::tcp::SEQ));
    r.field("TCP.ack", header.acknowledgment_number(), at(base, field::tcp::ACK));
    r.field("TCP.data_offset", data_offset, at(base, field::tcp::DATA_OFFSET));
    r.field("TCP.flags", flags, at(base, field::tcp::FLAGS));
    r.field("TCP.window", header.window_size(), at(base, field::tcp::WINDOW));
    r.field("TCP.checksum", format!("0x{:04x}", header.checksum()), at(base, field::tcp::CHECKSUM));
    r.field("TCP.urgent_ptr", header.urgent_pointer(), at(base, field::tcp::URGENT_PTR));

    let spoken = tcp_flags_text(&header, &FLAGS_SPOKEN_ORDER);
    let mut summary = if spoken.is_empty() { "no flags".to_string() } else { spoken };
    summary.push_str(&format!(" seq={}", header.sequence_number()));
    if header.ack() {
        summary.push_str(&format!(" ack={}", header.acknowledgment_number()));
    }
    let option_words = tcp_options(&mut r, header.options(), base + field::tcp::MIN_LEN);
    if header.syn() {
        summary.push_str(&format!(" win={}", header.window_size()));
        if !option_words.is_empty() {
            summary.push_str(&format!(" [{}]", option_words.join(" ")));
        }
    }
    let mut payload: &[u8] = &[];
    if whole {
        let start = base + header.slice().len();
        payload = &frame[start..segment_range.end];
        r.field("TCP.payload_len", payload.len(), start..segment_range.end);
        if !payload.is_empty() {
            r.field("TCP.payload", payload_text(payload), start..segment_range.end);
            summary.push_str(&format!(" len={}", payload.len()));
            if is_text(payload) {
                let text = payload.strip_suffix(b"\n").unwrap_or(payload);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                summary.push_str(&format!(" \"{}\"", printable(text, SUMMARY_TEXT_CHARS)));
            }
        }
    }
    if header.syn() && !header.ack() {
        let port = header.destination_port();
        let (range, span) = port_range(port);
        r.note(en(
            "port {port}: a {range} port ({span}, as IANA divides them)",
            &[("port", &port), ("range", &range), ("span", &span)],
        ));
    }
    let kind = if header.rst() {
        "tcp.rst"
    } else if header.syn() && header.ack() {
        "tcp.syn-ack"
    } else if header.syn() {
        "tcp.syn"
    } else if header.fin() {
        "tcp.fin"
    } else if !payload.is_empty() {
        "tcp.data"
    } else {
        "tcp.ack"
    };
    r.finish(Layer::Transport, "TCP", kind, summary)
}

/// The range a port number lies in, as IANA divides them (RFC 6335 §6), and its bounds: servers
/// listen on well-known and registered ports, clients talk from dynamic (ephemeral) ones.
pub fn port_range(port: u16) -> (&'static str, &'static str) {
    match port {
        0..=1023 => (term("well-known"), "0–1023"),
        1024..=49151 => (term("registered"), "1024–49151"),
        _ => (term("dynamic (ephemeral)"), "49152–65535"),
    }
}

/// The order of the TCP flags in the `TCP.flags` field (DESIGN.md), then the rarer ECN ones.
const FLAGS_FIELD_ORDER: [&str; 9] = ["SYN", "ACK", "FIN", "RST", "PSH", "URG", "ECE", "CWR", "NS"];
/// The order people say them in (`FIN,ACK`, `PSH,ACK`), as tcpdump and Wireshark print them: ACK last.
const FLAGS_SPOKEN_ORDER: [&str; 9] = ["SYN", "FIN", "RST", "PSH", "URG", "ECE", "CWR", "NS", "ACK"];

/// The TCP flags set, named in `order`, joined by commas; empty when none is.
fn tcp_flags_text(header: &TcpHeaderSlice, order: &[&str]) -> String {
    let set = |name: &str| match name {
        "SYN" => header.syn(),
        "ACK" => header.ack(),
        "FIN" => header.fin(),
        "RST" => header.rst(),
        "PSH" => header.psh(),
        "URG" => header.urg(),
        "ECE" => header.ece(),
        "CWR" => header.cwr(),
        "NS" => header.ns(),
        _ => false,
    };
    order.iter().copied().filter(|name| set(name)).collect::<Vec<_>>().join(",")
}

/// TCP options (RFC 9293 §3.2), one field each; returns them in short form for a SYN's summary.
///
/// This walk finds where each option starts and ends (kind, length); etherparse reads what it
/// says. Unknown kinds are kept as hex, so nothing a peer sends is lost.
fn tcp_options(r: &mut Reading, options: &[u8], base: usize) -> Vec<String> {
    const END_OF_LIST: u8 = 0;
    const NO_OPERATION: u8 = 1;
    let mut words = Vec::new();
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            // The rest of the header is padding.
            END_OF_LIST => break,
            NO_OPERATION => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let left = options.len() - i;
        let Some(len) = options.get(i + 1).map(|&len| usize::from(len)) else {
            r.problem(en("TCP option kind {kind} has no length byte", &[("kind", &kind)]));
            break;
        };
        if len < 2 || len > left {
            r.problem(en(
                "TCP option kind {kind} says {len} bytes, {left} are left in the header",
                &[("kind", &kind), ("len", &len), ("left", &left)],
            ));
            break;
        }
        let bytes = &options[i..i + len];
        let range = base + i..base + i + len;
        match TcpOptionsIterator::from_slice(bytes).next() {
            Some(Ok(option)) => {
                if let Some((name, value, word)) = tcp_option_text(option) {
                    r.field(format!("TCP.option.{name}"), value, range);
                    words.push(word);
                }
            }
            // The walk made sure the option fits the header, so a read that runs out of bytes
            // means its length byte is wrong for its kind, as much as a length that is refused.
            Some(Err(TcpOptionReadError::UnexpectedSize { .. } | TcpOptionReadError::UnexpectedEndOfSlice { .. })) => {
                r.problem(en(
                    "TCP option kind {kind} with length {len}, not the length its kind has",
                    &[("kind", &kind), ("len", &len)],
                ));
            }
            Some(Err(TcpOptionReadError::UnknownId(_))) | None => {
                r.field(format!("TCP.option.kind_{kind}"), hex(&bytes[2..]), range);
                words.push(format!("kind_{kind}"));
            }
        }
        i += len;
    }
    words
}

/// A known TCP option as (field name, value, summary word).
fn tcp_option_text(option: TcpOptionElement) -> Option<(&'static str, serde_json::Value, String)> {
    Some(match option {
        TcpOptionElement::Noop => return None,
        TcpOptionElement::MaximumSegmentSize(mss) => ("mss", mss.into(), format!("MSS={mss}")),
        TcpOptionElement::WindowScale(shift) => ("window_scale", shift.into(), format!("WS={shift}")),
        TcpOptionElement::SelectiveAcknowledgementPermitted => ("sack_permitted", true.into(), "SACK_PERM".into()),
        TcpOptionElement::Timestamp(value, echo) => {
            let text = format!("TSval={value} TSecr={echo}");
            ("timestamps", text.clone().into(), text)
        }
        TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
            let blocks: Vec<String> =
                std::iter::once(first).chain(rest.into_iter().flatten()).map(|(l, r)| format!("{l}-{r}")).collect();
            let text = blocks.join(" ");
            ("sack", text.clone().into(), format!("SACK={}", blocks.join(",")))
        }
    })
}

/// UDP (RFC 768): a transport step.
fn udp(mut r: Reading, ip: Addresses, datagram_range: Range<usize>, complete: bool) -> Message {
    let frame = r.frame;
    let base = datagram_range.start;
    let datagram = &frame[datagram_range.clone()];
    let udp = match UdpHeaderSlice::from_slice(datagram) {
        Ok(udp) => udp,
        Err(e) => {
            let reason =
                en("UDP header cut short: {got} of {need} bytes", &[("got", &e.len), ("need", &e.required_len)]);
            r.problem(reason.clone());
            return r.finish(Layer::Transport, "UDP", "frame.malformed", reason);
        }
    };
    let length = udp.length();
    let payload = udp_payload_range(base, datagram_range.end, length);
    r.field("UDP.src_port", udp.source_port(), at(base, field::udp::SRC_PORT));
    r.field("UDP.dst_port", udp.destination_port(), at(base, field::udp::DST_PORT));
    r.field("UDP.length", length, at(base, field::udp::LENGTH));
    r.field("UDP.checksum", format!("0x{:04x}", udp.checksum()), at(base, field::udp::CHECKSUM));
    r.field("UDP.payload_len", payload.len(), payload.clone());
    let length = usize::from(length);
    if length < field::udp::LEN {
        r.problem(en("UDP length {length} is shorter than its own header (8 bytes)", &[("length", &length)]));
    } else if length > datagram.len() {
        r.problem(en(
            "UDP length {length} but the IPv4 packet holds {held} bytes of it",
            &[("length", &length), ("held", &datagram.len())],
        ));
    } else if length < datagram.len() {
        r.note(en("{n} bytes after the UDP datagram, inside the IPv4 packet", &[("n", &(datagram.len() - length))]));
    }
    if udp.checksum() == 0 {
        r.note(en("UDP checksum 0: the sender did not compute one", &[]));
    } else if !complete {
        incomplete_note(&mut r, "UDP");
    } else {
        let covered = &datagram[..length.clamp(field::udp::LEN, datagram.len())];
        let expected = pseudo_header_checksum(ip, IpNumber::UDP, udp.length(), covered, field::udp::CHECKSUM);
        r.checksum("UDP", udp.checksum(), expected);
    }
    let summary = format!("UDP {} → {}, {} bytes", udp.source_port(), udp.destination_port(), payload.len());
    r.finish(Layer::Transport, "UDP", "udp", summary)
}

/// The payload of a UDP datagram whose header starts at `start`, given the UDP length field and
/// where the IPv4 packet ends; cut at that end, empty when the length is below the header's.
fn udp_payload_range(start: usize, end: usize, length: u16) -> Range<usize> {
    let payload_start = start + field::udp::LEN;
    let payload_end = (start + usize::from(length)).clamp(payload_start, end.max(payload_start));
    payload_start..payload_end
}

/// ICMP (RFC 792): a network step.
fn icmp(mut r: Reading, message_range: Range<usize>, complete: bool) -> Message {
    let frame = r.frame;
    let base = message_range.start;
    let message = &frame[message_range.clone()];
    let checksum = field::icmp::CHECKSUM;
    if !complete {
        incomplete_note(&mut r, "ICMP");
    } else if message.len() >= checksum.end {
        // The checksum covers the whole message, as far as the IPv4 packet says it goes.
        r.checksum("ICMP", be16(message, checksum.clone()), internet_checksum(message, checksum));
    }
    let icmp = match Icmpv4Slice::from_slice(message) {
        Ok(icmp) => icmp,
        Err(e) => {
            let reason =
                en("ICMP message cut short: {got} of {need} bytes", &[("got", &e.len), ("need", &e.required_len)]);
            r.problem(reason.clone());
            return r.finish(Layer::Network, "ICMP", "frame.malformed", reason);
        }
    };
    let (type_u8, code) = (icmp.type_u8(), icmp.code_u8());
    let name = icmp_type_name(type_u8);
    r.field("ICMP.type", type_u8, at(base, field::icmp::TYPE));
    if !name.is_empty() {
        r.field("ICMP.type_name", name, at(base, field::icmp::TYPE));
    }
    r.field("ICMP.code", code, at(base, field::icmp::CODE));
    r.field("ICMP.checksum", format!("0x{:04x}", icmp.checksum()), at(base, field::icmp::CHECKSUM));
    let (kind, summary) = match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(echo) | Icmpv4Type::EchoReply(echo) => {
            r.field("ICMP.id", echo.id, at(base, field::icmp::IDENTIFIER));
            r.field("ICMP.seq", echo.seq, at(base, field::icmp::SEQUENCE));
            let kind = if type_u8 == 8 { "icmp.echo-request" } else { "icmp.echo-reply" };
            (kind.to_string(), format!("{name} id={} seq={}", echo.id, echo.seq))
        }
        _ => {
            let kind = match type_u8 {
                3 => "icmp.dest-unreachable".to_string(),
                11 => "icmp.time-exceeded".to_string(),
                other => format!("icmp.type-{other}"),
            };
            let mut summary = match (type_u8, dest_unreachable_name(code)) {
                (3, Some(why)) => format!("destination unreachable: {why}"),
                _ if !name.is_empty() => format!("{name} code={code}"),
                _ => format!("ICMP type {type_u8} code={code}"),
            };
            let mut kind = kind;
            if matches!(type_u8, 3 | 11 | 12) {
                let quoted = base + icmp.header_len()..message_range.end;
                if let Some(about) = quoted_packet(&mut r, quoted) {
                    if about.starts_with("echo request") {
                        // About an echo request: the moment of traceroute -I's probe.
                        kind.push_str(".echo");
                    }
                    summary = format!("{summary}, about {about}");
                }
            }
            (kind, summary)
        }
    };
    let data = base + icmp.header_len()..message_range.end;
    r.field("ICMP.payload_len", data.len(), data);
    r.finish(Layer::Network, "ICMP", &kind, summary)
}

/// The packet an ICMP error quotes (RFC 792: its IPv4 header and at least 8 bytes of what it
/// carried), decoded as far as it goes: its addresses, TTL and protocol, and the ports of a
/// quoted UDP or TCP header. Returns what it was, in a few words (`UDP 192.0.2.1:49152 →
/// 203.0.113.5:33434`).
fn quoted_packet(r: &mut Reading, quoted: Range<usize>) -> Option<String> {
    use field::ipv4;
    let bytes = &r.frame[quoted.clone()];
    let base = quoted.start;
    if bytes.len() < ipv4::MIN_LEN {
        r.note(en("the quoted packet is cut short: {got} of the 20 bytes of an IPv4 header", &[("got", &bytes.len())]));
        return None;
    }
    let ihl = usize::from(bytes[0] & 0x0f) * 4;
    let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
    let dst = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
    let protocol = bytes[ipv4::PROTOCOL.start];
    r.field("ICMP.quoted.ttl", bytes[ipv4::TTL.start], at(base, ipv4::TTL));
    r.field("ICMP.quoted.protocol", protocol, at(base, ipv4::PROTOCOL));
    r.field("ICMP.quoted.src", src.to_string(), at(base, ipv4::SRC));
    r.field("ICMP.quoted.dst", dst.to_string(), at(base, ipv4::DST));
    let name = match protocol {
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        _ => return Some(format!("protocol {protocol} {src} → {dst}")),
    };
    let ports = base + ihl..base + ihl + 4;
    // An echo request quoted (traceroute -I's probe): its identifier and sequence number.
    let echo = base + ihl..base + ihl + 8;
    if protocol == 1 && ihl >= ipv4::MIN_LEN && echo.end <= quoted.end && r.frame[echo.start] == 8 {
        let (id, seq) = (be16(r.frame, echo.start + 4..echo.start + 6), be16(r.frame, echo.start + 6..echo.end));
        r.field("ICMP.quoted.type", 8, echo.start..echo.start + 1);
        r.field("ICMP.quoted.id", id, echo.start + 4..echo.start + 6);
        r.field("ICMP.quoted.seq", seq, echo.start + 6..echo.end);
        return Some(format!("echo request id={id} seq={seq} {src} → {dst}"));
    }
    if ihl < ipv4::MIN_LEN || ports.end > quoted.end || protocol == 1 {
        return Some(format!("{name} {src} → {dst}"));
    }
    let (sport, dport) = (be16(r.frame, ports.start..ports.start + 2), be16(r.frame, ports.start + 2..ports.end));
    r.field("ICMP.quoted.src_port", sport, ports.start..ports.start + 2);
    r.field("ICMP.quoted.dst_port", dport, ports.start + 2..ports.end);
    Some(format!("{name} {src}:{sport} → {dst}:{dport}"))
}

/// ICMP type names (RFC 792, RFC 1122), empty for one this lab does not name.
fn icmp_type_name(icmp_type: u8) -> &'static str {
    match icmp_type {
        0 => "echo reply",
        3 => "destination unreachable",
        5 => "redirect",
        8 => "echo request",
        11 => "time exceeded",
        12 => "parameter problem",
        13 => "timestamp",
        14 => "timestamp reply",
        _ => "",
    }
}

/// Why a destination was unreachable (RFC 792, RFC 1191).
fn dest_unreachable_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "network unreachable",
        1 => "host unreachable",
        2 => "protocol unreachable",
        3 => "port unreachable",
        4 => "fragmentation needed",
        13 => "administratively prohibited",
        _ => return None,
    })
}

/// Notes the bytes after the last layer's end: Ethernet pads frames to 60 bytes.
fn padding_note(r: &mut Reading, end: usize) {
    if end < r.frame.len() {
        r.note(en("{n} bytes of Ethernet padding", &[("n", &(r.frame.len() - end))]));
    }
}

/// A big-endian 16-bit field of a header the caller made sure is long enough.
fn be16(header: &[u8], range: Range<usize>) -> u16 {
    u16::from_be_bytes([header[range.start], header[range.start + 1]])
}

/// `02:00:00:00:00:01`.
fn mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Dotted IPv4 from 4 bytes.
fn ipv4_text(bytes: &[u8]) -> String {
    match <[u8; 4]>::try_from(bytes) {
        Ok(octets) => Ipv4Addr::from(octets).to_string(),
        Err(_) => hex(bytes),
    }
}

/// `0x0800 IPv4`; just `0x1234` for an EtherType this lab does not name.
fn ether_type_text(ether_type: EtherType) -> String {
    let name = match ether_type {
        EtherType::IPV4 => "IPv4",
        EtherType::ARP => "ARP",
        EtherType::IPV6 => "IPv6",
        EtherType::VLAN_TAGGED_FRAME => "VLAN",
        _ => return format!("0x{:04x}", ether_type.0),
    };
    format!("0x{:04x} {name}", ether_type.0)
}

/// `1 Ethernet`.
fn hardware_type_text(hardware: u16) -> String {
    if hardware == 1 { "1 Ethernet".to_string() } else { hardware.to_string() }
}

/// `6 TCP`; the IANA keyword where there is one.
fn ip_protocol_text(protocol: IpNumber) -> String {
    match protocol.keyword_str() {
        Some(name) => format!("{} {name}", protocol.0),
        None => protocol.0.to_string(),
    }
}

/// The flags of the seventh IPv4 byte's top bits: `DF`, `MF`, both (`DF,MF`) or none (empty).
fn ipv4_flags_text(byte: u8) -> String {
    const RESERVED: u8 = 0x80;
    const DONT_FRAGMENT: u8 = 0x40;
    const MORE_FRAGMENTS: u8 = 0x20;
    [(RESERVED, "reserved"), (DONT_FRAGMENT, "DF"), (MORE_FRAGMENTS, "MF")]
        .iter()
        .filter(|(bit, _)| byte & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a payload reads as text: UTF-8 with no control characters but line ends and tabs.
/// Whether a payload reads as text, judged by as much of it as its field shows (a character
/// cut at that edge is no fault of the text).
fn is_text(payload: &[u8]) -> bool {
    let head = &payload[..payload.len().min(PAYLOAD_TEXT_CHARS * 4)];
    // Plain ASCII text, the usual case, without decoding characters.
    if head.iter().all(|&b| (0x20..0x7f).contains(&b) || matches!(b, b'\r' | b'\n' | b'\t')) {
        return true;
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() && head.len() < payload.len() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    text.chars().all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
}

/// A payload for its field: as text when it reads as text, else as hex; long ones end in `…`.
fn payload_text(payload: &[u8]) -> String {
    if is_text(payload) {
        printable(payload, PAYLOAD_TEXT_CHARS)
    } else if payload.len() > PAYLOAD_HEX_BYTES {
        format!("{}…", hex(&payload[..PAYLOAD_HEX_BYTES]))
    } else {
        hex(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, IpHeaders, Ipv4Header, PacketBuilder, PacketBuilderStep};

    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const CLIENT_IP: [u8; 4] = [192, 0, 2, 1];
    const SERVER_IP: [u8; 4] = [192, 0, 2, 2];
    const ISN_CLIENT: u32 = 2_847_561_033;
    const ISN_SERVER: u32 = 1_000;

    /// Ethernet and IPv4 (DF, TTL 64, as Linux and smoltcp send) from client to server.
    fn client(protocol: IpNumber) -> PacketBuilderStep<IpHeaders> {
        let mut ip = Ipv4Header::new(0, 64, protocol, CLIENT_IP, SERVER_IP).unwrap();
        ip.dont_fragment = true;
        ip.identification = 0x1c46;
        PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC).ip(IpHeaders::Ipv4(ip, Default::default()))
    }

    fn server(protocol: IpNumber) -> PacketBuilderStep<IpHeaders> {
        let mut ip = Ipv4Header::new(0, 64, protocol, SERVER_IP, CLIENT_IP).unwrap();
        ip.dont_fragment = true;
        PacketBuilder::ethernet2(SERVER_MAC, CLIENT_MAC).ip(IpHeaders::Ipv4(ip, Default::default()))
    }

    fn write(builder: PacketBuilderStep<etherparse::TcpHeader>, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        builder.write(&mut frame, payload).unwrap();
        frame
    }

    fn syn() -> Vec<u8> {
        use TcpOptionElement::*;
        let options =
            [MaximumSegmentSize(1460), SelectiveAcknowledgementPermitted, Timestamp(1000, 0), Noop, WindowScale(7)];
        write(client(IpNumber::TCP).tcp(49152, 7, ISN_CLIENT, 64240).syn().options(&options).unwrap(), &[])
    }

    fn syn_ack() -> Vec<u8> {
        let options = [TcpOptionElement::MaximumSegmentSize(1460)];
        write(
            server(IpNumber::TCP).tcp(7, 49152, ISN_SERVER, 65160).syn().ack(ISN_CLIENT + 1).options(&options).unwrap(),
            &[],
        )
    }

    fn data() -> Vec<u8> {
        write(client(IpNumber::TCP).tcp(49152, 7, ISN_CLIENT + 1, 502).psh().ack(ISN_SERVER + 1), b"hello, TCP\n")
    }

    /// A pure ACK carrying a SACK block and an option kind nobody knows (253, experimental).
    fn ack_with_sack() -> Vec<u8> {
        let mut options = vec![1, 1, 5, 10];
        options.extend(1001u32.to_be_bytes());
        options.extend(2001u32.to_be_bytes());
        options.extend([253, 4, 0xab, 0xcd]);
        write(
            server(IpNumber::TCP)
                .tcp(7, 49152, ISN_SERVER + 1, 509)
                .ack(ISN_CLIENT + 12)
                .options_raw(&options)
                .unwrap(),
            &[],
        )
    }

    fn fin() -> Vec<u8> {
        write(client(IpNumber::TCP).tcp(49152, 7, ISN_CLIENT + 12, 502).fin().ack(ISN_SERVER + 1), &[])
    }

    fn rst() -> Vec<u8> {
        write(server(IpNumber::TCP).tcp(7, 49152, 0, 0).rst().ack(ISN_CLIENT + 1), &[])
    }

    fn arp(operation: ArpOperation) -> Vec<u8> {
        let (from, to, packet) = if operation == ArpOperation::REQUEST {
            (
                CLIENT_MAC,
                [0xff; 6],
                ArpPacket::new(
                    ArpHardwareId::ETHERNET,
                    EtherType::IPV4,
                    operation,
                    &CLIENT_MAC,
                    &CLIENT_IP,
                    &[0; 6],
                    &SERVER_IP,
                ),
            )
        } else {
            (
                SERVER_MAC,
                CLIENT_MAC,
                ArpPacket::new(
                    ArpHardwareId::ETHERNET,
                    EtherType::IPV4,
                    operation,
                    &SERVER_MAC,
                    &SERVER_IP,
                    &CLIENT_MAC,
                    &CLIENT_IP,
                ),
            )
        };
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(from, to).arp(packet.unwrap()).write(&mut frame).unwrap();
        frame
    }

    fn echo_request() -> Vec<u8> {
        let mut frame = Vec::new();
        client(IpNumber::ICMP).icmpv4_echo_request(0x1234, 1).write(&mut frame, b"abcdefgh").unwrap();
        frame
    }

    /// UDP under an IPv4 header with an option (Router Alert, RFC 2113): a 24-byte header.
    fn udp_with_ip_options() -> Vec<u8> {
        let mut ip = Ipv4Header::new(0, 1, IpNumber::UDP, CLIENT_IP, [224, 0, 0, 22]).unwrap();
        ip.options = [0x94, 0x04, 0, 0].into();
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, [1, 0, 0x5e, 0, 0, 22])
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .udp(5000, 5001)
            .write(&mut frame, b"ping")
            .unwrap();
        frame
    }

    /// 300 bytes of UDP payload between ports the decoder does not read on (5000 to 5001).
    fn udp_datagram() -> Vec<u8> {
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let mut frame = Vec::new();
        client(IpNumber::UDP).udp(5000, 5001).write(&mut frame, &payload).unwrap();
        frame
    }

    /// IPv4 carrying protocol 253 (reserved for experiments): nothing above IPv4 to decode.
    fn ipv4_other() -> Vec<u8> {
        let mut frame = Vec::new();
        client(IpNumber(253)).write(&mut frame, IpNumber(253), b"1234").unwrap();
        frame
    }

    /// What a flipped byte breaks in a fixture.
    enum Checked {
        /// Every byte after the Ethernet header: the IPv4 header checksum, then TCP's, UDP's or ICMP's.
        AllAfterEthernet,
        /// Only the IPv4 header: nothing checks a payload of an unknown protocol.
        Ipv4Header,
        /// Nothing: ARP has no checksum (and Ethernet's FCS never reaches us).
        Nothing,
    }

    fn fixtures() -> Vec<(&'static str, Vec<u8>, Checked)> {
        use Checked::*;
        vec![
            ("syn", syn(), AllAfterEthernet),
            ("syn-ack", syn_ack(), AllAfterEthernet),
            ("data", data(), AllAfterEthernet),
            ("sack", ack_with_sack(), AllAfterEthernet),
            ("fin", fin(), AllAfterEthernet),
            ("rst", rst(), AllAfterEthernet),
            ("echo", echo_request(), AllAfterEthernet),
            ("udp", udp_datagram(), AllAfterEthernet),
            ("udp-ip-options", udp_with_ip_options(), AllAfterEthernet),
            ("ipv4", ipv4_other(), Ipv4Header),
            ("arp-request", arp(ArpOperation::REQUEST), Nothing),
            ("arp-reply", arp(ArpOperation::REPLY), Nothing),
        ]
    }

    fn value(msg: &Message, path: &str) -> serde_json::Value {
        msg.fields.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no {path} in {msg:#?}")).value.clone()
    }

    fn range(msg: &Message, path: &str) -> Range<usize> {
        let field = msg.fields.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no {path}"));
        field.range[0]..field.range[1]
    }

    fn paths(msg: &Message) -> Vec<&str> {
        msg.fields.iter().map(|f| f.path.as_str()).collect()
    }

    fn be(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0, |n, &b| (n << 8) | u64::from(b))
    }

    /// The bytes at each field's range say what the field says: whole-byte integers big-endian,
    /// checksums as hex, MACs and IPv4 addresses as written, lengths as the span's own length.
    fn assert_ranges_encode_values(frame: &[u8], msg: &Message) {
        const PACKED: [&str; 6] =
            ["IPv4.version", "IPv4.ihl", "IPv4.dscp", "IPv4.ecn", "IPv4.fragment_offset", "TCP.data_offset"];
        for f in &msg.fields {
            let bytes = &frame[f.range[0]..f.range[1]];
            let path = f.path.as_str();
            match &f.value {
                serde_json::Value::Number(n) if path.ends_with("payload_len") => {
                    assert_eq!(n.as_u64(), Some(bytes.len() as u64), "{path}")
                }
                serde_json::Value::Number(n) if !PACKED.contains(&path) && !path.starts_with("TCP.option.") => {
                    assert_eq!(n.as_u64(), Some(be(bytes)), "{path}")
                }
                serde_json::Value::String(s) if path.ends_with("checksum") => {
                    assert_eq!(s, &format!("0x{:04x}", be(bytes)), "{path}")
                }
                serde_json::Value::String(s) if bytes.len() == 6 && s.contains(':') => {
                    assert_eq!(s, &mac(bytes), "{path}")
                }
                serde_json::Value::String(s) if path.ends_with("_ip") || path == "IPv4.src" || path == "IPv4.dst" => {
                    assert_eq!(s, &ipv4_text(bytes), "{path}")
                }
                _ => {}
            }
        }
    }

    #[test]
    fn syn_with_options() {
        let frame = syn();
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Transport, "TCP", "tcp.syn"));
        assert_eq!(msg.summary, "SYN seq=2847561033 win=64240 [MSS=1460 SACK_PERM TSval=1000 TSecr=0 WS=7]");
        assert_eq!(
            paths(&msg),
            [
                "Ethernet.dst",
                "Ethernet.src",
                "Ethernet.type",
                "IPv4.version",
                "IPv4.ihl",
                "IPv4.dscp",
                "IPv4.ecn",
                "IPv4.total_length",
                "IPv4.identification",
                "IPv4.flags",
                "IPv4.fragment_offset",
                "IPv4.ttl",
                "IPv4.protocol",
                "IPv4.checksum",
                "IPv4.src",
                "IPv4.dst",
                "TCP.src_port",
                "TCP.dst_port",
                "TCP.seq",
                "TCP.ack",
                "TCP.data_offset",
                "TCP.flags",
                "TCP.window",
                "TCP.checksum",
                "TCP.urgent_ptr",
                "TCP.option.mss",
                "TCP.option.sack_permitted",
                "TCP.option.timestamps",
                "TCP.option.window_scale",
                "TCP.payload_len",
            ]
        );
        assert_eq!(value(&msg, "Ethernet.dst"), "02:00:00:00:00:02");
        assert_eq!(value(&msg, "Ethernet.src"), "02:00:00:00:00:01");
        assert_eq!(value(&msg, "Ethernet.type"), "0x0800 IPv4");
        assert_eq!(value(&msg, "IPv4.version"), 4);
        assert_eq!(value(&msg, "IPv4.ihl"), 5);
        assert_eq!(value(&msg, "IPv4.total_length"), 60);
        assert_eq!(value(&msg, "IPv4.identification"), 0x1c46);
        assert_eq!(value(&msg, "IPv4.flags"), "DF");
        assert_eq!(value(&msg, "IPv4.ttl"), 64);
        assert_eq!(value(&msg, "IPv4.protocol"), "6 TCP");
        assert_eq!(value(&msg, "IPv4.src"), "192.0.2.1");
        assert_eq!(value(&msg, "IPv4.dst"), "192.0.2.2");
        assert_eq!(value(&msg, "TCP.src_port"), 49152);
        assert_eq!(value(&msg, "TCP.dst_port"), 7);
        assert_eq!(value(&msg, "TCP.seq"), ISN_CLIENT);
        assert_eq!(value(&msg, "TCP.ack"), 0);
        assert_eq!(value(&msg, "TCP.data_offset"), 10);
        assert_eq!(value(&msg, "TCP.flags"), "SYN");
        assert_eq!(value(&msg, "TCP.window"), 64240);
        assert_eq!(value(&msg, "TCP.urgent_ptr"), 0);
        assert_eq!(value(&msg, "TCP.option.mss"), 1460);
        assert_eq!(value(&msg, "TCP.option.sack_permitted"), true);
        assert_eq!(value(&msg, "TCP.option.timestamps"), "TSval=1000 TSecr=0");
        assert_eq!(value(&msg, "TCP.option.window_scale"), 7);
        assert_eq!(value(&msg, "TCP.payload_len"), 0);
        // Ethernet 14 + IPv4 20: the sequence number is bytes 4..8 of the TCP header.
        assert_eq!(range(&msg, "TCP.seq"), 38..42);
        assert_eq!(be(&frame[range(&msg, "TCP.seq")]), u64::from(ISN_CLIENT));
        assert_eq!(range(&msg, "TCP.option.mss"), 54..58);
        assert_eq!(&frame[range(&msg, "TCP.option.window_scale")], &[3, 3, 7]);
        assert_eq!(range(&msg, "TCP.payload_len"), 74..74);
        assert_eq!(
            msg.notes,
            [
                "port 7: a well-known port (0–1023, as IANA divides them)".to_string(),
                format!(
                    "checksums ok: IPv4 header {}, TCP {}",
                    value(&msg, "IPv4.checksum").as_str().unwrap(),
                    value(&msg, "TCP.checksum").as_str().unwrap()
                )
            ]
        );
        assert_ranges_encode_values(&frame, &msg);
    }

    #[test]
    fn handshake_and_close_summaries_and_kinds() {
        let cases = [
            (syn_ack(), "tcp.syn-ack", "SYN,ACK seq=1000 ack=2847561034 win=65160 [MSS=1460]"),
            (data(), "tcp.data", "PSH,ACK seq=2847561034 ack=1001 len=11 \"hello, TCP\""),
            (ack_with_sack(), "tcp.ack", "ACK seq=1001 ack=2847561045"),
            (fin(), "tcp.fin", "FIN,ACK seq=2847561045 ack=1001"),
            (rst(), "tcp.rst", "RST,ACK seq=0 ack=2847561034"),
        ];
        for (frame, kind, summary) in cases {
            let msg = decode(&frame);
            assert_eq!(msg.malformed, None, "{summary}");
            assert_eq!((msg.layer, msg.proto), (Layer::Transport, "TCP"));
            assert_eq!(msg.kind, kind);
            assert_eq!(msg.summary, summary);
            assert_ranges_encode_values(&frame, &msg);
        }
        let msg = decode(&syn_ack());
        assert_eq!(value(&msg, "TCP.flags"), "SYN,ACK");
        assert_eq!(value(&msg, "TCP.ack"), ISN_CLIENT + 1);
        assert_eq!(value(&msg, "IPv4.src"), "192.0.2.2");
        assert_eq!(value(&decode(&rst()), "TCP.flags"), "ACK,RST");
        assert_eq!(value(&decode(&fin()), "TCP.flags"), "ACK,FIN");
    }

    #[test]
    fn data_segment_payload() {
        let frame = data();
        let msg = decode(&frame);
        assert_eq!(value(&msg, "TCP.flags"), "ACK,PSH");
        assert_eq!(value(&msg, "TCP.payload_len"), 11);
        assert_eq!(value(&msg, "TCP.payload"), "hello, TCP\\n");
        assert_eq!(&frame[range(&msg, "TCP.payload")], b"hello, TCP\n");
        assert_eq!(range(&msg, "TCP.payload").end, frame.len());
    }

    #[test]
    fn binary_payload_is_hex() {
        let frame = write(client(IpNumber::TCP).tcp(49152, 7, 1, 502).psh().ack(1), &[0x16, 0x03, 0x01, 0x00]);
        let msg = decode(&frame);
        assert_eq!(value(&msg, "TCP.payload"), "16030100");
        assert_eq!(msg.summary, "PSH,ACK seq=1 ack=1 len=4");
    }

    #[test]
    fn sack_and_unknown_options() {
        let frame = ack_with_sack();
        let msg = decode(&frame);
        assert_eq!(value(&msg, "TCP.option.sack"), "1001-2001");
        assert_eq!(value(&msg, "TCP.option.kind_253"), "abcd");
        assert_eq!(&frame[range(&msg, "TCP.option.kind_253")], &[253, 4, 0xab, 0xcd]);
        assert_eq!(range(&msg, "TCP.option.sack").len(), 10);
    }

    #[test]
    fn bad_option_length_is_malformed() {
        // MSS says 3 bytes long; it is always 4.
        let options = [2, 3, 5, 1];
        let frame = write(client(IpNumber::TCP).tcp(1, 2, 3, 4).syn().options_raw(&options).unwrap(), &[]);
        let msg = decode(&frame);
        assert_eq!(msg.kind, "frame.malformed");
        let reason = msg.malformed.clone().unwrap();
        assert!(reason.contains("TCP option kind 2 with length 3"), "{reason}");
        assert_eq!(value(&msg, "TCP.flags"), "SYN");
    }

    #[test]
    fn arp_request_and_reply() {
        let frame = arp(ArpOperation::REQUEST);
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Link, "ARP", "arp.request"));
        assert_eq!(msg.summary, "who has 192.0.2.2? tell 192.0.2.1");
        assert_eq!(value(&msg, "Ethernet.dst"), "ff:ff:ff:ff:ff:ff");
        assert_eq!(value(&msg, "Ethernet.type"), "0x0806 ARP");
        assert_eq!(value(&msg, "ARP.operation"), "request");
        assert_eq!(value(&msg, "ARP.sender_mac"), "02:00:00:00:00:01");
        assert_eq!(value(&msg, "ARP.sender_ip"), "192.0.2.1");
        assert_eq!(value(&msg, "ARP.target_mac"), "00:00:00:00:00:00");
        assert_eq!(value(&msg, "ARP.target_ip"), "192.0.2.2");
        assert_eq!(range(&msg, "ARP.target_ip"), 38..42);
        assert_ranges_encode_values(&frame, &msg);

        // On a real cable the reply is padded to Ethernet's 60-byte minimum.
        let mut frame = arp(ArpOperation::REPLY);
        frame.resize(60, 0);
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!(msg.kind, "arp.reply");
        assert_eq!(msg.summary, "192.0.2.2 is at 02:00:00:00:00:02");
        assert_eq!(value(&msg, "ARP.operation"), "reply");
        assert!(msg.notes.contains(&"18 bytes of Ethernet padding".to_string()), "{:?}", msg.notes);
        assert_ranges_encode_values(&frame, &msg);
    }

    #[test]
    fn icmp_echo_request() {
        let frame = echo_request();
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Network, "ICMP", "icmp.echo-request"));
        assert_eq!(msg.summary, "echo request id=4660 seq=1");
        assert_eq!(value(&msg, "IPv4.protocol"), "1 ICMP");
        assert_eq!(value(&msg, "ICMP.type"), 8);
        assert_eq!(value(&msg, "ICMP.type_name"), "echo request");
        assert_eq!(value(&msg, "ICMP.code"), 0);
        assert_eq!(value(&msg, "ICMP.id"), 0x1234);
        assert_eq!(value(&msg, "ICMP.seq"), 1);
        assert_eq!(value(&msg, "ICMP.payload_len"), 8);
        assert!(msg.notes.iter().any(|n| n.starts_with("checksums ok:") && n.contains("ICMP 0x")));
        assert_ranges_encode_values(&frame, &msg);
    }

    #[test]
    fn udp_datagram_and_its_payload() {
        let frame = udp_datagram();
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Transport, "UDP", "udp"));
        assert_eq!(msg.summary, "UDP 5000 → 5001, 300 bytes");
        assert_eq!(value(&msg, "UDP.src_port"), 5000);
        assert_eq!(value(&msg, "UDP.dst_port"), 5001);
        assert_eq!(value(&msg, "UDP.length"), 308);
        assert_eq!(value(&msg, "UDP.payload_len"), 300);
        assert!(msg.notes.iter().any(|n| n.starts_with("checksums ok:") && n.contains("UDP 0x")));
        assert_ranges_encode_values(&frame, &msg);
        assert_eq!(udp_payload(&frame), Some((5000, 5001, 42..342)));
        assert_eq!(udp_payload(&syn()), None);
        assert_eq!(udp_payload(&arp(ArpOperation::REQUEST)), None);
        assert_eq!(udp_payload(&frame[..40]), None);
    }

    #[test]
    fn ipv4_options() {
        let frame = udp_with_ip_options();
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!(value(&msg, "IPv4.ihl"), 6);
        assert_eq!(value(&msg, "IPv4.options"), "94040000");
        assert_eq!(range(&msg, "IPv4.options"), 34..38);
        assert_eq!(range(&msg, "UDP.src_port"), 38..40);
        assert_eq!(udp_payload(&frame), Some((5000, 5001, 46..50)));
        assert_ranges_encode_values(&frame, &msg);

        // A total length between the fixed header and the options: the payload starts after the
        // options, past where the packet says it ends.
        let mut frame = frame;
        frame[16..18].copy_from_slice(&22u16.to_be_bytes());
        fix_ipv4_checksum(&mut frame);
        let msg = decode(&frame);
        assert_eq!(
            msg.malformed.as_deref(),
            Some("IPv4 total length 22 is shorter than its own header (24 bytes)"),
            "{msg:#?}"
        );
        assert!(msg.notes.contains(&"UDP checksum not checked: the IPv4 packet is not whole".to_string()));
        let _ = udp_payload(&frame);
    }

    #[test]
    fn udp_without_checksum() {
        let mut frame = udp_datagram();
        frame[40..42].copy_from_slice(&[0, 0]);
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert!(msg.notes.iter().any(|n| n.contains("did not compute one")));
    }

    #[test]
    fn ipv4_with_another_protocol() {
        let frame = ipv4_other();
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Network, "IPv4", "ipv4"));
        assert_eq!(value(&msg, "IPv4.protocol"), "253");
        assert_eq!(msg.summary, "192.0.2.1 → 192.0.2.2 protocol 253, 4 bytes");
        assert_ranges_encode_values(&frame, &msg);
    }

    #[test]
    fn ipv4_fragment_is_a_network_step() {
        let mut frame = udp_datagram();
        frame[14 + field::ipv4::FLAGS.start] |= 0x20; // MF
        fix_ipv4_checksum(&mut frame);
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Network, "IPv4", "ipv4.fragment"));
        assert_eq!(value(&msg, "IPv4.flags"), "DF,MF");
        assert_eq!(udp_payload(&frame), None);
    }

    #[test]
    fn other_ether_type_is_a_link_step() {
        let mut frame = ipv4_other();
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Link, "Ethernet", "ethernet"));
        assert_eq!(msg.summary, format!("EtherType 0x86dd IPv6, {} bytes", frame.len() - 14));
    }

    #[test]
    fn padded_tcp_segment_is_not_payload() {
        let mut frame = fin();
        frame.resize(60, 0);
        let msg = decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!(value(&msg, "TCP.payload_len"), 0);
        assert!(msg.notes.contains(&"6 bytes of Ethernet padding".to_string()));
    }

    /// Recomputes the IPv4 header checksum with etherparse's own header code (not ours).
    fn fix_ipv4_checksum(frame: &mut [u8]) {
        let header = Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap().to_header();
        let checksum = header.calc_header_checksum();
        frame[14 + 10..14 + 12].copy_from_slice(&checksum.to_be_bytes());
    }

    #[test]
    fn wrong_ipv4_checksum() {
        let mut frame = syn();
        let good = be(&frame[24..26]) as u16;
        let bad = good ^ 0x0101;
        frame[24..26].copy_from_slice(&bad.to_be_bytes());
        let msg = decode(&frame);
        assert_eq!(msg.malformed, Some(format!("IPv4 header checksum 0x{bad:04x} should be 0x{good:04x}")));
        assert_eq!(msg.kind, "frame.malformed");
        // The step still shows what it could read.
        assert_eq!((msg.layer, msg.proto), (Layer::Transport, "TCP"));
        assert!(msg.summary.starts_with("SYN seq=2847561033"));
        assert_eq!(value(&msg, "TCP.option.mss"), 1460);
    }

    #[test]
    fn wrong_tcp_checksum() {
        let mut frame = data();
        let good = be(&frame[50..52]) as u16;
        *frame.last_mut().unwrap() = b'!';
        let msg = decode(&frame);
        let reason = msg.malformed.clone().unwrap();
        assert!(reason.starts_with(&format!("TCP checksum 0x{good:04x} should be 0x")), "{reason}");
        assert!(msg.summary.ends_with("\"hello, TCP!\""), "{}", msg.summary);
    }

    #[test]
    fn total_length_beyond_the_frame() {
        let mut frame = syn();
        frame[16..18].copy_from_slice(&100u16.to_be_bytes());
        fix_ipv4_checksum(&mut frame);
        let msg = decode(&frame);
        let reason = msg.malformed.clone().unwrap();
        assert!(reason.starts_with("IPv4 total length 100 is beyond the frame: only 60 bytes"), "{reason}");
        assert_eq!(value(&msg, "TCP.flags"), "SYN");
    }

    #[test]
    fn shorter_than_an_ethernet_header() {
        let msg = decode(&[0; 5]);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Link, "Ethernet", "frame.malformed"));
        assert_eq!(msg.malformed.as_deref(), Some("frame cut short: 5 of the 14 bytes of an Ethernet header"));
        assert!(msg.fields.is_empty());
    }

    #[test]
    fn truncated_at_every_length() {
        for (name, frame, _) in fixtures() {
            assert_eq!(decode(&frame).malformed, None, "{name}");
            for len in 0..frame.len() {
                let msg = decode(&frame[..len]);
                assert!(msg.malformed.is_some(), "{name} cut at {len}: {msg:#?}");
                assert_eq!(msg.kind, "frame.malformed");
                for f in &msg.fields {
                    assert!(f.range[0] <= f.range[1] && f.range[1] <= len, "{name} cut at {len}: {f:?}");
                }
                let _ = udp_payload(&frame[..len]);
            }
        }
    }

    #[test]
    fn flipped_byte_anywhere() {
        for (name, frame, checked) in fixtures() {
            for i in 0..frame.len() {
                for mask in [0xff, 0x01, 0x80, 0x10] {
                    let mut bad = frame.clone();
                    bad[i] ^= mask;
                    let msg = decode(&bad);
                    let _ = udp_payload(&bad);
                    for f in &msg.fields {
                        assert!(f.range[0] <= f.range[1] && f.range[1] <= bad.len(), "{name}[{i}]^{mask:#x}: {f:?}");
                    }
                    let ip_header = field::ethernet::LEN..field::ethernet::LEN + field::ipv4::MIN_LEN;
                    let checked = match checked {
                        Checked::AllAfterEthernet => i >= field::ethernet::LEN,
                        Checked::Ipv4Header => ip_header.contains(&i),
                        Checked::Nothing => false,
                    };
                    if checked {
                        let reason = msg.malformed.unwrap_or_default();
                        assert!(reason.contains("checksum"), "{name}[{i}]^{mask:#x}: {reason:?}");
                    }
                }
            }
        }
    }
}
