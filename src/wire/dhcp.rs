//! DHCP on the wire (RFC 2131 §2, RFC 2132): one message, decoded into one step with every field's
//! byte range, sans-IO.
//!
//! A DHCP message is a BOOTP message (RFC 951) with a magic cookie and options after it:
//!
//! ```text
//!  0      op htype hlen hops        1 + 1 + 1 + 1
//!  4      xid                       4   the client's random transaction id
//!  8      secs flags                2 + 2
//! 12      ciaddr yiaddr             4 + 4   client's address, "your" (offered) address
//! 20      siaddr giaddr             4 + 4   next server, relay agent
//! 28      chaddr                    16  client hardware address (6 bytes of MAC, then zeros)
//! 44      sname file                64 + 128  legacy BOOTP names, usually all zeros
//! 236     magic cookie              4   99.130.83.99: "options follow"
//! 240     options                   code, length, value ... End (255)
//! ```
//!
//! dhcproto checks the message as a whole and types the option values; the options are also walked
//! here byte by byte, because dhcproto keeps no offsets and skips over what it cannot read (see
//! [`describe`]). [`encode`] and [`parse`] are what the lab's client and server use to put a
//! [`v4::Message`] on the wire and take it off again.

use crate::locale::en;
use crate::session::{Layer, hex};
use crate::wire::Message;
use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;

/// Where each field of the fixed header sits, counted from the message's first byte (RFC 2131 §2).
pub mod field {
    use std::ops::Range;
    pub const OP: Range<usize> = 0..1;
    pub const HTYPE: Range<usize> = 1..2;
    pub const HLEN: Range<usize> = 2..3;
    pub const HOPS: Range<usize> = 3..4;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC_COOKIE: Range<usize> = 236..240;
    /// The options start here and run to the End option.
    pub const OPTIONS: usize = 240;
}

/// The magic cookie (RFC 2131 §3): the vendor area holds DHCP options.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// The smallest message relays and old BOOTP servers accept (RFC 1542 §2.1): [`encode`] pads to it.
pub const MIN_LEN: usize = 300;

/// The broadcast flag: the leftmost bit of `flags` (RFC 2131 §2, figure 2).
const BROADCAST_FLAG: u16 = 0x8000;

/// A transaction id (`xid`): chosen at random by the client, copied into every reply, so a client
/// knows which answers are to its own question (RFC 2131 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Xid(pub u32);

impl Xid {
    /// A fresh random xid, for a new exchange.
    pub fn random() -> Self {
        Xid(rand::random::<u32>())
    }
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// The message type as DESIGN.md names it: `DISCOVER`, `OFFER`, ... (option 53, RFC 2132 §9.6).
pub fn type_name(t: MessageType) -> String {
    match t {
        MessageType::Discover => "DISCOVER".into(),
        MessageType::Offer => "OFFER".into(),
        MessageType::Request => "REQUEST".into(),
        MessageType::Decline => "DECLINE".into(),
        MessageType::Ack => "ACK".into(),
        MessageType::Nak => "NAK".into(),
        MessageType::Release => "RELEASE".into(),
        MessageType::Inform => "INFORM".into(),
        MessageType::ForceRenew => "FORCERENEW".into(),
        other => format!("TYPE-{}", u8::from(other)),
    }
}

/// The name a field path uses for an option code; `None` for codes shown as `DHCP.option.N`.
pub fn option_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "subnet_mask",
        3 => "router",
        6 => "dns_servers",
        12 => "host_name",
        15 => "domain_name",
        28 => "broadcast_address",
        50 => "requested_ip",
        51 => "lease_time",
        53 => "message_type",
        54 => "server_id",
        55 => "parameter_request_list",
        56 => "message",
        57 => "max_message_size",
        58 => "renewal_time",
        59 => "rebinding_time",
        60 => "vendor_class_id",
        61 => "client_id",
        _ => return None,
    })
}

/// Puts a message on the wire: dhcproto's encoding, padded with zeros to [`MIN_LEN`].
pub fn encode(msg: &v4::Message) -> Vec<u8> {
    let mut buf = Vec::with_capacity(MIN_LEN);
    // Encoding into a Vec fails only for values dhcproto's own setters already refuse.
    if msg.encode(&mut Encoder::new(&mut buf)).is_err() {
        buf.clear();
    }
    if buf.len() < MIN_LEN {
        buf.resize(MIN_LEN, 0);
    }
    buf
}

/// Takes a message off the wire, for the client and server: a DHCP message (not BOOTP, not
/// garbage) or the reason it is not one. [`describe`] gives the full account of the same bytes.
pub fn parse(payload: &[u8]) -> Result<v4::Message, String> {
    if payload.len() < field::OPTIONS {
        return Err(format!("cut short: {} of the {} bytes before the options", payload.len(), field::OPTIONS));
    }
    if payload[field::MAGIC_COOKIE] != MAGIC_COOKIE {
        return Err("no DHCP magic cookie".into());
    }
    if let Some(reason) = length_problem(&walk_options(payload).0) {
        return Err(reason);
    }
    let msg = v4::Message::decode(&mut Decoder::new(payload)).map_err(|e| e.to_string())?;
    if usize::from(msg.hlen()) > field::CHADDR.len() {
        return Err(en("hlen {hlen} is more than the 16 bytes of chaddr", &[("hlen", &msg.hlen())]));
    }
    if msg.opts().msg_type().is_none() {
        return Err("no message type (option 53)".into());
    }
    // What dhcproto lets pass (a missing End option, an option cut short), the step calls
    // malformed: a message a step calls malformed is not acted on.
    if let Some(reason) = describe(payload, 0).malformed {
        return Err(reason);
    }
    Ok(msg)
}

