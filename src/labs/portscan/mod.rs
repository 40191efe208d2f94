//! A port scan, as the course describes it: host discovery first, then the ports of the hosts
//! found. The scanner at 192.0.2.1 sweeps its own LAN (192.0.2.0/29) with ARP requests, which
//! every host must answer, and the network behind its gateway r1 (203.0.113.0/29) with echo
//! requests, since ARP does not cross a router. Then it scans six ports of each host it found
//! (its gateway aside) twice: a connect scan (the socket API's connect(), a whole handshake
//! then RST) and a SYN scan (SYNs written by hand; the scanner's own stack, which knows of no
//! such connection, resets each SYN-ACK). A SYN-ACK means open, a RST closed, silence or an
//! ICMP refusal filtered: r1 is a firewall for 203.0.113.0/24 that lets 443 through, refuses 22
//! with ICMP (type 3 code 13) and drops the rest without a word; a SYN that gets no answer is
//! asked once more before it counts as filtered. The scanner's state is its table so far.
//! On the host wire, a connect scan of loopback (see [`host`]).

pub mod host;

use super::{Lab, LabFuture, LabInfo};
use crate::locale::{en, term};
use crate::net::Wire;
use crate::net::sim::router::{Filter, TCP};
use crate::net::sim::{End, HostSpec, RouterSpec, SimNet, Topology};
use color_eyre::eyre::{Result, bail};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

static INFO: LabInfo = LabInfo {
    name: "portscan",
    title: "port scan",
    port: 0,
    rfcs: "RFC 9293, RFC 826, RFC 792",
    about: "host discovery (ARP sweep, ping sweep), then a connect scan and a SYN scan: open, closed, and filtered behind a firewall",
    wires: &[Wire::Sim, Wire::Host],
    conn: None,
    network,
};

/// The hosts, by index.
const SCANNER: usize = 0;
const WEB: usize = 1;
const MAIL: usize = 2;
const VAULT: usize = 3;
/// The scanner's LAN, which the ARP sweep covers, and its gateway (r1) on it.
const LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 0);
const LAN_PREFIX: u8 = 29;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 6);
/// The network behind r1 that the ping sweep covers (a /29 of r1's 203.0.113.0/24).
const FAR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 0);
const FAR_PREFIX: u8 = 29;
/// The ports scanned on each host (well-known, registered and dynamic ones), in the order
/// probed: not in order, as scanners do, and so that vault's open 443 comes last and its answer
/// shows the whole table.
pub const PORTS: [u16; 6] = [22, 25, 80, 3306, 50000, 443];
/// What listens where (vault's 22 and 3306 stay out of reach: r1 refuses or drops them).
const SERVICES: [(usize, &[u16]); 3] = [(WEB, &[22, 80, 443]), (MAIL, &[25]), (VAULT, &[22, 443, 3306])];
/// How long a probe waits for its answer (lab clock): shorter than TCP's first retransmission
/// timeout (1 s), so connect() gives up before its stack sends the SYN again.
const WAIT: Duration = Duration::from_millis(800);
/// What the echo requests of the ping sweep carry.
const DATA: &[u8] = b"protolab ping sweep";

fn network() -> Topology {
    let host = |name, last, gateway: Ipv4Addr| HostSpec {
        role: None,
        name,
        ip: Some(Ipv4Addr::new(192, 0, 2, last)),
        prefix: LAN_PREFIX,
        gateway: Some(gateway),
    };
    let outside = Ipv4Addr::new(203, 0, 113, 254);
    Topology {
        hosts: vec![
            host("scanner", 1, GATEWAY),
            host("web", 2, GATEWAY),
            host("mail", 3, GATEWAY),
            HostSpec {
                role: None,
                name: "vault",
                ip: Some(Ipv4Addr::new(203, 0, 113, 5)),
                prefix: 24,
                gateway: Some(outside),
            },
        ],
        routers: vec![RouterSpec {
            name: "r1",
            ports: vec![(GATEWAY, LAN_PREFIX), (outside, 24)],
            routes: Vec::new(),
            silent: false,
            nat: None,
            filter: Some(Filter {
                net: Ipv4Addr::new(203, 0, 113, 0),
                prefix: 24,
                allow: vec![(TCP, 443)],
                reject: vec![(TCP, 22)],
            }),
        }],
        cables: vec![
            vec![End::Host(SCANNER), End::Host(WEB), End::Host(MAIL), End::Router(0, 0)],
            vec![End::Router(0, 1), End::Host(VAULT)],
        ],
    }
}

