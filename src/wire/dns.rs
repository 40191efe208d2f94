//! DNS messages (RFC 1035), sans-IO: [`describe`] reads one into fields with byte ranges (a
//! compressed name shows the name its pointer stands for), [`parse`] into records for the lab's
//! servers and resolver, and [`Builder`] writes one, compressing names as real servers do.
//!
//! Every read is bounded by the message: a pointer must point back (so no loop), a name is at
//! most 255 octets, a label at most 63, and every count is checked against what the message
//! holds before anything is kept for it.

use super::Message;
use crate::locale::{en, term};
use crate::session::{Field, Layer};
use std::net::Ipv4Addr;
use std::ops::Range;

/// The header: id, flags, four counts.
pub const HEADER_LEN: usize = 12;
/// The largest message over UDP without EDNS (RFC 1035 §4.2.1): a longer answer is cut and
/// says so with TC=1.
pub const UDP_LIMIT: usize = 512;
/// The longest name, in octets on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// The longest label.
const MAX_LABEL: usize = 63;

/// Record types the lab knows by name.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
}

/// Response codes (RFC 1035 §4.1.1).
pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
}

/// A record type's mnemonic (`MX`), or `TYPE99` as RFC 3597 writes unknown ones.
pub fn type_name(t: u16) -> String {
    let name = match t {
        rtype::A => "A",
        rtype::NS => "NS",
        rtype::CNAME => "CNAME",
        rtype::SOA => "SOA",
        rtype::PTR => "PTR",
        rtype::MX => "MX",
        rtype::TXT => "TXT",
        rtype::AAAA => "AAAA",
        rtype::OPT => "OPT",
        255 => "ANY",
        _ => return format!("TYPE{t}"),
    };
    name.into()
}

/// A response code's name (`NXDOMAIN`).
pub fn rcode_name(code: u8) -> String {
    let name = match code {
        rcode::NOERROR => "NOERROR",
        rcode::FORMERR => "FORMERR",
        rcode::SERVFAIL => "SERVFAIL",
        rcode::NXDOMAIN => "NXDOMAIN",
        rcode::NOTIMP => "NOTIMP",
        rcode::REFUSED => "REFUSED",
        _ => return format!("RCODE{code}"),
    };
    name.into()
}

fn class_name(class: u16) -> String {
    match class {
        1 => "IN".into(),
        3 => "CH".into(),
        255 => "ANY".into(),
        _ => format!("CLASS{class}"),
    }
}

/// What a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    A(Ipv4Addr),
    /// NS, CNAME, PTR: a name.
    Name(String),
    Mx(u16, String),
    /// TXT: its character strings.
    Txt(Vec<Vec<u8>>),
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Other(Vec<u8>),
}

impl Rdata {
    /// As a zone file writes it.
    pub fn text(&self) -> String {
        match self {
            Rdata::A(ip) => ip.to_string(),
            Rdata::Name(name) => name.clone(),
            Rdata::Mx(pref, name) => format!("{pref} {name}"),
            Rdata::Txt(strings) => strings
                .iter()
                .map(|s| format!("\"{}\"", String::from_utf8_lossy(s).escape_debug()))
                .collect::<Vec<_>>()
                .join(" "),
            Rdata::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
                format!("{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}")
            }
            Rdata::Other(bytes) => format!("\\# {} {}", bytes.len(), crate::session::hex(bytes)),
        }
    }
}

/// A resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: Rdata,
}