/// One option as it sits in the bytes: where its code, length and value are.
struct RawOption {
    code: u8,
    /// The whole option: code, length and value.
    range: Range<usize>,
    /// The value alone.
    data: Range<usize>,
}

/// Walks the options after the magic cookie (RFC 2132 §2): Pad (0) is one byte, End (255) ends the
/// list, every other option is code, length, value. Returns the options, where End sits, and what
/// went wrong.
fn walk_options(payload: &[u8]) -> (Vec<RawOption>, Option<usize>, Option<String>) {
    let mut options = Vec::new();
    let mut at = field::OPTIONS;
    loop {
        let Some(&code) = payload.get(at) else {
            return (options, None, Some(en("the options end without the End option (255)", &[])));
        };
        match code {
            0 => at += 1,
            255 => return (options, Some(at), None),
            _ => {
                let Some(&len) = payload.get(at + 1) else {
                    let problem = en("option {label} cut short after its code", &[("label", &option_label(code))]);
                    return (options, None, Some(problem));
                };
                let end = at + 2 + len as usize;
                if end > payload.len() {
                    let problem = en(
                        "option {label} cut short: {got} of its {len} bytes",
                        &[("label", &option_label(code)), ("got", &(payload.len() - (at + 2))), ("len", &len)],
                    );
                    return (options, None, Some(problem));
                }
                options.push(RawOption { code, range: at..end, data: at + 2..end });
                at = end;
            }
        }
    }
}

/// Whether dhcproto may be given an option of this code with a value of `len` bytes. For a few
/// codes it takes the length for granted instead of refusing one that is wrong: it asserts it (a
/// panic in a debug build) or subtracts from it (an overflow). Those lengths are checked here.
fn length_fits(code: u8, len: usize) -> bool {
    match code {
        // Rapid Commit (RFC 4039): no value.
        80 => len == 0,
        // Client FQDN (RFC 4702): flags, two RCODEs, then the name.
        81 => len >= 3,
        // Client Network Interface Identifier (RFC 4578): type, major, minor.
        94 => len == 3,
        // Bulk leasequery (RFC 6926): a status code and its text; four times of 4 bytes.
        151 => len >= 1,
        152..=155 => len == 4,
        _ => true,
    }
}

fn bad_length(code: u8, len: usize) -> String {
    en("option {label} with length {len}, not a length its kind has", &[("label", &option_label(code)), ("len", &len)])
}

/// An option as dhcproto reads it: pieces of one code in a row are one value, joined (RFC 3396).
struct Run {
    code: u8,
    /// The bytes of every piece, codes and lengths included.
    range: Range<usize>,
    /// Bytes of the joined value.
    len: usize,
    pieces: usize,
}

/// The options as runs of pieces in a row.
fn runs(options: &[RawOption]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for o in options {
        match out.last_mut() {
            Some(run) if run.code == o.code && run.range.end == o.range.start => {
                run.range.end = o.range.end;
                run.len += o.data.len();
                run.pieces += 1;
            }
            _ => out.push(Run { code: o.code, range: o.range.clone(), len: o.data.len(), pieces: 1 }),
        }
    }
    out
}

/// The first option dhcproto may not be given, as it reads them.
fn length_problem(options: &[RawOption]) -> Option<String> {
    runs(options).iter().find(|r| !length_fits(r.code, r.len)).map(|r| bad_length(r.code, r.len))
}

/// `51 (lease_time)`, or `224` for an option without a name here.
fn option_label(code: u8) -> String {
    match option_name(code) {
        Some(name) => format!("{code} ({name})"),
        None => code.to_string(),
    }
}

