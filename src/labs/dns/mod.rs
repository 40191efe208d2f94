//! DNS (RFC 1034, RFC 1035, RFC 7766): an iterative resolver on the client asks three
//! authoritative servers on one LAN — the root, `lab.`'s and `b.lab.`'s — what `mail.b.lab` is:
//! the root refers it to `lab.`, `lab.` to `b.lab.` (each referral with glue, the servers'
//! addresses), and `b.lab.` answers with authority. Then, from what it has cached, straight to
//! `b.lab.`'s server: the domain's mail exchanger (MX), its TXT records, too many for 512 bytes
//! (TC=1, asked again over TCP), and a name that does not exist (NXDOMAIN). Each query has a
//! fresh random id and goes out from a random port; a lost one is asked again.

pub mod resolver;
pub mod serve;
mod stub;
pub mod zone;

use super::{Lab, LabFuture, LabInfo};
use crate::locale::en;
use crate::net::sim::{CLIENT, SimNet, Topology};
use crate::net::{Stream, Wire};
use crate::wire::dns::{self, rtype, type_name};
use crate::wire::{Decoder, FramesOnly};
use color_eyre::eyre::{Result, bail};
use resolver::SimResolver;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zone::{Outcome, Transport, Zone};

static INFO: LabInfo = LabInfo {
    name: "dns",
    title: "DNS",
    port: 53,
    rfcs: "RFC 1034, RFC 1035, RFC 7766",
    about: "mail.b.lab resolved step by step: root → lab. → b.lab. referrals with glue, A and MX answers, TC=1 asked again over TCP, NXDOMAIN",
    wires: &[Wire::Sim, Wire::Host],
    conn: None,
    network: lan,
};

/// The client and the three name servers, on one LAN.
fn lan() -> Topology {
    Topology::lan(&[("client", 1), ("root", 10), ("ns.lab", 20), ("ns.b.lab", 30)])
}

/// The servers: their host, the zone each serves, and its address.
fn servers() -> [(usize, Zone); 3] {
    [(1, zone::root()), (2, zone::lab()), (3, zone::b_lab())]
}

/// What the resolver asks, in order (of the lab's servers, and of a real one with `--connect`).
const QUESTIONS: [(&str, u16); 4] =
    [("mail.b.lab.", rtype::A), ("b.lab.", rtype::MX), ("b.lab.", rtype::TXT), ("nosuch.b.lab.", rtype::A)];
/// Referrals followed for one name at most.
const MAX_REFERRALS: usize = 8;

pub struct Dns;

impl Lab for Dns {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("dns");

    fn decoders(&self, segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        if segments {
            // The frames decode the DNS they carry.
            (Box::new(FramesOnly), Box::new(FramesOnly))
        } else {
            (Box::new(dns::TcpDecoder), Box::new(dns::TcpDecoder))
        }
    }

    fn serve(&self, io: Stream, _peer: SocketAddr) -> LabFuture {
        Box::pin(serve::serve_stream(io, std::sync::Arc::new(zone::all()), crate::net::Gate::free()))
    }

    fn host_datagrams(
        &self,
        target: Option<&str>,
        sink: crate::session::StepSink,
        gate: std::sync::Arc<crate::net::Gate>,
    ) -> Option<LabFuture> {
        Some(Box::pin(stub::run(target.map(str::to_string), sink, gate)))
    }

    fn serve_port(&self, listen: &str, sink: crate::session::StepSink, sessions: Option<u32>) -> Option<LabFuture> {
        Some(Box::pin(serve::serve(listen.to_string(), sink, sessions)))
    }

    fn packets(&self, net: &SimNet) -> Option<LabFuture> {
        Some(Box::pin(resolve_all(net.clone())))
    }
}

/// Serves `zones` on port 53 of `host`: over UDP (until the returned guard is dropped) and over
/// TCP (a task in `tasks`).
pub(crate) fn serve_on(
    net: &SimNet,
    host: usize,
    zones: Vec<Zone>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<crate::net::sim::ServedUdp> {
    let answering = zones.clone();
    let served = net.serve_udp(
        host,
        53,
        Box::new(move |query, from, ctx| {
            if let Some(reply) = zone::answer(&answering, query, Transport::Udp) {
                ctx.replies.push((reply, from));
            }
        }),
    )?;
    tasks.spawn(serve_tcp(net.listen_on(host, 53)?, zones));
    Ok(served)
}

/// Serves DNS over TCP on a server host: a two-byte length, the message, the answer, as many
/// times as the client asks, until it closes.
async fn serve_tcp(listener: crate::net::sim::SimListener, zones: Vec<Zone>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let mut len = [0u8; 2];
        while stream.read_exact(&mut len).await.is_ok() {
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if stream.read_exact(&mut query).await.is_err() {
                break;
            }
            let Some(reply) = zone::answer(&zones, &query, Transport::Tcp) else { continue };
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            if stream.write_all(&framed).await.is_err() {
                break;
            }
        }
    }
}

/// The resolver and the servers.
async fn resolve_all(net: SimNet) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut served = Vec::new();
    for (host, zone) in servers() {
        net.set_state(host, en("authoritative for {zone}", &[("zone", &zone.origin)]));
        served.push(serve_on(&net, host, vec![zone], &mut tasks)?);
    }
    let mut resolver = SimResolver::new(&net, CLIENT)?;
    let mut known: Vec<(String, String, Ipv4Addr)> = vec![(".".into(), "root.lab.".into(), zone::ROOT_IP)];
    let mut resolved = Vec::new();
    for (name, qtype) in QUESTIONS {
        let (mut zone, mut server, mut ip) = known
            .iter()
            .filter(|(z, _, _)| zone::is_in(name, z))
            .max_by_key(|(z, _, _)| z.len())
            .cloned()
            .unwrap_or_else(|| known[0].clone());
        for _ in 0..MAX_REFERRALS {
            net.set_state(CLIENT, asking(&server, &zone, name, qtype, false));
            let mut reply = resolver.ask_udp(ip, name, qtype, false).await?;
            if reply.tc() {
                net.set_state(CLIENT, asking(&server, &zone, name, qtype, true));
                reply = resolver.ask_tcp(ip, name, qtype, false).await?;
            }
            match zone::outcome(&reply) {
                Outcome::Referral { zone: next, servers } => {
                    let (s, a) = servers[0].clone();
                    known.push((next.clone(), s.clone(), a));
                    (zone, server, ip) = (next, s, a);
                }
                Outcome::Truncated => bail!(en("{server} sent a truncated answer over TCP", &[("server", &server)])),
                _ => {
                    resolved.push(reply);
                    break;
                }
            }
        }
    }
    net.settle().await;
    drop(served);
    tasks.abort_all();
    if resolved.first().is_none_or(|r| r.answers.is_empty()) {
        bail!(en("mail.b.lab was not resolved", &[]));
    }
    Ok(())
}

/// The resolver's state as it asks `server` (of `zone`) about `name`, over TCP the second time.
fn asking(server: &str, zone: &str, name: &str, qtype: u16, tcp: bool) -> String {
    let kind = type_name(qtype);
    let args: [(&str, &dyn std::fmt::Display); 4] =
        [("server", &server), ("zone", &zone), ("name", &name), ("type", &kind)];
    if tcp {
        en("asking {server} ({zone}) again over TCP for {name} {type}", &args)
    } else {
        en("asking {server} ({zone}) for {name} {type}", &args)
    }
}
