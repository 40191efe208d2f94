//! traceroute (RFC 792, RFC 1812) across three routers: the client sends UDP probes to the
//! server at 203.0.113.5, port 33434 and up, three per TTL, with TTL 1, 2, 3, …: the router where
//! a probe's TTL runs out throws it away and answers ICMP Time Exceeded from its own address,
//! which names the hop; r3 keeps quiet (many routers do), so its hop is `* * *`; the server,
//! where nothing listens on the port, answers Port Unreachable, and the trace ends. Each answer
//! is matched to its probe by the UDP header it quotes, and timed on the lab clock. With
//! `--icmp` (traceroute -I) the probes are ICMP echo requests, numbered by their sequence
//! number, and the server's echo reply ends the trace.

use super::{Lab, LabFuture, LabInfo};
use crate::locale::en;
use crate::net::Wire;
use crate::net::sim::{CLIENT, SimNet, Topology};
use color_eyre::eyre::{Result, bail};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static INFO: LabInfo = LabInfo {
    name: "traceroute",
    title: "traceroute",
    port: BASE_PORT,
    rfcs: "RFC 792, RFC 1812",
    about: "UDP probes with TTL 1, 2, 3…: each router's Time Exceeded names it, a silent one is * * *, Port Unreachable ends it",
    wires: &[Wire::Sim],
    conn: None,
    network: three_routers,
};

/// The first probe's destination port, as classic traceroute; each probe takes the next.
pub const BASE_PORT: u16 = 33434;
/// Probes per TTL, as traceroute sends by default.
const PROBES: u8 = 3;
/// How long a probe waits for its answer (lab clock).
const WAIT: Duration = Duration::from_secs(1);
/// The furthest TTL tried.
const MAX_TTL: u8 = 8;
/// What each probe carries (nobody reads it).
const DATA: &[u8] = b"protolab traceroute probe";

/// client, r1, r2, r3 (which sends no ICMP errors), server.
fn three_routers() -> Topology {
    let mut t = Topology::chain(3);
    t.routers[2].silent = true;
    t
}

pub struct Traceroute;

impl Lab for Traceroute {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("traceroute");

    fn packets(&self, net: &SimNet) -> Option<LabFuture> {
        Some(Box::pin(trace(net.clone())))
    }
}

/// Probes are ICMP echo requests (traceroute -I) instead of UDP datagrams.
static ICMP_PROBES: AtomicBool = AtomicBool::new(false);

/// `--icmp`: probe with ICMP echo requests, for the runs from now on.
pub fn set_icmp(on: bool) {
    ICMP_PROBES.store(on, Ordering::Relaxed);
}

/// Whether the runs from now on probe with ICMP echo requests.
pub fn icmp() -> bool {
    ICMP_PROBES.load(Ordering::Relaxed)
}

/// An answer to a probe, read off the client's card: who sent it, and whether it came from the
/// destination itself (Port Unreachable) rather than a router on the way (Time Exceeded).
#[derive(Debug, Clone, Copy)]
struct Answer {
    probe: u16,
    from: Ipv4Addr,
    arrived: bool,
}

/// An ICMP error in `frame` about one of our probes (from `port`): which probe, by the
/// destination port of the UDP header it quotes.
/// `port` is the probes' UDP source port, or with ICMP probes their echo identifier.
fn answer(frame: &[u8], port: u16) -> Option<(u16, Ipv4Addr, bool)> {
    let packet = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else { return None };
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &packet.transport else { return None };
    let from = ip.header().source_addr();
    let arrived = match (icmp.type_u8(), icmp.code_u8()) {
        (11, 0) => false,
        (3, 3) => true,
        // traceroute -I: the destination's own echo reply ends it.
        (0, 0) => {
            let echo = icmp.slice();
            let id = u16::from_be_bytes([*echo.get(4)?, *echo.get(5)?]);
            return (id == port).then(|| (u16::from_be_bytes([echo[6], echo[7]]), from, true));
        }
        _ => return None,
    };
    // The quoted packet: an IPv4 header, then the probe's UDP header, or its echo request.
    let quoted = &icmp.slice()[8..];
    let ihl = usize::from(quoted.first()? & 0x0f) * 4;
    let head = quoted.get(ihl..ihl + 8)?;
    let probe = match quoted.get(9) {
        Some(17) if u16::from_be_bytes([head[0], head[1]]) == port => u16::from_be_bytes([head[2], head[3]]),
        Some(1) if head[0] == 8 && u16::from_be_bytes([head[4], head[5]]) == port => {
            u16::from_be_bytes([head[6], head[7]])
        }
        _ => return None,
    };
    Some((probe, from, arrived))
}