/// Decodes one DHCP message (a UDP payload) into a step. `offset` is where the payload starts in
/// the frame: every range is shifted by it, so ranges point into the frame.
///
/// Never fails: a message that does not decode keeps the fields that could be read and names every
/// problem in `malformed` (joined by `; `). Options get their ranges from a walk of their bytes;
/// each option field's range covers its code, length and value.
pub fn describe(dhcp_payload: &[u8], offset: usize) -> Message {
    let p = dhcp_payload;
    let mut r = Reading { offset, fields: Vec::new(), notes: Vec::new(), problems: Vec::new() };
    header_fields(p, &mut r);
    if p.len() < field::OPTIONS {
        r.problems.push(en(
            "cut short: {got} of the {need} bytes of the header and magic cookie",
            &[("got", &p.len()), ("need", &field::OPTIONS)],
        ));
        return r.finish("dhcp.malformed", "DHCP message cut short".into());
    }
    match p[field::OP.start] {
        1 | 2 => {}
        op => r.problems.push(en("op {op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)", &[("op", &op)])),
    }
    if p[field::MAGIC_COOKIE] != MAGIC_COOKIE {
        r.problems.push(en(
            "magic cookie 0x{cookie} is not 0x63825363: not a DHCP message",
            &[("cookie", &hex(&p[field::MAGIC_COOKIE]))],
        ));
        return r.finish("dhcp.malformed", "not a DHCP message".into());
    }
    let (raw, end, walk_problem) = walk_options(p);
    // An option whose length dhcproto takes for granted is not given to it (a problem below).
    let decoded = match length_problem(&raw) {
        Some(_) => None,
        None => match v4::Message::decode(&mut Decoder::new(p)) {
            Ok(msg) => Some(msg),
            Err(e) => {
                r.problems.push(en("dhcproto: {error}", &[("error", &e)]));
                None
            }
        },
    };
    // The options as the walk found them, for the summary: dhcproto stops at the first option it
    // cannot read and drops the rest, even a message type that follows.
    let mut found = v4::DhcpOptions::new();
    for (i, opt) in raw.iter().enumerate() {
        let repeated = raw.iter().filter(|o| o.code == opt.code).count() > 1;
        if repeated && raw[..i].iter().all(|o| o.code != opt.code) {
            r.notes.push(en(
                "option {label} appears more than once: its values join into one (RFC 3396)",
                &[("label", &option_label(opt.code))],
            ));
        }
        // Each option on its own, so its value belongs to exactly the bytes of its range.
        let fits = length_fits(opt.code, opt.data.len());
        let typed = fits.then(|| DhcpOption::decode(&mut Decoder::new(&p[opt.range.clone()])).ok()).flatten();
        if let Some(t) = &typed
            && !repeated
        {
            found.insert(t.clone());
        }
        let value = typed.as_ref().and_then(option_value).unwrap_or_else(|| hex(&p[opt.data.clone()]).into());
        let path = match option_name(opt.code) {
            Some(name) => format!("DHCP.{name}"),
            None => format!("DHCP.option.{}", opt.code),
        };
        r.field(path, value, opt.range.clone());
    }
    // dhcproto reads the options a run at a time (pieces of one code in a row are one value,
    // RFC 3396) and stops, silently, at the first run it cannot read: what follows, even the
    // message type, is lost to the lab's client and server. Each such run is a problem.
    for run in runs(&raw) {
        let label = option_label(run.code);
        if !length_fits(run.code, run.len) {
            r.problems.push(bad_length(run.code, run.len));
        } else if DhcpOption::decode(&mut Decoder::new(&p[run.range.clone()])).is_err() {
            r.problems.push(match run.pieces {
                1 => en("option {label} does not decode (length {len})", &[("label", &label), ("len", &run.len)]),
                n => en(
                    "option {label} comes in {n} pieces in a row: joined (RFC 3396), its {len} bytes do not decode",
                    &[("label", &label), ("n", &n), ("len", &run.len)],
                ),
            });
        }
    }
    if let Some(end) = end {
        r.field("DHCP.end", 255, end..end + 1);
        let padding = p.len() - end - 1;
        if padding > 0 {
            r.notes.push(en("{n} bytes of padding after the End option", &[("n", &padding)]));
        }
    }
    if let Some(problem) = walk_problem {
        r.problems.push(problem);
    }
    let Some(mut msg) = decoded else {
        return r.finish("dhcp.malformed", "DHCP message that does not decode".into());
    };
    // Options that appear more than once keep dhcproto's joined value (RFC 3396).
    for (code, opt) in msg.opts().iter() {
        if !found.contains(*code) {
            found.insert(opt.clone());
        }
    }
    msg.set_opts(found);
    if msg.opts().get(OptionCode::OptionOverload).is_some() {
        r.notes.push(en("option 52: more options hide in the sname and file fields (not shown)", &[]));
    }
    let Some(t) = msg.opts().msg_type() else {
        r.problems.push(en("no message type (option 53): a plain BOOTP message, not DHCP", &[]));
        return r.finish("dhcp.malformed", format!("BOOTP xid={}", Xid(msg.xid())));
    };
    lease_notes(&msg, &mut r);
    r.finish(&kind(&msg, t), summary(&msg, t))
}

/// The narration kind: the message type, and for a REQUEST which of its four moments the
/// message itself says it is (RFC 2131 §4.3.2): `selecting` names the chosen server,
/// `reboot` (INIT-REBOOT) asks for an address without one, `renew` has the address in
/// `ciaddr` (a broadcast one is a rebind: only the frame's destination tells, see
/// [`crate::wire::frame`]). An ACK without a lease answers an INFORM.
fn kind(msg: &v4::Message, t: MessageType) -> String {
    let base = format!("dhcp.{}", type_name(t).to_lowercase());
    let moment = match t {
        MessageType::Request if !msg.ciaddr().is_unspecified() => "renew",
        MessageType::Request if addr_option(msg, OptionCode::ServerIdentifier).is_some() => "selecting",
        MessageType::Request if addr_option(msg, OptionCode::RequestedIpAddress).is_some() => "reboot",
        MessageType::Ack if lease_time(msg).is_none() => "inform",
        _ => return base,
    };
    format!("{base}.{moment}")
}