/// A question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dns {
    pub id: u16,
    /// The 16 flag bits as sent: QR, OPCODE, AA, TC, RD, RA, Z, RCODE.
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Dns {
    pub fn qr(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
    pub fn aa(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    pub fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    pub fn ra(&self) -> bool {
        self.flags & 0x0080 != 0
    }
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
}

/// Why a message does not parse, and how far it got (the header's id, if it was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub reason: String,
    pub id: Option<u16>,
    /// The header's flags, if read.
    pub flags: Option<u16>,
}

/// Reads a message into records.
pub fn parse(msg: &[u8]) -> Result<Dns, Malformed> {
    let mut walk = Walk { msg, base: 0, fields: None };
    walk.message()
}

/// The first compression pointer a name follows: where it is, and the byte it points to.
type Pointer = Option<(usize, usize)>;

/// The sections, by the names the field paths use.
const SECTIONS: [&str; 3] = ["answer", "authority", "additional"];

/// Reading a message: where it starts in the step's bytes, and the fields so far (none when
/// only the records are wanted).
struct Walk<'a> {
    msg: &'a [u8],
    base: usize,
    fields: Option<Vec<Field>>,
}

impl Walk<'_> {
    fn field(&mut self, path: impl Into<String>, value: impl Into<serde_json::Value>, range: Range<usize>) {
        if let Some(fields) = &mut self.fields {
            fields.push(Field::new(path, value, self.base + range.start..self.base + range.end));
        }
    }

    fn cut(&self, what: &str, at: usize, need: usize) -> String {
        en(
            "message cut short in {what}: it ends at byte {len}, {need} more needed from byte {at}",
            &[("what", &what), ("len", &self.msg.len()), ("need", &need), ("at", &at)],
        )
    }

    fn bytes(&self, at: usize, n: usize, what: &str) -> Result<&[u8], String> {
        self.msg.get(at..at + n).ok_or_else(|| self.cut(what, at, n))
    }

    fn u16(&self, at: usize, what: &str) -> Result<u16, String> {
        let b = self.bytes(at, 2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&self, at: usize, what: &str) -> Result<u32, String> {
        let b = self.bytes(at, 4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A name at `at`, following compression pointers: the name (`mail.b.lab.`), where it ends
    /// in place, and the first pointer followed (its position and target) if any.
    fn name(&self, at: usize) -> Result<(String, usize, Pointer), String> {
        let mut name = String::new();
        let mut pos = at;
        let mut end = None;
        let mut pointer = None;
        let mut octets = 0;
        // Where the labels being read began: a pointer must point before it.
        let mut floor = at;
        loop {
            let len = *self.msg.get(pos).ok_or_else(|| self.cut(term("a name"), pos, 1))?;
            match len >> 6 {
                0b11 => {
                    let target = usize::from(self.u16(pos, term("a name's pointer"))? & 0x3fff);
                    // Only back to before the labels read since the last jump: every jump goes
                    // further back than the one before, so no chain of pointers can loop.
                    if target >= floor {
                        return Err(en(
                            "compression pointer at byte {at} points to byte {target}, not back: a loop",
                            &[("at", &pos), ("target", &target)],
                        ));
                    }
                    end.get_or_insert(pos + 2);
                    pointer.get_or_insert((pos, target));
                    pos = target;
                    floor = target;
                }
                0b00 if len == 0 => break,
                0b00 => {
                    let len = usize::from(len);
                    let label = self.bytes(pos + 1, len, term("a label"))?;
                    octets += len + 1;
                    if octets + 1 > MAX_NAME {
                        return Err(en("name longer than 255 octets, at byte {at}", &[("at", &at)]));
                    }
                    for &b in label {
                        match b {
                            b'.' | b'\\' => name.push_str(&format!("\\{}", b as char)),
                            0x21..=0x7e => name.push(b as char),
                            _ => name.push_str(&format!("\\{b:03}")),
                        }
                    }
                    name.push('.');
                    pos += len + 1;
                }
                _ => {
                    return Err(en(
                        "label length {len} at byte {at}: a label is at most 63 octets (the top bits 01 and 10 are reserved)",
                        &[("len", &len), ("at", &pos)],
                    ));
                }
            }
        }
        if name.is_empty() {
            name.push('.');
        }
        Ok((name, end.unwrap_or(pos + 1), pointer))
    }

    /// A name as a field (and its pointer as one more, naming what it points to).
    fn name_field(&mut self, path: &str, at: usize) -> Result<(String, usize), String> {
        let (name, end, pointer) = self.name(at)?;
        self.field(path, name.clone(), at..end);
        if let Some((p, target)) = pointer {
            let (suffix, _, _) = self.name(target)?;
            self.field(format!("{path}.pointer"), format!("→ byte {target}: {suffix}"), p..p + 2);
        }
        Ok((name, end))
    }

    fn message(&mut self) -> Result<Dns, Malformed> {
        let mut dns = Dns::default();
        let fail = |dns: &Dns, read: bool, reason: String| Malformed {
            reason,
            id: read.then_some(dns.id),
            flags: read.then_some(dns.flags),
        };
        if self.msg.len() < HEADER_LEN {
            let reason = self.cut(term("the header"), 0, HEADER_LEN);
            return Err(fail(&dns, false, reason));
        }
        self.header(&mut dns);
        let counts: Vec<u16> = (0..4).map(|i| self.u16(4 + 2 * i, term("counts")).unwrap_or(0)).collect();
        let mut at = HEADER_LEN;
        for i in 0..usize::from(counts[0]) {
            at = self.question(&mut dns, i, at, counts[0]).map_err(|r| fail(&dns, true, r))?;
        }
        for (s, section) in SECTIONS.iter().enumerate() {
            for i in 0..usize::from(counts[s + 1]) {
                let (record, end) = self.record(section, i, at, counts[s + 1]).map_err(|r| fail(&dns, true, r))?;
                at = end;
                match s {
                    0 => dns.answers.push(record),
                    1 => dns.authority.push(record),
                    _ => dns.additional.push(record),
                }
            }
        }
        if at < self.msg.len() {
            let reason = en("{n} bytes after the last record the counts announce", &[("n", &(self.msg.len() - at))]);
            return Err(fail(&dns, true, reason));
        }
        Ok(dns)
    }

    fn header(&mut self, dns: &mut Dns) {
        dns.id = u16::from_be_bytes([self.msg[0], self.msg[1]]);
        dns.flags = u16::from_be_bytes([self.msg[2], self.msg[3]]);
        self.field("DNS.id", dns.id, 0..2);
        let flags = 2..4;
        self.field("DNS.qr", dns.qr(), flags.clone());
        let opcode = match dns.opcode() {
            0 => "QUERY".to_string(),
            1 => "IQUERY".into(),
            2 => "STATUS".into(),
            4 => "NOTIFY".into(),
            5 => "UPDATE".into(),
            n => n.to_string(),
        };
        self.field("DNS.opcode", opcode, flags.clone());
        self.field("DNS.aa", dns.aa(), flags.clone());
        self.field("DNS.tc", dns.tc(), flags.clone());
        self.field("DNS.rd", dns.rd(), flags.clone());
        self.field("DNS.ra", dns.ra(), flags.clone());
        self.field("DNS.rcode", rcode_name(dns.rcode()), flags);
        for (i, count) in ["qdcount", "ancount", "nscount", "arcount"].iter().enumerate() {
            let at = 4 + 2 * i;
            let n = u16::from_be_bytes([self.msg[at], self.msg[at + 1]]);
            self.field(format!("DNS.{count}"), n, at..at + 2);
        }
    }

    /// How a section's entry is named in field paths: the contract's `DNS.question.name` for
    /// the first (usually only) question, `DNS.question.1.name` for more.
    fn question(&mut self, dns: &mut Dns, i: usize, at: usize, count: u16) -> Result<usize, String> {
        let path = if i == 0 { "DNS.question".to_string() } else { format!("DNS.question.{i}") };
        // Past the first question, the count is what went wrong.
        let announced = |reason: String| {
            if i == 0 {
                return reason;
            }
            en(
                "QDCOUNT says {count} questions; question {n}: {reason}",
                &[("count", &count), ("n", &(i + 1)), ("reason", &reason)],
            )
        };
        if at >= self.msg.len() {
            return Err(announced(self.cut(term("the questions"), at, 5)));
        }
        let (name, end) = self.name_field(&format!("{path}.name"), at).map_err(announced)?;
        let qtype = self.u16(end, term("a question's type")).map_err(announced)?;
        let qclass = self.u16(end + 2, term("a question's class")).map_err(announced)?;
        self.field(format!("{path}.type"), type_name(qtype), end..end + 2);
        self.field(format!("{path}.class"), class_name(qclass), end + 2..end + 4);
        dns.questions.push(Question { name, qtype, qclass });
        Ok(end + 4)
    }

    fn record(&mut self, section: &str, i: usize, at: usize, count: u16) -> Result<(Record, usize), String> {
        let path = format!("DNS.{section}.{i}");
        let announced = |reason: String| {
            en(
                "the header announces {count} {section} records; record {n}: {reason}",
                &[("count", &count), ("section", &section), ("n", &(i + 1)), ("reason", &reason)],
            )
        };
        if at >= self.msg.len() {
            return Err(announced(self.cut(term("the records"), at, 11)));
        }
        let (name, end) = self.name_field(&format!("{path}.name"), at).map_err(announced)?;
        let rtype = self.u16(end, term("a record's type")).map_err(announced)?;
        let class = self.u16(end + 2, term("a record's class")).map_err(announced)?;
        let ttl = self.u32(end + 4, term("a record's TTL")).map_err(announced)?;
        let rdlength = usize::from(self.u16(end + 8, term("a record's data length")).map_err(announced)?);
        let start = end + 10;
        self.bytes(start, rdlength, term("a record's data")).map_err(announced)?;
        self.field(format!("{path}.type"), type_name(rtype), end..end + 2);
        if rtype == rtype::OPT {
            // EDNS (RFC 6891): the class is the sender's UDP payload size, the TTL flags.
            self.field(format!("{path}.udp_size"), class, end + 2..end + 4);
            self.field(format!("{path}.do"), ttl & 0x8000 != 0, end + 4..end + 8);
        } else {
            self.field(format!("{path}.class"), class_name(class), end + 2..end + 4);
            self.field(format!("{path}.ttl"), ttl, end + 4..end + 8);
        }
        self.field(format!("{path}.rdlength"), rdlength, end + 8..start);
        let data = self.rdata(rtype, start, rdlength).map_err(announced)?;
        self.field(format!("{path}.data"), data.text(), start..start + rdlength);
        if matches!(data, Rdata::Mx(..) | Rdata::Name(_)) {
            // A name inside the data may be compressed too.
            let name_at = if rtype == rtype::MX { start + 2 } else { start };
            if let Ok((_, _, Some((p, target)))) = self.name(name_at) {
                let (suffix, _, _) = self.name(target).map_err(announced)?;
                self.field(format!("{path}.data.pointer"), format!("→ byte {target}: {suffix}"), p..p + 2);
            }
        }
        Ok((Record { name, rtype, class, ttl, data }, start + rdlength))
    }

    /// A record's data, `len` bytes at `at`; names in it must end inside it.
    fn rdata(&self, rtype: u16, at: usize, len: usize) -> Result<Rdata, String> {
        let end = at + len;
        let inside = |name_end: usize| {
            if name_end > end { Err(en("a name in the record's data runs past its data length", &[])) } else { Ok(()) }
        };
        let wrong = || en("{len} bytes of data for a {t} record", &[("len", &len), ("t", &type_name(rtype))]);
        Ok(match rtype {
            rtype::A => {
                let b = self.msg.get(at..end).filter(|b| b.len() == 4).ok_or_else(wrong)?;
                Rdata::A(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            rtype::NS | rtype::CNAME | rtype::PTR => {
                let (name, name_end, _) = self.name(at)?;
                inside(name_end)?;
                Rdata::Name(name)
            }
            rtype::MX => {
                if len < 3 {
                    return Err(wrong());
                }
                let pref = self.u16(at, term("MX preference"))?;
                let (name, name_end, _) = self.name(at + 2)?;
                inside(name_end)?;
                Rdata::Mx(pref, name)
            }
            rtype::TXT => {
                let mut strings = Vec::new();
                let mut pos = at;
                while pos < end {
                    let n = usize::from(self.msg[pos]);
                    let s = self.msg.get(pos + 1..pos + 1 + n).filter(|_| pos + 1 + n <= end).ok_or_else(wrong)?;
                    strings.push(s.to_vec());
                    pos += 1 + n;
                }
                Rdata::Txt(strings)
            }
            rtype::SOA => {
                let (mname, e1, _) = self.name(at)?;
                let (rname, e2, _) = self.name(e1)?;
                inside(e2 + 20)?;
                let n = |i: usize| self.u32(e2 + 4 * i, term("SOA numbers"));
                Rdata::Soa { mname, rname, serial: n(0)?, refresh: n(1)?, retry: n(2)?, expire: n(3)?, minimum: n(4)? }
            }
            _ => Rdata::Other(self.msg[at..end].to_vec()),
        })
    }
}

/// What a message is, for the narration: `dns.query`, `dns.response.referral`, …
pub fn kind(dns: &Dns) -> &'static str {
    if !dns.qr() {
        return "dns.query";
    }
    match dns.rcode() {
        rcode::NXDOMAIN => "dns.response.nxdomain",
        rcode::FORMERR => "dns.response.formerr",
        rcode::NOERROR if dns.tc() => "dns.response.truncated",
        rcode::NOERROR if !dns.answers.is_empty() => "dns.response.answer",
        rcode::NOERROR if dns.authority.iter().any(|r| r.rtype == rtype::NS) => "dns.response.referral",
        rcode::NOERROR => "dns.response.nodata",
        _ => "dns.response",
    }
}

/// One line: `query 4660 mail.b.lab. A`, `response 4660 mail.b.lab. A: 203.0.113.25`.
pub fn summary(dns: &Dns) -> String {
    let question = dns.questions.first().map(|q| format!(" {} {}", q.name, type_name(q.qtype))).unwrap_or_default();
    if !dns.qr() {
        return format!("query {}{question}", dns.id);
    }
    let what = match kind(dns) {
        "dns.response.truncated" => "TC=1, truncated".to_string(),
        "dns.response.answer" => {
            let answers: Vec<String> = dns.answers.iter().map(|r| r.data.text()).collect();
            let aa = if dns.aa() { " (AA)" } else { "" };
            format!("{}{aa}", answers.join(", "))
        }
        "dns.response.referral" => {
            let ns: Vec<String> =
                dns.authority.iter().filter(|r| r.rtype == rtype::NS).map(|r| r.data.text()).collect();
            let zone = dns.authority.first().map(|r| r.name.as_str()).unwrap_or(".");
            format!("referral to {zone} ({})", ns.join(", "))
        }
        _ => rcode_name(dns.rcode()),
    };
    let what =
        if what.chars().count() > 60 { format!("{}…", what.chars().take(59).collect::<String>()) } else { what };
    format!("response {}{question}: {what}", dns.id)
}

/// A DNS message as a step: the fields with ranges (`offset` is where the message starts in
/// the step's bytes), kind and summary; a message that does not parse is malformed, with the
/// fields read before the fault.
pub fn describe(msg: &[u8], offset: usize) -> Message {
    let mut walk = Walk { msg, base: offset, fields: Some(Vec::new()) };
    let parsed = walk.message();
    let fields = walk.fields.take().unwrap_or_default();
    let mut out = match &parsed {
        Ok(dns) => Message::new(Layer::Application, "DNS", kind(dns), summary(dns)),
        Err(bad) => {
            let id = bad.id.map(|id| format!(" {id}")).unwrap_or_default();
            Message::new(Layer::Application, "DNS", "dns.malformed", format!("malformed DNS message{id}"))
                .malformed(bad.reason.clone())
        }
    };
    out.fields = fields;
    out
}

/// DNS over a TCP stream (RFC 7766): each message after two bytes of length. The steps are the
/// messages, with `DNS.tcp_length` first.
pub struct TcpDecoder;

impl super::Decoder for TcpDecoder {
    fn decode(&mut self, buf: &[u8], _keep: usize) -> super::Decoded {
        let Some(head) = buf.get(..2) else { return super::Decoded::Incomplete };
        let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
        let Some(msg) = buf.get(2..2 + len) else { return super::Decoded::Incomplete };
        let mut out = describe(msg, 2);
        out.fields.insert(0, Field::new("DNS.tcp_length", len, 0..2));
        if out.malformed.is_none() {
            out.kind.push_str(".tcp");
        }
        super::Decoded::Message { msg: out, len: 2 + len }
    }
}

/// Writes a message, compressing each name against the names already written (RFC 1035 §4.1.4).
#[derive(Debug, Default)]
pub struct Builder {
    buf: Vec<u8>,
    /// Names written so far (lowercase, with their trailing dot) and where: a pointer target.
    written: Vec<(String, u16)>,
}

impl Builder {
    /// A message with this header; the counts are filled in as sections are written.
    pub fn new(id: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(UDP_LIMIT);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        Builder { buf, written: Vec::new() }
    }

    fn count(&mut self, section: usize) {
        let at = 4 + 2 * section;
        let n = u16::from_be_bytes([self.buf[at], self.buf[at + 1]]) + 1;
        self.buf[at..at + 2].copy_from_slice(&n.to_be_bytes());
    }

    /// A name, as a pointer to where it (or its longest suffix) was written before.
    fn name(&mut self, name: &str) {
        let name = name.trim_end_matches('.');
        let labels: Vec<&str> = if name.is_empty() { Vec::new() } else { name.split('.').collect() };
        for i in 0..labels.len() {
            let suffix = format!("{}.", labels[i..].join(".")).to_ascii_lowercase();
            if let Some(&(_, at)) = self.written.iter().find(|(n, _)| *n == suffix) {
                self.buf.extend_from_slice(&(0xc000 | at).to_be_bytes());
                return;
            }
            if self.buf.len() < 0x3fff {
                self.written.push((suffix, self.buf.len() as u16));
            }
            let label = &labels[i].as_bytes()[..labels[i].len().min(MAX_LABEL)];
            self.buf.push(label.len() as u8);
            self.buf.extend_from_slice(label);
        }
        self.buf.push(0);
    }

    pub fn question(&mut self, q: &Question) -> &mut Self {
        self.name(&q.name);
        self.buf.extend_from_slice(&q.qtype.to_be_bytes());
        self.buf.extend_from_slice(&q.qclass.to_be_bytes());
        self.count(0);
        self
    }

    /// A record in section 1 (answer), 2 (authority) or 3 (additional).
    pub fn record(&mut self, section: usize, r: &Record) -> &mut Self {
        self.name(&r.name);
        self.buf.extend_from_slice(&r.rtype.to_be_bytes());
        self.buf.extend_from_slice(&r.class.to_be_bytes());
        self.buf.extend_from_slice(&r.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match &r.data {
            Rdata::A(ip) => self.buf.extend_from_slice(&ip.octets()),
            Rdata::Name(name) => self.name(name),
            Rdata::Mx(pref, name) => {
                self.buf.extend_from_slice(&pref.to_be_bytes());
                self.name(name);
            }
            Rdata::Txt(strings) => {
                for s in strings {
                    let s = &s[..s.len().min(255)];
                    self.buf.push(s.len() as u8);
                    self.buf.extend_from_slice(s);
                }
            }
            Rdata::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
                self.name(mname);
                self.name(rname);
                for n in [serial, refresh, retry, expire, minimum] {
                    self.buf.extend_from_slice(&n.to_be_bytes());
                }
            }
            Rdata::Other(bytes) => self.buf.extend_from_slice(bytes),
        }
        let len = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        self.count(section);
        self
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

/// A query for `name`/`qtype` with id `id`; `rd`: recursion desired (a stub resolver asks a
/// recursive server so; an iterative resolver asks each server without it).
pub fn query(id: u16, name: &str, qtype: u16, rd: bool) -> Vec<u8> {
    let mut b = Builder::new(id, if rd { 0x0100 } else { 0 });
    b.question(&Question { name: name.into(), qtype, qclass: 1 });
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dig's own query, `dig @127.0.0.1 -p PORT b.lab MX` (BIND 9.18.49), as it crossed the
    /// socket: RD and AD set, an EDNS OPT record (UDP payload 1232) with a client cookie.
    const DIG_QUERY: &str =
        "de16012000010000000000010162036c616200000f000100002904d000000000000c000a00089ccb6f964c26860e";
    /// dnsmasq 2.90's answer to it (`--mx-host=b.lab,mail.b.lab,10
    /// --host-record=mail.b.lab,203.0.113.25`): AA, the MX, mail.b.lab's address in the
    /// additional section, names compressed.
    const DNSMASQ_MX: &str = "de16858000010001000000020162036c616200000f0001c00c000f000100000000000e000a046d61696c0162036c616200c02500010001000000000004cb00711900002904d0000000000000";
    /// dnsmasq's answer to `mail.b.lab MX`, a name it has no MX for: REFUSED, with an EDNS
    /// extended error (option 15) in the OPT record.
    const DNSMASQ_REFUSED: &str =
        "3a4e81850001000000000001046d61696c0162036c616200000f000100002904d0000000000006000f0002000e";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn value(m: &Message, path: &str) -> serde_json::Value {
        m.fields.iter().find(|f| f.path == path).map(|f| f.value.clone()).unwrap_or_default()
    }

    #[test]
    fn a_query_round_trips() {
        let q = query(0x1234, "mail.b.lab.", rtype::A, false);
        let dns = parse(&q).unwrap();
        assert_eq!(dns.id, 0x1234);
        assert!(!dns.qr() && !dns.rd());
        assert_eq!(dns.questions, [Question { name: "mail.b.lab.".into(), qtype: rtype::A, qclass: 1 }]);
        let m = describe(&q, 42);
        assert_eq!(m.kind, "dns.query");
        assert_eq!(m.summary, "query 4660 mail.b.lab. A");
        assert_eq!(value(&m, "DNS.question.type"), "A");
        let name = m.fields.iter().find(|f| f.path == "DNS.question.name").unwrap();
        assert_eq!(name.range, [42 + 12, 42 + 12 + 12]);
    }

    #[test]
    fn names_are_compressed_and_pointers_say_what_they_point_to() {
        let mut b = Builder::new(7, 0x8400);
        b.question(&Question { name: "b.lab.".into(), qtype: rtype::MX, qclass: 1 });
        b.record(
            1,
            &Record {
                name: "b.lab.".into(),
                rtype: rtype::MX,
                class: 1,
                ttl: 300,
                data: Rdata::Mx(10, "mail.b.lab.".into()),
            },
        );
        let bytes = b.finish();
        // The answer's owner is a pointer to the question's name at byte 12.
        let owner = 12 + 7 + 4;
        assert_eq!(&bytes[owner..owner + 2], &[0xc0, 12]);
        let m = describe(&bytes, 0);
        assert_eq!(value(&m, "DNS.answer.0.name"), "b.lab.");
        assert_eq!(value(&m, "DNS.answer.0.name.pointer"), "→ byte 12: b.lab.");
        assert_eq!(value(&m, "DNS.answer.0.data"), "10 mail.b.lab.");
        assert_eq!(value(&m, "DNS.answer.0.data.pointer"), "→ byte 12: b.lab.");
        assert_eq!(m.kind, "dns.response.answer");
        assert_eq!(parse(&bytes).unwrap().answers[0].data, Rdata::Mx(10, "mail.b.lab.".into()));
    }

    #[test]
    fn a_pointer_loop_is_malformed_not_a_hang() {
        // Header, one question whose name is a pointer to itself.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let bad = parse(&m).unwrap_err();
        assert!(bad.reason.contains("not back: a loop"), "{}", bad.reason);
        assert_eq!(bad.id, Some(1));
        // Two pointers pointing at each other: the second jump is forward, refused.
        let mut m = vec![0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        assert!(parse(&m).unwrap_err().reason.contains("a loop"));
    }

    #[test]
    fn a_label_over_63_octets_is_malformed() {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.push(64);
        m.extend_from_slice(&[b'x'; 64]);
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        let d = describe(&m, 0);
        assert_eq!(d.kind, "dns.malformed");
        assert!(d.malformed.unwrap().contains("at most 63 octets"));
    }

    #[test]
    fn a_message_cut_short_or_overcounted_is_malformed_with_the_header_read() {
        let q = query(9, "b.lab.", rtype::TXT, false);
        for n in [0, 5, 11] {
            let bad = parse(&q[..n]).unwrap_err();
            assert_eq!(bad.id, None, "{n} bytes: no header");
        }
        let bad = parse(&q[..q.len() - 1]).unwrap_err();
        assert_eq!(bad.id, Some(9));
        assert!(bad.reason.contains("cut short"), "{}", bad.reason);
        // QDCOUNT 65535 with one question: refused at the second, nothing allocated for the rest.
        let mut many = q.clone();
        many[4..6].copy_from_slice(&[0xff, 0xff]);
        let d = describe(&many, 0);
        assert!(d.malformed.as_deref().unwrap().starts_with("QDCOUNT says 65535 questions; question 2"), "{d:?}");
        assert_eq!(value(&d, "DNS.question.name"), "b.lab.");
        // Bytes after the announced records.
        let mut extra = q.clone();
        extra.push(0);
        assert!(parse(&extra).unwrap_err().reason.contains("1 bytes after"));
    }

    #[test]
    fn the_builder_cuts_nothing_it_should_not() {
        let long = "x".repeat(63);
        let name = format!("{long}.{long}.{long}.lab.");
        let q = query(1, &name, rtype::A, true);
        assert_eq!(parse(&q).unwrap().questions[0].name, name);
    }

    #[test]
    fn real_messages_from_dig_and_dnsmasq_decode() {
        let q = describe(&hex(DIG_QUERY), 0);
        assert_eq!(q.malformed, None);
        assert_eq!(q.kind, "dns.query");
        assert_eq!(value(&q, "DNS.id"), 0xde16);
        assert_eq!(value(&q, "DNS.rd"), true);
        assert_eq!(value(&q, "DNS.question.name"), "b.lab.");
        assert_eq!(value(&q, "DNS.question.type"), "MX");
        assert_eq!(value(&q, "DNS.additional.0.type"), "OPT");
        assert_eq!(value(&q, "DNS.additional.0.udp_size"), 1232);

        let r = describe(&hex(DNSMASQ_MX), 0);
        assert_eq!(r.malformed, None);
        assert_eq!(r.kind, "dns.response.answer");
        assert_eq!(r.summary, "response 56854 b.lab. MX: 10 mail.b.lab. (AA)");
        assert_eq!(
            (value(&r, "DNS.qr"), value(&r, "DNS.aa"), value(&r, "DNS.ra")),
            (true.into(), true.into(), true.into())
        );
        assert_eq!(value(&r, "DNS.answer.0.name.pointer"), "→ byte 12: b.lab.");
        assert_eq!(value(&r, "DNS.additional.0.name"), "mail.b.lab.");
        assert_eq!(value(&r, "DNS.additional.0.name.pointer"), "→ byte 37: mail.b.lab.");
        assert_eq!(value(&r, "DNS.additional.0.data"), "203.0.113.25");
        let dns = parse(&hex(DNSMASQ_MX)).unwrap();
        assert_eq!(dns.answers[0].data, Rdata::Mx(10, "mail.b.lab.".into()));

        let refused = describe(&hex(DNSMASQ_REFUSED), 0);
        assert_eq!(value(&refused, "DNS.rcode"), "REFUSED");
        assert_eq!(refused.kind, "dns.response");
        assert_eq!(refused.malformed, None);
    }
}
