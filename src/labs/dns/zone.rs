//! The lab's zones and an authoritative server's answer to a query, sans-IO (RFC 1034 §4.3.2,
//! RFC 1035): the data, where the zone is cut (a referral with glue), the records asked for
//! (with the mail exchanger's address in the additional section), a name that exists without
//! the type asked (NODATA), a name that does not exist (NXDOMAIN, the SOA for negative
//! caching); a message that does not parse gets FORMERR, an answer too long for UDP comes back
//! empty with TC=1.

use crate::wire::dns::{self, Builder, Dns, Question, Rdata, Record, rcode, rtype};
use std::net::Ipv4Addr;

/// Where the lab's name servers live (one LAN, 192.0.2.0/24).
pub const ROOT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const LAB_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
pub const B_LAB_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 30);
pub const A_LAB_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 40);
/// The domains' mail exchangers, `mail.a.lab` and `mail.b.lab` (the mail lab's servers).
pub const MAIL_A_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 25);
pub const MAIL_B_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 35);

/// The EDNS payload size the lab's servers accept and offer (RFC 6891, the 2020 flag day's
/// 1232).
const EDNS_SIZE: u16 = 1232;

/// One zone: its origin (`b.lab.`) and its records, glue included.
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: &'static str,
    pub records: Vec<Record>,
}

fn rr(name: &str, rtype: u16, ttl: u32, data: Rdata) -> Record {
    Record { name: name.into(), rtype, class: 1, ttl, data }
}

fn a(name: &str, ip: Ipv4Addr) -> Record {
    rr(name, rtype::A, 3600, Rdata::A(ip))
}

fn ns(name: &str, server: &str) -> Record {
    rr(name, rtype::NS, 86400, Rdata::Name(server.into()))
}

pub fn txt(name: &str, text: &str) -> Record {
    rr(name, rtype::TXT, 3600, Rdata::Txt(vec![text.as_bytes().to_vec()]))
}

fn soa(origin: &str, server: &str) -> Record {
    let rname = format!("hostmaster.{}", if origin == "." { "root.lab." } else { origin });
    let data = Rdata::Soa {
        mname: server.into(),
        rname,
        serial: 2026120701,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 300,
    };
    rr(origin, rtype::SOA, 3600, data)
}

/// The root zone: who serves `lab.`.
pub fn root() -> Zone {
    Zone {
        origin: ".",
        records: vec![
            soa(".", "root.lab."),
            ns(".", "root.lab."),
            ns("lab.", "ns.lab."),
            a("ns.lab.", LAB_IP),
            a("root.lab.", ROOT_IP),
        ],
    }
}

/// `lab.`: who serves `a.lab.` and `b.lab.`.
pub fn lab() -> Zone {
    Zone {
        origin: "lab.",
        records: vec![
            soa("lab.", "ns.lab."),
            ns("lab.", "ns.lab."),
            a("ns.lab.", LAB_IP),
            a("root.lab.", ROOT_IP),
            ns("a.lab.", "ns.a.lab."),
            a("ns.a.lab.", A_LAB_IP),
            ns("b.lab.", "ns.b.lab."),
            a("ns.b.lab.", B_LAB_IP),
        ],
    }
}

/// A mail domain's zone: its server, its mail exchanger, SPF and DMARC.
fn mail_domain(origin: &'static str, server: Ipv4Addr, mail: Ipv4Addr) -> Zone {
    let name = |host: &str| format!("{host}.{origin}");
    Zone {
        origin,
        records: vec![
            soa(origin, &name("ns")),
            ns(origin, &name("ns")),
            a(&name("ns"), server),
            rr(origin, rtype::MX, 3600, Rdata::Mx(10, name("mail"))),
            a(&name("mail"), mail),
            txt(origin, "v=spf1 mx -all"),
            txt(&name("_dmarc"), &format!("v=DMARC1; p=reject; rua=mailto:dmarc@{}", origin.trim_end_matches('.'))),
        ],
    }
}

/// `a.lab.`: alice's domain.
pub fn a_lab() -> Zone {
    mail_domain("a.lab.", A_LAB_IP, MAIL_A_IP)
}