pub struct PortScan;

impl Lab for PortScan {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("portscan");

    fn packets(&self, net: &SimNet) -> Option<LabFuture> {
        Some(Box::pin(scan(net.clone())))
    }

    fn host_datagrams(
        &self,
        target: Option<&str>,
        sink: crate::session::StepSink,
        gate: Arc<crate::net::Gate>,
    ) -> Option<LabFuture> {
        Some(Box::pin(host::run(target.map(str::to_string), sink, gate)))
    }
}

/// What a probe of a port found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// SYN-ACK: something listens.
    Open,
    /// RST: the host is there, nothing listens.
    Closed,
    /// No answer, or an ICMP refusal from a firewall on the way.
    Filtered,
}

/// The addresses of `net/prefix` a sweep asks about: all but the network's and the broadcast.
fn sweep(net: Ipv4Addr, prefix: u8) -> impl Iterator<Item = Ipv4Addr> {
    let first = u32::from(net) + 1;
    let last = u32::from(net) + (1u32 << (32 - prefix)) - 2;
    (first..=last).map(Ipv4Addr::from)
}

/// What the scanner's card reads off the frames that reach it.
#[derive(Debug, Clone, Copy)]
enum Heard {
    /// An ARP reply: the address is in use, at this MAC.
    Arp(Ipv4Addr, [u8; 6]),
    /// An echo reply to the ping sweep.
    Echo(Ipv4Addr),
    /// An answer about a port: SYN-ACK, RST, or an ICMP error quoting our probe.
    Port(Ipv4Addr, u16, Verdict),
}

/// Reads a frame that reached the scanner: `ident` is the ping sweep's echo identifier.
fn heard(frame: &[u8], me: Ipv4Addr, ident: u16) -> Option<Heard> {
    use etherparse::{Icmpv4Type, NetSlice, SlicedPacket, TransportSlice};
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    if let Some(NetSlice::Arp(arp)) = &packet.net {
        let sender = <[u8; 4]>::try_from(arp.sender_protocol_addr()).ok()?;
        let target = <[u8; 4]>::try_from(arp.target_protocol_addr()).ok()?;
        let mac = <[u8; 6]>::try_from(arp.sender_hw_addr()).ok()?;
        let reply = arp.operation() == etherparse::ArpOperation::REPLY;
        return (reply && Ipv4Addr::from(target) == me).then(|| Heard::Arp(sender.into(), mac));
    }
    let Some(NetSlice::Ipv4(ip)) = &packet.net else { return None };
    let from = ip.header().source_addr();
    match &packet.transport {
        Some(TransportSlice::Tcp(tcp)) if tcp.syn() && tcp.ack() => {
            Some(Heard::Port(from, tcp.source_port(), Verdict::Open))
        }
        Some(TransportSlice::Tcp(tcp)) if tcp.rst() => Some(Heard::Port(from, tcp.source_port(), Verdict::Closed)),
        Some(TransportSlice::Icmpv4(icmp)) => match icmp.icmp_type() {
            Icmpv4Type::EchoReply(echo) if echo.id == ident => Some(Heard::Echo(from)),
            Icmpv4Type::DestinationUnreachable(_) => {
                // The probe it quotes: an IPv4 header, then the TCP header's first 8 bytes.
                let quoted = &icmp.slice()[8..];
                let ihl = usize::from(quoted.first()? & 0x0f) * 4;
                if *quoted.get(9)? != TCP {
                    return None;
                }
                let dst = Ipv4Addr::new(*quoted.get(16)?, quoted[17], quoted[18], quoted[19]);
                let port = quoted.get(ihl + 2..ihl + 4)?;
                Some(Heard::Port(dst, u16::from_be_bytes([port[0], port[1]]), Verdict::Filtered))
            }
            _ => None,
        },
        _ => None,
    }
}

/// An ARP request from the scanner for `target` (RFC 826), broadcast.
fn arp_request(me: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mac = crate::net::sim::mac(SCANNER);
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&me.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&target.octets());
    frame
}

