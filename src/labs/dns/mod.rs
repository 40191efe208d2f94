//! DNS (RFC 1034, RFC 1035, RFC 7766): an iterative resolver on the client asks three
//! authoritative servers on one LAN — the root, `lab.`'s and `b.lab.`'s — what `mail.b.lab` is:
//! the root refers it to `lab.`, `lab.` to `b.lab.` (each referral with glue, the servers'
//! addresses), and `b.lab.` answers with authority. Then, from what it has cached, straight to
//! `b.lab.`'s server: the domain's mail exchanger (MX), its TXT records, too many for 512 bytes
//! (TC=1, asked again over TCP), and a name that does not exist (NXDOMAIN). Each query has a
//! fresh random id and goes out from a random port; a lost one is asked again.

pub mod serve;
mod stub;
pub mod zone;

use super::{Lab, LabFuture, LabInfo};
use crate::locale::en;
use crate::net::sim::{CLIENT, SimNet, Topology};
use crate::net::{Stream, Wire};
use crate::wire::dns::{self, rcode, rtype, type_name};
use crate::wire::{Decoder, FramesOnly};
use color_eyre::eyre::{Result, bail};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
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
/// How long the resolver waits for an answer over UDP (lab clock), and how often it asks.
const WAIT: Duration = Duration::from_secs(2);
const TRIES: u32 = 3;
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

/// One line of what a response told the resolver, as its state.
fn learned(dns: &dns::Dns) -> String {
    let (name, qtype) =
        dns.questions.first().map(|q| (q.name.clone(), type_name(q.qtype))).unwrap_or_else(|| (".".into(), "?".into()));
    match zone::outcome(dns) {
        Outcome::Truncated => {
            en("{name} {type}: truncated (TC=1), ask again over TCP", &[("name", &name), ("type", &qtype)])
        }
        Outcome::Referral { zone, servers } => {
            let servers: Vec<String> = servers.iter().map(|(n, ip)| format!("{n} {ip}")).collect();
            en("referred to {zone}: {servers}", &[("zone", &zone), ("servers", &servers.join(", "))])
        }
        Outcome::Answer(records) => {
            let data: Vec<String> = records.iter().map(|r| r.data.text()).collect();
            let data = data.join(", ");
            let data = if data.chars().count() > 48 {
                format!("{}…", data.chars().take(47).collect::<String>())
            } else {
                data
            };
            en("answer: {name} {type} {data}", &[("name", &name), ("type", &qtype), ("data", &data)])
        }
        Outcome::Negative(rcode::NXDOMAIN) => en("{name}: no such name (NXDOMAIN)", &[("name", &name)]),
        Outcome::Negative(rcode::NOERROR) => en("{name} has no {type} record", &[("name", &name), ("type", &qtype)]),
        Outcome::Negative(code) => en(
            "answered {rcode} for {name} {type}",
            &[("name", &name), ("type", &qtype), ("rcode", &dns::rcode_name(code))],
        ),
    }
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
        let zones = vec![zone.clone()];
        served.push(net.serve_udp(
            host,
            53,
            Box::new(move |query, from, ctx| {
                if let Some(reply) = zone::answer(&zones, query, Transport::Udp) {
                    ctx.replies.push((reply, from));
                }
            }),
        )?);
        tasks.spawn(serve_tcp(net.listen_on(host, 53)?, vec![zone]));
    }
    // Source port randomization (RFC 5452): with the random id, what a forger must guess.
    let port: u16 = 49152 + rand::random::<u16>() % 16384;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Ipv4Addr, Vec<u8>)>(16);
    let _attached = net.attach(
        CLIENT,
        Box::new(move |frame, ctx| {
            let Some((53, dst, range)) = crate::wire::frame::udp_payload(frame) else { return };
            let Ok(dns) = dns::parse(&frame[range.clone()]) else { return };
            let Some(from) = ipv4_src(frame) else { return };
            if dst == port && dns.qr() {
                ctx.label = Some(learned(&dns));
                let _ = tx.try_send((from, frame[range].to_vec()));
            }
        }),
    );
    let socket = net.probe_socket(CLIENT, port)?;
    // What the resolver knows of who serves which zone: at first only the root (its hints).
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
            let mut reply = ask_udp(&net, &socket, &mut rx, ip, name, qtype).await?;
            if reply.tc() {
                net.set_state(CLIENT, asking(&server, &zone, name, qtype, true));
                reply = ask_tcp(&net, ip, name, qtype).await?;
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

/// The IPv4 source of a frame.
fn ipv4_src(frame: &[u8]) -> Option<Ipv4Addr> {
    let b = frame.get(26..30)?;
    Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

/// One query over UDP, asked again if no answer comes within [`WAIT`].
async fn ask_udp(
    net: &SimNet,
    socket: &crate::net::sim::ProbeSocket,
    rx: &mut tokio::sync::mpsc::Receiver<(Ipv4Addr, Vec<u8>)>,
    server: Ipv4Addr,
    name: &str,
    qtype: u16,
) -> Result<dns::Dns> {
    for _ in 0..TRIES {
        let id: u16 = rand::random();
        socket.send(SocketAddrV4::new(server, 53), 64, &dns::query(id, name, qtype, false))?;
        let deadline = net.now() + WAIT;
        loop {
            tokio::select! {
                Some((from, bytes)) = rx.recv() => {
                    // Only the answer from the server asked, with the id of the query, counts.
                    match dns::parse(&bytes) {
                        Ok(reply) if from == server && reply.id == id => return Ok(reply),
                        _ => continue,
                    }
                }
                () = net.sleep_until(deadline) => break,
            }
        }
    }
    bail!(en("no answer from {server} to {n} queries", &[("server", &server), ("n", &TRIES)]))
}

/// The same query over TCP: a connection, a two-byte length before each message.
async fn ask_tcp(net: &SimNet, server: Ipv4Addr, name: &str, qtype: u16) -> Result<dns::Dns> {
    let exchange = async {
        let mut stream = net.connect(SocketAddr::from((server, 53))).await?;
        let query = dns::query(rand::random(), name, qtype, false);
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = crate::net::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| color_eyre::eyre::eyre!(en("no answer over TCP from {server}", &[("server", &server)])))??;
    dns::parse(&reply).map_err(|bad| color_eyre::eyre::eyre!(bad.reason))
}