/// `b.lab.`: bob's domain. Like many real domains, it carries more TXT records than fit in
/// 512 bytes (the proofs of ownership services ask for), so its TXT answer needs TCP.
pub fn b_lab() -> Zone {
    let mut zone = mail_domain("b.lab.", B_LAB_IP, MAIL_B_IP);
    for (service, token) in [
        ("mailcheck", "Zq4Lw9xB2mT7vR1cK8pN3sD6fH0jY5uA"),
        ("webmaster", "e3b0c44298fc1c149afbf4c8996fb924"),
        ("certs", "7f83b1657ff1fc53b92dc18148a1d65d"),
        ("chat", "Hj2K9LmN4pQ7rS1tV6wX8yZ0aB3cD5eF"),
        ("storage", "a665a45920422f9d417e4867efdc4fb8"),
        ("calendar", "2c26b46b68ffc68ff99b453c1d304134"),
        ("docs", "fcde2b2edba56bf408601fb721fe9b5c"),
        ("meet", "b5bb9d8014a0f9b1d61e21e796d78dcc"),
    ] {
        zone.records.push(txt("b.lab.", &format!("{service}-site-verification={token}")));
    }
    zone
}

/// Every lab zone, for `serve dns`.
pub fn all() -> Vec<Zone> {
    vec![root(), lab(), a_lab(), b_lab()]
}

/// `name` is `zone` or below it (both lowercase, with their trailing dot).
pub fn is_in(name: &str, zone: &str) -> bool {
    zone == "." || name == zone || name.ends_with(&format!(".{zone}"))
}

/// Over which transport a query came: a UDP answer must fit in the sender's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// An authoritative server's answer to `query`, or `None` for what gets no answer (a message
/// too short to have an id, a response).
pub fn answer(zones: &[Zone], query: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let dns = match dns::parse(query) {
        Ok(dns) => dns,
        Err(bad) => {
            let (id, flags) = (bad.id?, bad.flags?);
            if flags & 0x8000 != 0 {
                return None;
            }
            // FORMERR: the id and opcode back, nothing else (RFC 1035 §4.1.1).
            return Some(Builder::new(id, 0x8000 | (flags & 0x7900) | u16::from(rcode::FORMERR)).finish());
        }
    };
    if dns.qr() {
        return None;
    }
    let flags = 0x8000 | (dns.flags & 0x7900);
    let question = match (&dns.questions[..], dns.opcode()) {
        (_, op) if op != 0 => return Some(Builder::new(dns.id, flags | u16::from(rcode::NOTIMP)).finish()),
        ([q], _) => Question { name: q.name.to_ascii_lowercase(), ..q.clone() },
        _ => return Some(Builder::new(dns.id, flags | u16::from(rcode::FORMERR)).finish()),
    };
    let edns = dns.additional.iter().find(|r| r.rtype == rtype::OPT).map(|r| r.class.clamp(512, EDNS_SIZE));
    let zone = zones.iter().filter(|z| is_in(&question.name, z.origin)).max_by_key(|z| z.origin.len());
    let Some(zone) = zone else {
        let mut b = Builder::new(dns.id, flags | u16::from(rcode::REFUSED));
        b.question(&dns.questions[0]);
        return Some(finish(b, edns));
    };
    let (code, aa, sections) = lookup(zone, &question);
    let flags = flags | if aa { 0x0400 } else { 0 } | u16::from(code);
    let mut b = Builder::new(dns.id, flags);
    b.question(&dns.questions[0]);
    for (section, records) in sections.iter().enumerate() {
        for r in records {
            b.record(section + 1, r);
        }
    }
    let limit = usize::from(edns.unwrap_or(dns::UDP_LIMIT as u16));
    if transport == Transport::Udp && b.len() + if edns.is_some() { 11 } else { 0 } > limit {
        // Too long for UDP: the question alone, TC set; the client asks again over TCP.
        let mut b = Builder::new(dns.id, flags | 0x0200);
        b.question(&dns.questions[0]);
        return Some(finish(b, edns));
    }
    Some(finish(b, edns))
}