/// A SYN written by hand, as a SYN scanner does on a raw socket: from `from` to `to`, in a
/// frame to `next_hop` (the target's MAC, or the gateway's).
fn syn(from: SocketAddrV4, to: SocketAddrV4, next_hop: [u8; 6], seq: u32) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2(crate::net::sim::mac(SCANNER), next_hop)
        .ipv4(from.ip().octets(), to.ip().octets(), 64)
        .tcp(from.port(), to.port(), seq, 1024)
        .syn();
    // An MSS option, as scanners send (some stacks ignore a SYN without one).
    let builder = builder.options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)]).ok();
    let mut frame = Vec::new();
    if let Some(b) = builder {
        let _ = b.write(&mut frame, &[]);
    }
    frame
}

/// One host's table as the scanner's state says it: `open 22 80 · closed 25 · filtered –`.
fn table(results: &BTreeMap<u16, Verdict>) -> [String; 3] {
    [Verdict::Open, Verdict::Closed, Verdict::Filtered].map(|v| {
        let ports: Vec<String> = results.iter().filter(|(_, r)| **r == v).map(|(p, _)| p.to_string()).collect();
        if ports.is_empty() { "–".to_string() } else { ports.join(" ") }
    })
}

/// The scanner's state during a scan of `ip`.
fn scan_state(scan: &str, ip: Ipv4Addr, results: &BTreeMap<u16, Verdict>) -> String {
    let [open, closed, filtered] = table(results);
    en(
        "{scan} of {ip}: open {open} · closed {closed} · filtered {filtered}",
        &[("scan", &scan), ("ip", &ip), ("open", &open), ("closed", &closed), ("filtered", &filtered)],
    )
}

/// What the scanner's card has learnt, shared with its program.
#[derive(Default)]
struct Card {
    /// The scan under way (`connect scan`, `SYN scan`), and its results so far by host.
    scan: &'static str,
    results: BTreeMap<Ipv4Addr, BTreeMap<u16, Verdict>>,
    /// The hosts each sweep found, by the sweep's name.
    found: BTreeMap<&'static str, Vec<Ipv4Addr>>,
    sweep: &'static str,
}

