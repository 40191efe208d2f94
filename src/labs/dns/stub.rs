//! The dns lab on the host wire: the lab's questions asked of a real server (`--connect
//! HOST:PORT`: a dnsmasq, an unbound, your resolver) or of the lab's own, on loopback, the way
//! a stub resolver asks: RD=1, over UDP from a random port with a random id, asked again if no
//! answer comes, and over TCP when the answer comes back truncated. The steps are the messages
//! as they crossed the sockets; each query waits at the gate before it goes.

use super::QUESTIONS;
use crate::locale::en;
use crate::net::Gate;
use crate::session::{KEEP_BYTES, StepSink};
use crate::wire::Decoder;
use crate::wire::dns::{self, TcpDecoder};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long to wait for an answer, and how often to ask.
const WAIT: Duration = Duration::from_secs(2);
const TRIES: u32 = 3;

/// The message in `bytes` as a step from `from` to `to`.
fn step(msg: crate::wire::Message, from: &str, to: &str, bytes: &[u8]) -> crate::session::Step {
    msg.into_step(from, to, bytes[..bytes.len().min(KEEP_BYTES)].to_vec(), bytes.len())
}

/// Asks `target` (else the lab's server, started on loopback) every question of the lab.
pub async fn run(target: Option<String>, sink: StepSink, gate: Arc<Gate>) -> Result<()> {
    let mut embedded = tokio::task::JoinSet::new();
    let target = match target {
        Some(target) => target,
        None => {
            let (tcp, udp) = super::serve::bind("127.0.0.1:0").await?;
            let addr = tcp.local_addr()?;
            // The client's steps say what crossed: the server's would say it twice.
            let (quiet, _) = tokio::sync::mpsc::unbounded_channel();
            embedded.spawn(super::serve::answer(tcp, udp, StepSink::new("dns", quiet), None, gate.clone()));
            addr.to_string()
        }
    };
    let server: SocketAddr = tokio::net::lookup_host(&target)
        .await
        .wrap_err_with(|| en("cannot resolve {target}", &[("target", &target)]))?
        .next()
        .ok_or_else(|| eyre!(en("cannot resolve {target}", &[("target", &target)])))?;
    let local: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    let mut answered = 0;
    for (name, qtype) in QUESTIONS {
        let mut reply = None;
        for _ in 0..TRIES {
            let id: u16 = rand::random();
            let query = dns::query(id, name, qtype, true);
            gate.clone().pass("client".into()).await;
            socket.send(&query).await?;
            sink.emit(step(dns::describe(&query, 0), "client", "server", &query));
            let mut buf = vec![0u8; 65535];
            // Only an answer with our id counts; anything else is shown and waited past. The
            // wait stops while the answer waits at the gate.
            while let Ok(got) = crate::net::timeout(WAIT, socket.recv(&mut buf)).await {
                let n = got.wrap_err_with(|| en("no answer from {target}", &[("target", &target)]))?;
                sink.emit(step(dns::describe(&buf[..n], 0), "server", "client", &buf[..n]));
                if let Ok(msg) = dns::parse(&buf[..n])
                    && msg.id == id
                    && msg.qr()
                {
                    reply = Some(msg);
                    break;
                }
            }
            if reply.is_some() {
                break;
            }
        }
        let Some(reply) = reply else {
            bail!(en("no answer from {server} to {n} queries", &[("server", &target), ("n", &TRIES)]))
        };
        if reply.tc() {
            gate.clone().pass("client".into()).await;
            over_tcp(server, name, qtype, &sink).await?;
        }
        answered += 1;
    }
    if answered == 0 {
        bail!(en("no answer from {target}", &[("target", &target)]));
    }
    Ok(())
}

/// The same question over TCP.
async fn over_tcp(server: SocketAddr, name: &str, qtype: u16, sink: &StepSink) -> Result<()> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        let query = dns::query(rand::random(), name, qtype, true);
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await?;
        if let crate::wire::Decoded::Message { msg, .. } = TcpDecoder.decode(&framed, KEEP_BYTES) {
            sink.emit(step(msg, "client", "server", &framed));
        }
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = len.to_vec();
        reply.resize(2 + usize::from(u16::from_be_bytes(len)), 0);
        stream.read_exact(&mut reply[2..]).await?;
        if let crate::wire::Decoded::Message { msg, .. } = TcpDecoder.decode(&reply, KEEP_BYTES) {
            sink.emit(step(msg, "server", "client", &reply));
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| eyre!(en("no answer over TCP from {server}", &[("server", &server)])))?
        .wrap_err_with(|| en("no answer over TCP from {server}", &[("server", &server)]))
}