/// The fixed header's fields, those of them the buffer holds whole.
fn header_fields(p: &[u8], r: &mut Reading) {
    let whole = |range: &Range<usize>| p.get(range.clone());
    if let Some(b) = whole(&field::OP) {
        let op = match b[0] {
            1 => "BOOTREQUEST".to_string(),
            2 => "BOOTREPLY".to_string(),
            n => n.to_string(),
        };
        r.field("DHCP.op", op, field::OP);
    }
    if let Some(b) = whole(&field::HTYPE) {
        r.field("DHCP.htype", b[0], field::HTYPE);
    }
    if let Some(b) = whole(&field::HLEN) {
        r.field("DHCP.hlen", b[0], field::HLEN);
    }
    if let Some(b) = whole(&field::HOPS) {
        r.field("DHCP.hops", b[0], field::HOPS);
    }
    if let Some(b) = whole(&field::XID) {
        r.field("DHCP.xid", Xid(be32(b)).to_string(), field::XID);
    }
    if let Some(b) = whole(&field::SECS) {
        r.field("DHCP.secs", u16::from_be_bytes([b[0], b[1]]), field::SECS);
    }
    if let Some(b) = whole(&field::FLAGS) {
        let flags = u16::from_be_bytes([b[0], b[1]]);
        let text = if flags & BROADCAST_FLAG != 0 { "broadcast" } else { "" };
        r.field("DHCP.flags", text, field::FLAGS);
        if flags & BROADCAST_FLAG != 0 {
            r.notes.push(en("flags: broadcast, the client asks for replies to 255.255.255.255", &[]));
        }
        if flags & !BROADCAST_FLAG != 0 {
            r.notes.push(en(
                "flags 0x{flags}: bits other than broadcast must be zero",
                &[("flags", &format!("{flags:04x}"))],
            ));
        }
    }
    for (path, range) in [
        ("DHCP.ciaddr", field::CIADDR),
        ("DHCP.yiaddr", field::YIADDR),
        ("DHCP.siaddr", field::SIADDR),
        ("DHCP.giaddr", field::GIADDR),
    ] {
        if let Some(b) = whole(&range) {
            r.field(path, Ipv4Addr::from(be32(b)).to_string(), range);
        }
    }
    if let Some(b) = whole(&field::CHADDR) {
        // hlen says how much of the 16 bytes is the address; a bad hlen shows all of them.
        let hlen = match p[field::HLEN.start] as usize {
            0 => field::CHADDR.len(),
            n @ 17.. => {
                r.problems.push(en("hlen {hlen} is more than the 16 bytes of chaddr", &[("hlen", &n)]));
                field::CHADDR.len()
            }
            n => n,
        };
        let range = field::CHADDR.start..field::CHADDR.start + hlen;
        r.field("DHCP.chaddr", mac(&b[..hlen]), range);
    }
    for (path, range) in [("DHCP.sname", field::SNAME), ("DHCP.file", field::FILE)] {
        if let Some(b) = whole(&range) {
            let text = b.split(|&c| c == 0).next().unwrap_or_default();
            r.field(path, crate::wire::printable(text, 128), range);
        }
    }
    if let Some(b) = whole(&field::MAGIC_COOKIE) {
        r.field("DHCP.magic_cookie", format!("0x{}", hex(b)), field::MAGIC_COOKIE);
    }
}

/// An option's value as a field shows it; `None` for options shown as hex.
fn option_value(opt: &DhcpOption) -> Option<serde_json::Value> {
    Some(match opt {
        DhcpOption::MessageType(t) => type_name(*t).into(),
        DhcpOption::SubnetMask(a)
        | DhcpOption::RequestedIpAddress(a)
        | DhcpOption::ServerIdentifier(a)
        | DhcpOption::BroadcastAddr(a) => a.to_string().into(),
        DhcpOption::Router(list) | DhcpOption::DomainNameServer(list) => {
            list.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ").into()
        }
        DhcpOption::AddressLeaseTime(s) | DhcpOption::Renewal(s) | DhcpOption::Rebinding(s) => (*s).into(),
        DhcpOption::MaxMessageSize(n) => (*n).into(),
        DhcpOption::ParameterRequestList(codes) => codes
            .iter()
            .map(|&c| {
                let code = u8::from(c);
                option_name(code).map(str::to_string).unwrap_or_else(|| code.to_string())
            })
            .collect::<Vec<_>>()
            .join(", ")
            .into(),
        DhcpOption::Hostname(s) | DhcpOption::DomainName(s) | DhcpOption::Message(s) => {
            crate::wire::printable(s.as_bytes(), 128).into()
        }
        DhcpOption::ClientIdentifier(id) => mac(id).into(),
        DhcpOption::ClassIdentifier(id) => crate::wire::printable(id, 128).into(),
        _ => return None,
    })
}

/// What the lease times mean: T1 and T2 as shares of the lease (RFC 2131 §4.4.5).
fn lease_notes(msg: &v4::Message, r: &mut Reading) {
    let Some(lease) = lease_time(msg) else { return };
    if lease == u32::MAX {
        r.notes.push(en("lease_time 0xffffffff: an infinite lease", &[]));
        return;
    }
    let share = |t: u32| if lease == 0 { 0.0 } else { f64::from(t) * 100.0 / f64::from(lease) };
    if let Some(DhcpOption::Renewal(t1)) = msg.opts().get(OptionCode::Renewal) {
        r.notes.push(en(
            "T1 {t1} s = {share} % of the lease: the client renews with this server",
            &[("t1", t1), ("share", &format!("{:.1}", share(*t1)))],
        ));
    }
    if let Some(DhcpOption::Rebinding(t2)) = msg.opts().get(OptionCode::Rebinding) {
        r.notes.push(en(
            "T2 {t2} s = {share} % of the lease: the client asks any server",
            &[("t2", t2), ("share", &format!("{:.1}", share(*t2)))],
        ));
    }
}