/// The scanner's program: discovery, then both scans.
async fn scan(net: SimNet) -> Result<()> {
    let me = network().hosts[SCANNER].ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mut servers = tokio::task::JoinSet::new();
    for (host, ports) in SERVICES {
        for &port in ports {
            let listener = net.listen_on(host, port)?;
            // Accepts, and waits for the scanner to hang up (it resets what it opened).
            servers.spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        let _ = crate::net::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                    });
                }
            });
        }
    }
    net.show_lab_state(SCANNER);
    let ident: u16 = rand::random();
    let card: Arc<Mutex<Card>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Heard>(256);
    let seen = card.clone();
    let _attached = net.attach(
        SCANNER,
        Box::new(move |frame, ctx| {
            let Some(heard) = heard(frame, me, ident) else { return };
            let mut card = seen.lock().unwrap_or_else(|e| e.into_inner());
            match heard {
                Heard::Arp(ip, _) | Heard::Echo(ip) => {
                    let sweep = card.sweep;
                    let found = card.found.entry(sweep).or_default();
                    if !found.contains(&ip) {
                        found.push(ip);
                    }
                    ctx.label = Some(sweep_state(sweep, found));
                }
                Heard::Port(ip, port, verdict) => {
                    // Only answers about the ports scanned, while a scan is on.
                    if !PORTS.contains(&port) || card.scan.is_empty() {
                        return;
                    }
                    let scan = card.scan;
                    let results = card.results.entry(ip).or_default();
                    results.entry(port).or_insert(verdict);
                    ctx.label = Some(scan_state(scan, ip, results));
                }
            }
            let _ = tx.try_send(heard);
        }),
    );

    // 1. The ARP sweep of the scanner's own LAN: every host there must answer ARP.
    let lan = format!("{LAN}/{LAN_PREFIX}");
    card.lock().unwrap_or_else(|e| e.into_inner()).sweep = term("ARP sweep");
    net.set_state(SCANNER, en("ARP sweep of {net}", &[("net", &lan)]));
    let mut macs = BTreeMap::new();
    for target in sweep(LAN, LAN_PREFIX).filter(|&ip| ip != me) {
        net.send_raw(SCANNER, arp_request(me, target));
    }
    listen(&net, &mut rx, WAIT, |h| {
        if let Heard::Arp(ip, mac) = h {
            macs.insert(ip, mac);
        }
        false
    })
    .await;
    let Some(&gateway_mac) = macs.get(&GATEWAY) else {
        bail!(en("the gateway {gateway} did not answer the ARP sweep", &[("gateway", &GATEWAY)]));
    };

    // 2. The ping sweep beyond the gateway, where ARP does not reach.
    let far = format!("{FAR}/{FAR_PREFIX}");
    card.lock().unwrap_or_else(|e| e.into_inner()).sweep = term("ping sweep");
    net.set_state(SCANNER, en("ping sweep of {net}", &[("net", &far)]));
    let socket = net.echo_socket(SCANNER, ident)?;
    for (seq, target) in sweep(FAR, FAR_PREFIX).enumerate() {
        socket.send(target, &crate::labs::ping::echo_request(ident, seq as u16 + 1, DATA))?;
    }
    let mut pinged = Vec::new();
    listen(&net, &mut rx, WAIT, |h| {
        if let Heard::Echo(ip) = h {
            pinged.push(ip);
        }
        false
    })
    .await;
    drop(socket);

    // The hosts to scan, in order: the LAN's (the gateway aside), then those behind it.
    let mut targets: Vec<(Ipv4Addr, [u8; 6])> =
        macs.iter().filter(|(ip, _)| **ip != GATEWAY).map(|(ip, mac)| (*ip, *mac)).collect();
    pinged.sort();
    targets.extend(pinged.iter().map(|&ip| (ip, gateway_mac)));
    if targets.is_empty() {
        bail!(en("host discovery found no host to scan", &[]));
    }

    // 3. The connect scan: one connect() a port, a port at a time.
    while rx.try_recv().is_ok() {}
    let connect = term("connect scan");
    for &(ip, _) in &targets {
        let mut results = BTreeMap::new();
        {
            let mut card = card.lock().unwrap_or_else(|e| e.into_inner());
            card.scan = connect;
            card.results.remove(&ip);
        }
        for port in PORTS {
            net.set_state(SCANNER, scan_state(connect, ip, &results));
            let to = SocketAddrV4::new(ip, port);
            let verdict = tokio::select! {
                done = crate::net::timeout(WAIT, net.connect_from(SCANNER, to.into())) => match done {
                    Ok(Ok(stream)) => {
                        stream.abort();
                        Verdict::Open
                    }
                    Ok(Err(_)) => Verdict::Closed,
                    Err(_) => Verdict::Filtered,
                },
                // An ICMP refusal ends connect() at once, as it does on Linux.
                () = refused(&mut rx, to) => Verdict::Filtered,
            };
            results.insert(port, verdict);
            card.lock().unwrap_or_else(|e| e.into_inner()).results.entry(ip).or_default().insert(port, verdict);
        }
        net.set_state(SCANNER, scan_state(connect, ip, &results));
    }

    // 4. The SYN scan: every port of a host at once, SYNs written by hand.
    let syn_scan = term("SYN scan");
    let port: u16 = 49152 + rand::random::<u16>() % 16384;
    {
        let mut card = card.lock().unwrap_or_else(|e| e.into_inner());
        card.scan = syn_scan;
        card.results.clear();
    }
    let from = SocketAddrV4::new(me, port);
    for &(ip, mac) in &targets {
        // What is left of the scan before (a late answer) is not this one's.
        while rx.try_recv().is_ok() {}
        net.set_state(SCANNER, scan_state(syn_scan, ip, &BTreeMap::new()));
        let seqs: BTreeMap<u16, u32> = PORTS.iter().map(|&p| (p, rand::random())).collect();
        let mut results: BTreeMap<u16, Verdict> = BTreeMap::new();
        for asking in 0..2 {
            let silent: Vec<u16> = PORTS.iter().copied().filter(|p| !results.contains_key(p)).collect();
            if silent.is_empty() {
                break;
            }
            if asking > 0 {
                let list: Vec<String> = silent.iter().map(u16::to_string).collect();
                net.set_state(
                    SCANNER,
                    en(
                        "{scan} of {ip}: no answer from {ports}, asking once more",
                        &[("scan", &syn_scan), ("ip", &ip), ("ports", &list.join(" "))],
                    ),
                );
            }
            for &p in &silent {
                net.send_raw(SCANNER, syn(from, SocketAddrV4::new(ip, p), mac, seqs[&p]));
            }
            listen(&net, &mut rx, WAIT, |h| {
                if let Heard::Port(at, p, verdict) = h
                    && at == ip
                    && PORTS.contains(&p)
                {
                    results.entry(p).or_insert(verdict);
                }
                results.len() == PORTS.len()
            })
            .await;
        }
        for p in PORTS {
            results.entry(p).or_insert(Verdict::Filtered);
        }
        card.lock().unwrap_or_else(|e| e.into_inner()).results.insert(ip, results.clone());
        net.set_state(SCANNER, scan_state(syn_scan, ip, &results));
    }
    net.settle().await;
    servers.abort_all();
    Ok(())
}