/// Adds the server's OPT record when the query had one (RFC 6891 §7).
fn finish(mut b: Builder, edns: Option<u16>) -> Vec<u8> {
    if edns.is_some() {
        b.record(
            3,
            &Record { name: ".".into(), rtype: rtype::OPT, class: EDNS_SIZE, ttl: 0, data: Rdata::Other(vec![]) },
        );
    }
    b.finish()
}

/// The answer within one zone: (rcode, authoritative, [answer, authority, additional]).
fn lookup(zone: &Zone, q: &Question) -> (u8, bool, [Vec<Record>; 3]) {
    let glue = |names: &[&Record]| -> Vec<Record> {
        let targets: Vec<String> = names
            .iter()
            .filter_map(|r| match &r.data {
                Rdata::Name(n) | Rdata::Mx(_, n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        zone.records.iter().filter(|r| r.rtype == rtype::A && targets.contains(&r.name)).cloned().collect()
    };
    // A cut below the origin on the way to the name: the zone does not hold it, the
    // delegated servers do (the closest cut wins).
    let cut = zone
        .records
        .iter()
        .filter(|r| r.rtype == rtype::NS && r.name != zone.origin && is_in(&q.name, &r.name))
        .map(|r| r.name.as_str())
        .max_by_key(|n| n.len());
    if let Some(cut) = cut {
        let servers: Vec<&Record> = zone.records.iter().filter(|r| r.rtype == rtype::NS && r.name == cut).collect();
        let additional = glue(&servers);
        return (rcode::NOERROR, false, [Vec::new(), servers.into_iter().cloned().collect(), additional]);
    }
    let soa: Vec<Record> = zone.records.iter().filter(|r| r.rtype == rtype::SOA).cloned().collect();
    let at_name: Vec<&Record> = zone.records.iter().filter(|r| r.name == q.name).collect();
    let matching: Vec<&Record> = at_name.iter().copied().filter(|r| r.rtype == q.qtype || q.qtype == 255).collect();
    if !matching.is_empty() {
        let additional = if matches!(q.qtype, rtype::MX | rtype::NS) { glue(&matching) } else { Vec::new() };
        return (rcode::NOERROR, true, [matching.into_iter().cloned().collect(), Vec::new(), additional]);
    }
    // The name exists (it has records, or names below it do) without this type: NODATA.
    let exists = !at_name.is_empty() || zone.records.iter().any(|r| r.name.ends_with(&format!(".{}", q.name)));
    let code = if exists { rcode::NOERROR } else { rcode::NXDOMAIN };
    (code, true, [Vec::new(), soa, Vec::new()])
}

/// What a response says, for the resolver: the next servers to ask, or the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ask again over TCP.
    Truncated,
    /// The zone was cut: ask these servers (name, address from the glue) about `zone`.
    Referral { zone: String, servers: Vec<(String, Ipv4Addr)> },
    /// The records asked for.
    Answer(Vec<Record>),
    /// No such name, or no such type (`rcode` says which).
    Negative(u8),
}

/// Reads a response the way an iterative resolver does.
pub fn outcome(dns: &Dns) -> Outcome {
    if dns.tc() {
        return Outcome::Truncated;
    }
    if !dns.answers.is_empty() {
        return Outcome::Answer(dns.answers.clone());
    }
    let servers: Vec<(String, Ipv4Addr)> = dns
        .authority
        .iter()
        .filter_map(|r| match &r.data {
            Rdata::Name(server) if r.rtype == rtype::NS => {
                let ip = dns.additional.iter().find_map(|g| match g.data {
                    Rdata::A(ip) if &g.name == server => Some(ip),
                    _ => None,
                })?;
                Some((server.clone(), ip))
            }
            _ => None,
        })
        .collect();
    match (dns.rcode(), servers.is_empty()) {
        (rcode::NOERROR, false) => {
            let zone = dns.authority.iter().find(|r| r.rtype == rtype::NS).map(|r| r.name.clone()).unwrap_or_default();
            Outcome::Referral { zone, servers }
        }
        (code, _) => Outcome::Negative(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(zones: &[Zone], name: &str, qtype: u16, transport: Transport) -> Dns {
        let reply = answer(zones, &dns::query(77, name, qtype, false), transport).unwrap();
        dns::parse(&reply).unwrap()
    }

    #[test]
    fn the_root_refers_to_lab_with_glue() {
        let r = ask(&[root()], "mail.b.lab.", rtype::A, Transport::Udp);
        assert_eq!((r.id, r.qr(), r.aa(), r.rcode()), (77, true, false, rcode::NOERROR));
        assert_eq!(outcome(&r), Outcome::Referral { zone: "lab.".into(), servers: vec![("ns.lab.".into(), LAB_IP)] });
        let r = ask(&[lab()], "mail.b.lab.", rtype::A, Transport::Udp);
        assert_eq!(
            outcome(&r),
            Outcome::Referral { zone: "b.lab.".into(), servers: vec![("ns.b.lab.".into(), B_LAB_IP)] }
        );
    }

    #[test]
    fn b_lab_answers_with_authority() {
        let r = ask(&[b_lab()], "MAIL.b.lab.", rtype::A, Transport::Udp);
        assert!(r.aa());
        assert_eq!(r.answers[0].data, Rdata::A(MAIL_B_IP));
        let mx = ask(&[b_lab()], "b.lab.", rtype::MX, Transport::Udp);
        assert_eq!(mx.answers[0].data, Rdata::Mx(10, "mail.b.lab.".into()));
        assert_eq!(mx.additional[0].name, "mail.b.lab.");
        let none = ask(&[b_lab()], "nosuch.b.lab.", rtype::A, Transport::Udp);
        assert_eq!((none.rcode(), none.aa()), (rcode::NXDOMAIN, true));
        assert_eq!(none.authority[0].rtype, rtype::SOA);
        let nodata = ask(&[b_lab()], "mail.b.lab.", rtype::TXT, Transport::Udp);
        assert_eq!((nodata.rcode(), nodata.answers.len()), (rcode::NOERROR, 0));
        assert_eq!(outcome(&nodata), Outcome::Negative(rcode::NOERROR));
    }

    #[test]
    fn a_long_answer_is_truncated_over_udp_and_whole_over_tcp() {
        let udp = ask(&[b_lab()], "b.lab.", rtype::TXT, Transport::Udp);
        assert!(udp.tc());
        assert!(udp.answers.is_empty());
        assert_eq!(outcome(&udp), Outcome::Truncated);
        let reply = answer(&[b_lab()], &dns::query(1, "b.lab.", rtype::TXT, false), Transport::Tcp).unwrap();
        assert!(reply.len() > dns::UDP_LIMIT);
        assert_eq!(dns::parse(&reply).unwrap().answers.len(), 9);
    }

    #[test]
    fn bad_queries_get_formerr_or_nothing() {
        let mut q = dns::query(5, "b.lab.", rtype::A, false);
        q[4..6].copy_from_slice(&[0xff, 0xff]);
        let r = dns::parse(&answer(&[b_lab()], &q, Transport::Udp).unwrap()).unwrap();
        assert_eq!((r.id, r.rcode()), (5, rcode::FORMERR));
        assert_eq!(answer(&[b_lab()], &q[..11], Transport::Udp), None);
        // A response is not answered (no reflection loops between servers).
        let reply = answer(&[b_lab()], &dns::query(5, "b.lab.", rtype::A, false), Transport::Udp).unwrap();
        assert_eq!(answer(&[b_lab()], &reply, Transport::Udp), None);
        // Outside the lab's zones.
        let r = ask(&[b_lab()], "example.com.", rtype::A, Transport::Udp);
        assert_eq!(r.rcode(), rcode::REFUSED);
    }

    #[test]
    fn every_zone_served_together_answers_from_the_closest() {
        let r = ask(&all(), "mail.b.lab.", rtype::A, Transport::Udp);
        assert!(r.aa());
        let r = ask(&all(), "a.lab.", rtype::MX, Transport::Udp);
        assert_eq!(r.answers[0].data, Rdata::Mx(10, "mail.a.lab.".into()));
    }
}