/// What the probes go out by.
enum Probes {
    Udp(crate::net::sim::ProbeSocket),
    Echo(crate::net::sim::EchoSocket),
}

/// Milliseconds with two decimals, as traceroute prints them.
fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The client's program: probes with TTL 1, 2, 3, … until the server answers.
async fn trace(net: SimNet) -> Result<()> {
    let server = net.server_ip();
    let port: u16 = 49152 + rand::random::<u16>() % 16384;
    let sent: Arc<Mutex<HashMap<u16, (u8, Duration)>>> = Arc::default();
    // One line a hop, as traceroute prints it; the line so far is the client's state.
    let lines: Arc<Mutex<HashMap<u8, String>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Answer>(usize::from(PROBES) * usize::from(MAX_TTL));
    let (times, hops) = (sent.clone(), lines.clone());
    let _attached = net.attach(
        CLIENT,
        Box::new(move |frame, ctx| {
            let Some((probe, from, arrived)) = answer(frame, port) else { return };
            let Some(&(ttl, at)) = times.lock().unwrap_or_else(|e| e.into_inner()).get(&probe) else { return };
            let mut hops = hops.lock().unwrap_or_else(|e| e.into_inner());
            let line = hops.entry(ttl).or_default();
            if !line.contains(&from.to_string()) {
                line.push_str(&format!("  {from}"));
            }
            line.push_str(&format!("  {}", ms(ctx.now.saturating_sub(at))));
            ctx.label = Some(en("hop {ttl}:{line}", &[("ttl", &ttl), ("line", line)]));
            let _ = tx.try_send(Answer { probe, from, arrived });
        }),
    );
    let icmp = icmp();
    // UDP probes leave from `port`; ICMP ones carry it as their identifier.
    let socket =
        if icmp { Probes::Echo(net.echo_socket(CLIENT, port)?) } else { Probes::Udp(net.probe_socket(CLIENT, port)?) };
    let mut probe = BASE_PORT;
    for ttl in 1..=MAX_TTL {
        let mut arrived = false;
        for _ in 0..PROBES {
            // The hop's line so far, as traceroute prints it.
            let line = lines.lock().unwrap_or_else(|e| e.into_inner()).get(&ttl).cloned().unwrap_or_default();
            net.set_state(
                CLIENT,
                if line.is_empty() {
                    en("hop {ttl}", &[("ttl", &ttl)])
                } else {
                    en("hop {ttl}:{line}", &[("ttl", &ttl), ("line", &line)])
                },
            );
            sent.lock().unwrap_or_else(|e| e.into_inner()).insert(probe, (ttl, net.now()));
            match &socket {
                Probes::Udp(udp) => udp.send(SocketAddrV4::new(server, probe), ttl, DATA)?,
                // Numbered like the UDP probes' ports, from 33434.
                Probes::Echo(echo) => {
                    echo.send_ttl(server, Some(ttl), &crate::labs::ping::echo_request(port, probe, DATA))?
                }
            }
            let deadline = net.now() + WAIT;
            loop {
                tokio::select! {
                    Some(a) = rx.recv() => {
                        arrived |= a.arrived && a.from == server;
                        if a.probe == probe {
                            break;
                        }
                    }
                    () = net.sleep_until(deadline) => {
                        // No answer: traceroute prints a star.
                        let mut hops = lines.lock().unwrap_or_else(|e| e.into_inner());
                        hops.entry(ttl).or_default().push_str("  *");
                        break;
                    }
                }
            }
            probe += 1;
        }
        if arrived {
            net.settle().await;
            return Ok(());
        }
    }
    net.settle().await;
    bail!(en("no answer from {server} within {max} hops", &[("server", &server), ("max", &MAX_TTL)]))
}
