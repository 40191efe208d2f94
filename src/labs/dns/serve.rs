//! `protolab serve dns`: the lab's zones for outside clients (dig, a stub resolver, a student's
//! own code) on one real port, over UDP and TCP at once. Each UDP query, and each TCP
//! connection, is a session of its own; a malformed query is a malformed step and gets FORMERR
//! (or nothing, when not even its id can be read). Bounded: one datagram at a time, at most
//! [`MAX_CONNECTIONS`] TCP clients, each idle for at most [`IDLE`].

use super::zone::{self, Transport, Zone};
use crate::locale::en;
use crate::net::limits::{Limited, Limits};
use crate::net::{Dir, Gate, Recorder, Stream, TapStream};
use crate::session::{KEEP_BYTES, StepSink};
use crate::wire::dns;
use color_eyre::eyre::{Result, WrapErr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// TCP clients served at once; one more is closed at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a TCP client may stay silent before the server closes (RFC 7766 §6.2.3 asks for
/// seconds, not minutes).
const IDLE: Duration = Duration::from_secs(10);

/// Answers DNS over TCP on one connection: a two-byte length, the query, the answer, until the
/// client closes or stays silent for [`IDLE`].
pub async fn serve_stream(mut io: Stream, zones: Arc<Vec<Zone>>, gate: Arc<Gate>) -> Result<()> {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(IDLE, io.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            // Closed, reset, or silent: the connection is over.
            _ => return Ok(()),
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match tokio::time::timeout(IDLE, io.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e).wrap_err(en("the client closed in the middle of a query", &[])),
            Err(_) => return Ok(()),
        }
        let Some(reply) = zone::answer(&zones, &query, Transport::Tcp) else { return Ok(()) };
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        gate.clone().pass("server".into()).await;
        io.write_all(&framed).await?;
    }
}

/// Serves every lab zone on `listen` (UDP and TCP, the same port) until `sessions` are done,
/// or for ever.
pub async fn serve(listen: String, sink: StepSink, sessions: Option<u32>) -> Result<()> {
    let (tcp, udp) = bind(&listen).await?;
    eprintln!("listening on {}", tcp.local_addr()?);
    answer(tcp, udp, sink, sessions, Gate::free()).await
}

/// A TCP listener on `listen`, and a UDP socket on the same address and port.
pub async fn bind(listen: &str) -> Result<(tokio::net::TcpListener, tokio::net::UdpSocket)> {
    let tcp = tokio::net::TcpListener::bind(listen).await.wrap_err_with(|| format!("cannot listen on {listen}"))?;
    let addr = tcp.local_addr()?;
    let udp = tokio::net::UdpSocket::bind(addr).await.wrap_err_with(|| format!("cannot listen on {addr} (UDP)"))?;
    Ok((tcp, udp))
}

/// Answers on both sockets until `sessions` are done, or for ever.
pub async fn answer(
    tcp: tokio::net::TcpListener,
    udp: tokio::net::UdpSocket,
    sink: StepSink,
    sessions: Option<u32>,
    gate: Arc<Gate>,
) -> Result<()> {
    let zones = Arc::new(zone::all());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    let mut session = 0u32;
    let mut buf = vec![0u8; 65535];
    while sessions.is_none_or(|n| session < n) {
        tokio::select! {
            got = udp.recv_from(&mut buf) => {
                // An ICMP error from an earlier answer's client (port unreachable) and the
                // like: nothing to serve.
                let Ok((n, peer)) = got else { continue };
                session += 1;
                let sink = sink.for_session(session);
                let query = &buf[..n];
                sink.emit(dns::describe(query, 0).into_step("client", "server", query[..n.min(KEEP_BYTES)].to_vec(), n));
                let reply = zone::answer(&zones, query, Transport::Udp);
                if let Some(reply) = reply
                    && gate.clone().pass("server".into()).await == crate::net::Release::Send
                    && udp.send_to(&reply, peer).await.is_ok()
                {
                    sink.emit(dns::describe(&reply, 0).into_step("server", "client", reply.clone(), reply.len()));
                }
            }
            accepted = tcp.accept() => {
                let Ok((stream, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
                session += 1;
                let decoders: (Box<dyn crate::wire::Decoder>, Box<dyn crate::wire::Decoder>) =
                    (Box::new(dns::TcpDecoder), Box::new(dns::TcpDecoder));
                let rec = Recorder::new(sink.for_session(session), ["client", "server"], decoders);
                let io = TapStream::new(Limited::new(stream, Limits::default()), rec, Dir::ServerToClient, true, Gate::free());
                let (zones, gate) = (zones.clone(), gate.clone());
                let number = session;
                tasks.spawn(async move {
                    let result = serve_stream(Box::new(io), zones, gate).await;
                    drop(permit);
                    if let Err(e) = result {
                        eprintln!("session {number} ({peer}) ended: {e:#}");
                    }
                });
            }
            Some(_) = tasks.join_next() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