/// The lease time in seconds (option 51), if the message has one.
fn lease_time(msg: &v4::Message) -> Option<u32> {
    match msg.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(s)) => Some(*s),
        _ => None,
    }
}

/// An address option's value, if the message has it.
fn addr_option(msg: &v4::Message, code: OptionCode) -> Option<Ipv4Addr> {
    match msg.opts().get(code) {
        Some(DhcpOption::RequestedIpAddress(a) | DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    }
}

/// One line, as a person would say it.
fn summary(msg: &v4::Message, t: MessageType) -> String {
    let xid = Xid(msg.xid());
    let requested = addr_option(msg, OptionCode::RequestedIpAddress);
    let server = addr_option(msg, OptionCode::ServerIdentifier);
    let lease = lease_time(msg).map(|s| format!(" lease {s} s")).unwrap_or_default();
    let name = type_name(t);
    match t {
        MessageType::Discover => {
            let wants = requested.map(|a| format!(" asking for {a}")).unwrap_or_default();
            format!("{name} xid={xid} from {}{wants}", mac(chaddr(msg)))
        }
        MessageType::Offer => format!("{name} {}{lease} xid={xid}", msg.yiaddr()),
        MessageType::Request => match (requested, server) {
            (Some(a), Some(s)) => format!("{name} {a} from server {s} xid={xid}"),
            (Some(a), None) => format!("{name} {a} again after a reboot xid={xid}"),
            _ => format!("{name} {} renew xid={xid}", msg.ciaddr()),
        },
        MessageType::Ack if msg.yiaddr().is_unspecified() => {
            format!("{name} settings for {}, no lease xid={xid}", msg.ciaddr())
        }
        MessageType::Ack => format!("{name} {}{lease} xid={xid}", msg.yiaddr()),
        MessageType::Nak => match msg.opts().get(OptionCode::Message) {
            Some(DhcpOption::Message(text)) => {
                format!("{name} xid={xid}: {}", crate::wire::printable(text.as_bytes(), 60))
            }
            _ => format!("{name} xid={xid}"),
        },
        MessageType::Release => format!("{name} {} xid={xid}", msg.ciaddr()),
        MessageType::Decline => {
            format!("{name} {} xid={xid}", requested.map(|a| a.to_string()).unwrap_or_else(|| "?".into()))
        }
        MessageType::Inform => format!("{name} from {} xid={xid}", msg.ciaddr()),
        _ => format!("{name} xid={xid}"),
    }
}

/// The fields, notes and problems read so far; ranges are shifted by `offset` as they are added.
struct Reading {
    offset: usize,
    fields: Vec<crate::session::Field>,
    notes: Vec<String>,
    problems: Vec<String>,
}

impl Reading {
    fn field(&mut self, path: impl Into<String>, value: impl Into<serde_json::Value>, range: Range<usize>) {
        let range = range.start + self.offset..range.end + self.offset;
        self.fields.push(crate::session::Field::new(path, value, range));
    }

    fn finish(self, kind: &str, summary: String) -> Message {
        let mut msg = Message::new(Layer::Application, "DHCP", kind, summary);
        msg.fields = self.fields;
        msg.notes = self.notes;
        if !self.problems.is_empty() {
            msg = msg.malformed(self.problems.join("; "));
        }
        msg
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The client hardware address, `hlen` bytes of `chaddr`; empty when `hlen` claims more than the
/// 16 bytes there are (dhcproto's own `chaddr()` panics on such a message).
pub fn chaddr(msg: &v4::Message) -> &[u8] {
    if usize::from(msg.hlen()) <= field::CHADDR.len() { msg.chaddr() } else { &[] }
}

/// `02:00:00:00:00:01`.
pub fn mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::dhcp::lease::Instant;
    use crate::labs::dhcp::server::Server;
    use crate::session::Field;
    use dhcproto::v4::{Flags, UnknownOption};

    /// Where the DHCP payload sits in a frame: Ethernet 14 + IPv4 20 + UDP 8.
    const AT: usize = 42;
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, last)
    }

    /// dhcproto's encoding as is: no padding, so the message ends with the End option.
    fn raw(msg: &v4::Message) -> Vec<u8> {
        msg.to_vec().unwrap()
    }

    fn discover() -> v4::Message {
        let zero = Ipv4Addr::UNSPECIFIED;
        let mut m = v4::Message::new_with_id(0x3903_f326, zero, zero, zero, zero, &MAC);
        m.set_flags(Flags::default().set_broadcast()).set_secs(3);
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
        m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::Unknown(252),
        ]));
        m.opts_mut().insert(DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 1]));
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip(77)));
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(224), vec![0xde, 0xad])));
        m
    }

    /// The server's OFFER to [`discover`].
    fn offer() -> v4::Message {
        Server::default().handle(&discover(), Instant::ZERO).unwrap().message
    }

    fn value<'a>(msg: &'a Message, path: &str) -> &'a serde_json::Value {
        &msg.fields.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no {path} in {:?}", msg.fields)).value
    }

    /// What the bytes of a field's range say, in the field's own terms.
    fn reread(f: &Field, b: &[u8]) -> serde_json::Value {
        let ip4 = |b: &[u8]| Ipv4Addr::from(be32(b)).to_string();
        let ips = |b: &[u8]| b.chunks(4).map(ip4).collect::<Vec<_>>().join(", ");
        let path = f.path.as_str();
        match path {
            "DHCP.op" => match b[0] {
                1 => "BOOTREQUEST".into(),
                2 => "BOOTREPLY".into(),
                n => n.to_string().into(),
            },
            "DHCP.htype" | "DHCP.hlen" | "DHCP.hops" => b[0].into(),
            "DHCP.xid" => format!("0x{:08x}", be32(b)).into(),
            "DHCP.secs" => u16::from_be_bytes([b[0], b[1]]).into(),
            "DHCP.flags" => (if b[0] & 0x80 != 0 { "broadcast" } else { "" }).into(),
            "DHCP.ciaddr" | "DHCP.yiaddr" | "DHCP.siaddr" | "DHCP.giaddr" => ip4(b).into(),
            "DHCP.chaddr" => mac(b).into(),
            "DHCP.sname" | "DHCP.file" => crate::wire::printable(b.split(|&c| c == 0).next().unwrap(), 128).into(),
            "DHCP.magic_cookie" => format!("0x{}", hex(b)).into(),
            "DHCP.end" => b[0].into(),
            _ => {
                // An option: code, length, value.
                assert_eq!(usize::from(b[1]), b.len() - 2, "{path}: length byte");
                let (code, v) = (b[0], &b[2..]);
                assert_eq!(
                    path.strip_prefix("DHCP.").unwrap(),
                    option_name(code).map_or(format!("option.{code}"), String::from)
                );
                match code {
                    53 => type_name(MessageType::from(v[0])).into(),
                    1 | 50 | 54 => ip4(v).into(),
                    3 | 6 => ips(v).into(),
                    51 | 58 | 59 => be32(v).into(),
                    55 => v
                        .iter()
                        .map(|&c| option_name(c).map_or(c.to_string(), String::from))
                        .collect::<Vec<_>>()
                        .join(", ")
                        .into(),
                    61 => mac(v).into(),
                    _ => hex(v).into(),
                }
            }
        }
    }

    /// Every field's range lies inside the message and its bytes say the field's value.
    fn check_ranges(msg: &Message, bytes: &[u8], offset: usize) {
        for f in &msg.fields {
            let [start, end] = f.range;
            assert!(start >= offset && end <= offset + bytes.len() && start < end, "{}: {:?}", f.path, f.range);
            assert_eq!(reread(f, &bytes[start - offset..end - offset]), f.value, "{}", f.path);
        }
    }

    #[test]
    fn discover_fields_and_ranges() {
        let bytes = raw(&discover());
        let msg = describe(&bytes, AT);
        assert_eq!(msg.malformed, None);
        assert_eq!((msg.layer, msg.proto, msg.kind.as_str()), (Layer::Application, "DHCP", "dhcp.discover"));
        assert_eq!(msg.summary, "DISCOVER xid=0x3903f326 from 02:00:00:00:00:01 asking for 192.0.2.77");
        check_ranges(&msg, &bytes, AT);
        let paths: Vec<&str> = msg.fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "DHCP.op",
                "DHCP.htype",
                "DHCP.hlen",
                "DHCP.hops",
                "DHCP.xid",
                "DHCP.secs",
                "DHCP.flags",
                "DHCP.ciaddr",
                "DHCP.yiaddr",
                "DHCP.siaddr",
                "DHCP.giaddr",
                "DHCP.chaddr",
                "DHCP.sname",
                "DHCP.file",
                "DHCP.magic_cookie",
                "DHCP.requested_ip",
                "DHCP.message_type",
                "DHCP.parameter_request_list",
                "DHCP.client_id",
                "DHCP.option.224",
                "DHCP.end",
            ]
        );
        assert_eq!(value(&msg, "DHCP.xid"), "0x3903f326");
        assert_eq!(msg.fields[4].range, [AT + 4, AT + 8]);
        assert_eq!(value(&msg, "DHCP.message_type"), "DISCOVER");
        assert_eq!(value(&msg, "DHCP.op"), "BOOTREQUEST");
        assert_eq!(value(&msg, "DHCP.flags"), "broadcast");
        assert_eq!(value(&msg, "DHCP.secs"), 3);
        assert_eq!(value(&msg, "DHCP.ciaddr"), "0.0.0.0");
        assert_eq!(value(&msg, "DHCP.chaddr"), "02:00:00:00:00:01");
        assert_eq!(value(&msg, "DHCP.magic_cookie"), "0x63825363");
        assert_eq!(value(&msg, "DHCP.parameter_request_list"), "subnet_mask, router, dns_servers, 252");
        assert_eq!(value(&msg, "DHCP.client_id"), "01:02:00:00:00:00:01");
        assert_eq!(value(&msg, "DHCP.option.224"), "dead");
    }

    #[test]
    fn offer_fields_and_ranges() {
        let bytes = encode(&offer());
        let msg = describe(&bytes, AT);
        assert_eq!(msg.malformed, None);
        assert_eq!(
            (msg.kind.as_str(), msg.summary.as_str()),
            ("dhcp.offer", "OFFER 192.0.2.10 lease 120 s xid=0x3903f326")
        );
        check_ranges(&msg, &bytes, AT);
        for (path, want) in [
            ("DHCP.op", serde_json::json!("BOOTREPLY")),
            ("DHCP.yiaddr", "192.0.2.10".into()),
            ("DHCP.subnet_mask", "255.255.255.0".into()),
            ("DHCP.router", "192.0.2.2".into()),
            ("DHCP.dns_servers", "192.0.2.2".into()),
            ("DHCP.lease_time", 120.into()),
            ("DHCP.server_id", "192.0.2.2".into()),
            ("DHCP.renewal_time", 60.into()),
            ("DHCP.rebinding_time", 105.into()),
        ] {
            assert_eq!(value(&msg, path), &want, "{path}");
        }
        assert!(msg.notes.iter().any(|n| n.starts_with("T1 60 s = 50.0 % of the lease")), "{:?}", msg.notes);
        assert!(msg.notes.iter().any(|n| n.starts_with("T2 105 s = 87.5 % of the lease")), "{:?}", msg.notes);
        assert!(msg.notes.iter().any(|n| n.ends_with("bytes of padding after the End option")), "{:?}", msg.notes);
    }

    #[test]
    fn every_message_type_has_its_kind() {
        for (t, kind) in [
            (MessageType::Discover, "dhcp.discover"),
            (MessageType::Offer, "dhcp.offer"),
            (MessageType::Request, "dhcp.request"),
            (MessageType::Ack, "dhcp.ack"),
            (MessageType::Nak, "dhcp.nak"),
            (MessageType::Release, "dhcp.release"),
            (MessageType::Inform, "dhcp.inform"),
            (MessageType::Decline, "dhcp.decline"),
        ] {
            let mut m = discover();
            m.opts_mut().insert(DhcpOption::MessageType(t));
            let msg = describe(&encode(&m), 0);
            assert_eq!(
                (msg.kind.split('.').take(2).collect::<Vec<_>>().join("."), msg.malformed.as_deref()),
                (kind.to_string(), None)
            );
            assert_eq!(value(&msg, "DHCP.message_type"), &serde_json::json!(type_name(t)));
        }
    }

    #[test]
    fn nak_and_inform_ack_summaries() {
        let mut m = offer();
        m.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Nak));
        m.opts_mut().insert(DhcpOption::Message("192.0.2.200 is not in this server's pool".into()));
        let msg = describe(&encode(&m), 0);
        assert_eq!(msg.summary, "NAK xid=0x3903f326: 192.0.2.200 is not in this server's pool");
        assert_eq!(value(&msg, "DHCP.message"), "192.0.2.200 is not in this server's pool");
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Ack));
        m.opts_mut().remove(OptionCode::AddressLeaseTime);
        m.set_ciaddr(ip(77));
        assert_eq!(describe(&encode(&m), 0).summary, "ACK settings for 192.0.2.77, no lease xid=0x3903f326");
    }

    #[test]
    fn every_truncation_is_malformed_and_never_panics() {
        for bytes in [raw(&discover()), raw(&offer())] {
            assert_eq!(describe(&bytes, 0).malformed, None);
            for len in 0..bytes.len() {
                let msg = describe(&bytes[..len], AT);
                assert!(msg.malformed.is_some(), "{len} bytes: {msg:?}");
                assert_eq!(msg.proto, "DHCP");
                check_ranges(&msg, &bytes[..len], AT);
                assert!(parse(&bytes[..len]).is_err(), "{len} bytes parsed");
            }
        }
        assert_eq!(
            describe(&[], 0).malformed.as_deref(),
            Some("cut short: 0 of the 240 bytes of the header and magic cookie")
        );
        let cut = raw(&discover());
        let msg = describe(&cut[..cut.len() - 1], 0);
        assert_eq!(msg.malformed.as_deref(), Some("the options end without the End option (255)"));
        let msg = describe(&cut[..field::OPTIONS + 2], 0);
        assert!(msg.malformed.unwrap().starts_with("option 50 (requested_ip) cut short"));
    }

    #[test]
    fn not_dhcp_is_malformed() {
        let good = raw(&discover());
        let mut bad = good.clone();
        bad[field::MAGIC_COOKIE.start] = 0;
        let msg = describe(&bad, 0);
        assert_eq!(msg.kind, "dhcp.malformed");
        assert!(msg.malformed.unwrap().contains("magic cookie"));
        assert!(parse(&bad).is_err());

        let mut bad = good.clone();
        bad[0] = 7;
        assert!(describe(&bad, 0).malformed.unwrap().contains("op 7"));

        let mut bootp = discover();
        bootp.opts_mut().remove(OptionCode::MessageType);
        let msg = describe(&raw(&bootp), 0);
        assert!(msg.malformed.unwrap().contains("BOOTP"));
        assert!(parse(&raw(&bootp)).is_err());

        // hlen past the 16 bytes of chaddr: dhcproto's chaddr() would panic on this one.
        let mut bad = good.clone();
        bad[field::HLEN.start] = 40;
        assert!(describe(&bad, 0).malformed.unwrap().contains("hlen 40"));
        assert!(parse(&bad).is_err());

        // A subnet mask three bytes long: dhcproto stops reading options there, silently.
        let mut bad = good[..field::OPTIONS].to_vec();
        bad.extend([1, 3, 255, 255, 255, 53, 1, 1, 255]);
        let msg = describe(&bad, 0);
        assert_eq!(msg.malformed.as_deref(), Some("option 1 (subnet_mask) does not decode (length 3)"));
        assert_eq!(value(&msg, "DHCP.message_type"), "DISCOVER");
    }

    /// Found by the fuzzer: a server's message with option 154 (a bulk leasequery time) two
    /// bytes long. dhcproto asserts that such an option is 4 bytes, so a debug build panicked on
    /// it; a release build read past the option. The options as they came, after a valid header.
    #[test]
    fn an_option_dhcproto_takes_the_length_of_for_granted_is_malformed() {
        const CRASH: [u8; 31] = [
            0x01, 0x04, 0xff, 0xf7, 0xff, 0x00, 0x03, 0x04, 0xc0, 0x00, 0x02, 0x02, 0x06, 0x04, 0xc0, 0x00, 0x02, 0xe4,
            0x9a, 0x02, 0x35, 0x01, 0x05, 0x36, 0x04, 0xc0, 0x00, 0x02, 0x02, 0xff, 0x00,
        ];
        let header = &raw(&offer())[..field::OPTIONS];
        let bad = [header, &CRASH].concat();
        let msg = describe(&bad, AT);
        assert!(msg.malformed.as_deref().unwrap().contains("option 154 with length 2, not a length its kind has"));
        check_ranges(&msg, &bad, AT);
        assert_eq!(parse(&bad), Err("option 154 with length 2, not a length its kind has".into()));
        // Every such code, with a length it cannot have, alone and after a message type.
        for (code, len) in [(80, 1), (81, 2), (94, 2), (94, 4), (151, 0), (152, 3), (153, 5), (154, 0), (155, 2)] {
            let mut bad = header.to_vec();
            bad.extend([53, 1, 1, code, len]);
            bad.extend(vec![0; usize::from(len)]);
            bad.push(255);
            let reason = format!("with length {len}, not a length its kind has");
            assert!(describe(&bad, 0).malformed.unwrap().contains(&reason), "{code}");
            assert!(parse(&bad).unwrap_err().contains(&reason), "{code}");
        }
        // Repeated in a row, the pieces are one value (RFC 3396): 2 + 2 bytes make a time.
        let mut joined = header.to_vec();
        joined.extend([53, 1, 1, 154, 2, 0, 0, 154, 2, 0, 7, 255]);
        assert_eq!(describe(&joined, 0).malformed, None);
    }

    /// Found by the fuzzer: a subnet mask followed by a piece of one more byte (option 1 twice in
    /// a row). dhcproto joins the two (RFC 3396), cannot read a 5-byte mask and stops reading
    /// options there, so the server and client saw no message type, while the step called the
    /// message a well-formed ACK. The options as they came, cut after the second piece.
    #[test]
    fn pieces_in_a_row_that_do_not_decode_joined_are_malformed() {
        const CRASH: [u8; 9] = [0x01, 0x04, 0xff, 0xff, 0xff, 0x01, 0x01, 0x01, 0x01];
        let header = &raw(&offer())[..field::OPTIONS];
        let bad = [header, &CRASH, &[53, 1, 5, 54, 4, 192, 0, 2, 2, 255]].concat();
        let msg = describe(&bad, AT);
        assert_eq!(
            msg.malformed.as_deref(),
            Some("option 1 (subnet_mask) comes in 2 pieces in a row: joined (RFC 3396), its 5 bytes do not decode")
        );
        assert_eq!(value(&msg, "DHCP.message_type"), "ACK");
        assert!(msg.fields.iter().all(|f| f.range[0] >= AT && f.range[1] <= AT + bad.len()));
        assert!(parse(&bad).is_err());
        // Pieces that make a value joined are fine: a 2-byte and a 2-byte piece of a mask.
        let good = [header, &[1, 2, 255, 255, 1, 2, 255, 0, 53, 1, 5, 54, 4, 192, 0, 2, 2, 255]].concat();
        assert_eq!(describe(&good, 0).malformed, None);
        assert!(parse(&good).is_ok());
    }

    /// Found by the fuzzer: a second subnet mask, one byte long, later in the options. dhcproto
    /// joins only pieces in a row; it could not read this one and stopped there, so the server and
    /// client saw no message type, while the step let it pass as a repeated option.
    #[test]
    fn a_repeated_option_that_does_not_decode_is_malformed_where_it_stands() {
        let header = &raw(&offer())[..field::OPTIONS];
        let bad = [header, &[1, 4, 255, 255, 255, 0, 51, 4, 0, 0, 0, 0x35, 1, 1, 0x78, 53, 1, 5, 255]].concat();
        let msg = describe(&bad, 0);
        assert_eq!(msg.malformed.as_deref(), Some("option 1 (subnet_mask) does not decode (length 1)"));
        assert_eq!(value(&msg, "DHCP.message_type"), "ACK");
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let mut server = Server::default();
        for bytes in [encode(&discover()), encode(&offer())] {
            for i in 0..bytes.len() {
                for x in [0x01, 0x80, 0xff] {
                    let mut bad = bytes.clone();
                    bad[i] ^= x;
                    let msg = describe(&bad, AT);
                    for f in &msg.fields {
                        assert!(f.range[0] >= AT && f.range[1] <= AT + bad.len(), "{}", f.path);
                    }
                    if let Ok(m) = parse(&bad) {
                        server.handle(&m, Instant::ZERO);
                    }
                }
            }
        }
    }

    #[test]
    fn encode_pads_and_parse_takes_back() {
        let m = discover();
        let bytes = encode(&m);
        assert_eq!(bytes.len(), MIN_LEN);
        assert_eq!(parse(&bytes).unwrap(), m);
        assert_eq!(Xid(0x3903_f326).to_string(), "0x3903f326");
        assert_eq!(Xid(7).to_string(), "0x00000007");
    }
}
