//! A stub resolver on one host of the lab network: it asks a server one question at a time over
//! UDP, from a random port (RFC 5452) with a fresh random id per query, takes only the answer
//! from the server asked with that id, asks again when none comes, and asks over TCP when the
//! answer comes back truncated (TC=1). What it learns is shown under its host's lifeline. The
//! DNS lab's iterative resolver and the mail lab's servers ask with it.

use super::zone::{self, Outcome};
use crate::locale::en;
use crate::net::sim::{Attached, ProbeSocket, SimNet};
use crate::wire::dns::{self, rcode, type_name};
use color_eyre::eyre::{Result, bail, eyre};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// How long the resolver waits for an answer over UDP (lab clock), and how often it asks.
const WAIT: Duration = Duration::from_secs(2);
const TRIES: u32 = 3;
/// How long an answer over TCP may take.
const TCP_WAIT: Duration = Duration::from_secs(10);
/// Answers waiting to be read.
const QUEUE: usize = 16;

/// A stub resolver on a host of the lab network (see the module).
pub struct SimResolver {
    net: SimNet,
    host: usize,
    socket: ProbeSocket,
    answers: mpsc::Receiver<(Ipv4Addr, Vec<u8>)>,
    /// The program on the host's card that reads the answers; taken off when dropped.
    _attached: Attached,
}

impl SimResolver {
    /// A resolver on `host`, on a random port of its own.
    pub fn new(net: &SimNet, host: usize) -> Result<Self> {
        let port: u16 = 49152 + rand::random::<u16>() % 16384;
        let (tx, answers) = mpsc::channel(QUEUE);
        let attached = net.attach(
            host,
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
        let socket = net.probe_socket(host, port)?;
        Ok(SimResolver { net: net.clone(), host, socket, answers, _attached: attached })
    }

    /// Asks `server` for `name`'s `qtype` records (recursion desired if `rd`): over UDP, and
    /// again over TCP if the answer was truncated.
    pub async fn ask(&mut self, server: Ipv4Addr, name: &str, qtype: u16, rd: bool) -> Result<dns::Dns> {
        let reply = self.ask_udp(server, name, qtype, rd).await?;
        if !reply.tc() {
            return Ok(reply);
        }
        self.ask_tcp(server, name, qtype, rd).await
    }

    /// One query over UDP, asked again if no answer comes within [`WAIT`].
    pub async fn ask_udp(&mut self, server: Ipv4Addr, name: &str, qtype: u16, rd: bool) -> Result<dns::Dns> {
        for _ in 0..TRIES {
            let id: u16 = rand::random();
            self.socket.send(SocketAddrV4::new(server, 53), 64, &dns::query(id, name, qtype, rd))?;
            let deadline = self.net.now() + WAIT;
            loop {
                tokio::select! {
                    Some((from, bytes)) = self.answers.recv() => {
                        // Only the answer from the server asked, with the id of the query, counts.
                        match dns::parse(&bytes) {
                            Ok(reply) if from == server && reply.id == id => return Ok(reply),
                            _ => continue,
                        }
                    }
                    () = self.net.sleep_until(deadline) => break,
                }
            }
        }
        bail!(en("no answer from {server} to {n} queries", &[("server", &server), ("n", &TRIES)]))
    }

    /// The same query over TCP: a connection, a two-byte length before each message.
    pub async fn ask_tcp(&self, server: Ipv4Addr, name: &str, qtype: u16, rd: bool) -> Result<dns::Dns> {
        let exchange = async {
            let mut stream = self.net.connect_from(self.host, SocketAddr::from((server, 53))).await?;
            let query = dns::query(rand::random(), name, qtype, rd);
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&query);
            stream.write_all(&framed).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        let reply = crate::net::timeout(TCP_WAIT, exchange)
            .await
            .map_err(|_| eyre!(en("no answer over TCP from {server}", &[("server", &server)])))??;
        let reply = dns::parse(&reply).map_err(|bad| eyre!(bad.reason))?;
        if reply.tc() {
            bail!(en("{server} sent a truncated answer over TCP", &[("server", &server)]));
        }
        Ok(reply)
    }
}

/// One line of what a response told the resolver, as its host's state.
pub fn learned(dns: &dns::Dns) -> String {
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

/// The IPv4 source of a frame.
fn ipv4_src(frame: &[u8]) -> Option<Ipv4Addr> {
    let b = frame.get(26..30)?;
    Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}