/// The scanner's state during a sweep: the hosts found so far.
fn sweep_state(sweep: &str, found: &[Ipv4Addr]) -> String {
    let hosts: Vec<String> = found.iter().map(Ipv4Addr::to_string).collect();
    en("{sweep}: {hosts} answered", &[("sweep", &sweep), ("hosts", &hosts.join(" "))])
}

/// Reads what the card heard for `wait` on the lab clock, or until `enough` says so.
async fn listen(
    net: &SimNet,
    rx: &mut tokio::sync::mpsc::Receiver<Heard>,
    wait: Duration,
    mut enough: impl FnMut(Heard) -> bool,
) {
    let deadline = net.now() + wait;
    loop {
        tokio::select! {
            Some(heard) = rx.recv() => {
                if enough(heard) {
                    return;
                }
            }
            () = net.sleep_until(deadline) => return,
        }
    }
}

/// Returns once an ICMP error about a probe of `to` has reached the card.
async fn refused(rx: &mut tokio::sync::mpsc::Receiver<Heard>, to: SocketAddrV4) {
    while let Some(heard) = rx.recv().await {
        if let Heard::Port(ip, port, Verdict::Filtered) = heard
            && SocketAddrV4::new(ip, port) == to
        {
            return;
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_span_the_ranges_and_a_sweep_skips_network_and_broadcast() {
        let range = |p| crate::wire::frame::port_range(p).0;
        assert_eq!(
            PORTS.map(range),
            ["well-known", "well-known", "well-known", "registered", "dynamic (ephemeral)", "well-known"]
        );
        assert_eq!(
            (range(1023), range(1024), range(49151), range(49152)),
            ("well-known", "registered", "registered", "dynamic (ephemeral)")
        );
        let swept: Vec<_> = sweep(LAN, LAN_PREFIX).map(|ip| ip.octets()[3]).collect();
        assert_eq!(swept, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_hand_written_syn_decodes_with_good_checksums() {
        let frame = syn(
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 50123),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80),
            [2, 0, 0, 0, 0, 2],
            7,
        );
        let msg = crate::wire::frame::decode(&frame);
        assert_eq!(msg.malformed, None);
        assert_eq!(msg.kind, "tcp.syn");
        assert!(msg.summary.starts_with("SYN seq=7"), "{}", msg.summary);
        assert!(msg.notes.iter().any(|n| n.starts_with("checksums ok")), "{:?}", msg.notes);
        assert!(
            msg.notes.iter().any(|n| n == "port 80: a well-known port (0–1023, as IANA divides them)"),
            "{:?}",
            msg.notes
        );
        let arp = crate::wire::frame::decode(&arp_request(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 4)));
        assert_eq!((arp.kind.as_str(), arp.summary.as_str()), ("arp.request", "who has 192.0.2.4? tell 192.0.2.1"));
    }

    #[test]
    fn answers_are_read_as_verdicts() {
        let me = Ipv4Addr::new(192, 0, 2, 1);
        let web = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
        // The target's SYN-ACK, and its RST.
        let answer = |syn_ack: bool| {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], crate::net::sim::mac(SCANNER))
                .ipv4(web.ip().octets(), me.octets(), 64)
                .tcp(80, 50123, 9, 1024);
            let b = if syn_ack { b.syn().ack(8) } else { b.rst().ack(8) };
            let mut frame = Vec::new();
            b.write(&mut frame, &[]).unwrap();
            frame
        };
        assert!(matches!(heard(&answer(true), me, 1), Some(Heard::Port(ip, 80, Verdict::Open)) if ip == *web.ip()));
        assert!(matches!(heard(&answer(false), me, 1), Some(Heard::Port(_, 80, Verdict::Closed))));
    }
}
