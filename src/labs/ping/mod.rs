//! ping (ICMP echo, RFC 792) across a router: the client at 192.0.2.1 sends four echo requests
//! to the server at 203.0.113.5 through r1, one a second on the lab clock, and reads each reply
//! off its card as it arrives: the round trip on the lab clock, the TTL the reply came with. The
//! client's stack asks for its gateway's MAC first (ARP), r1 for the server's; each frame r1
//! forwards crosses the second cable as a step of its own, its TTL one less. A lost request or
//! reply shows as a sequence number with no answer, as ping shows it.

mod host;

use super::{Lab, LabFuture, LabInfo};
use crate::locale::en;
use crate::net::Wire;
use crate::net::sim::{CLIENT, SimNet, Topology};
use color_eyre::eyre::{Result, bail};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

static INFO: LabInfo = LabInfo {
    name: "ping",
    title: "ICMP",
    port: 0,
    rfcs: "RFC 792",
    about: "ping across a router: ARP, echo request and reply, TTL less one per hop, round-trip time, a lost reply",
    wires: &[Wire::Sim, Wire::Host],
    conn: None,
    network: one_router,
};

/// Echo requests sent, one each [`INTERVAL`], as `ping -c 4` does.
pub const COUNT: u16 = 4;
/// Between two requests, and how long each waits for its reply (lab clock).
pub(super) const INTERVAL: Duration = Duration::from_secs(1);
/// What each request carries, which the reply must bring back.
pub(super) const DATA: &[u8] = b"protolab ping: abcdefghijklmnopqrstuvwxyz";
/// The ping lab's network: client, r1, server.
fn one_router() -> Topology {
    Topology::chain(1)
}

pub struct Ping;

impl Lab for Ping {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("ping");

    fn packets(&self, net: &SimNet) -> Option<LabFuture> {
        Some(Box::pin(ping(net.clone())))
    }

    fn host_datagrams(
        &self,
        target: Option<&str>,
        sink: crate::session::StepSink,
        gate: std::sync::Arc<crate::net::Gate>,
    ) -> Option<LabFuture> {
        Some(Box::pin(host::run(target.map(str::to_string), sink, gate)))
    }
}

/// An ICMP echo request (type 8, code 0) with its checksum.
pub fn echo_request(ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut message = vec![8, 0, 0, 0];
    message.extend_from_slice(&ident.to_be_bytes());
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(data);
    let sum = crate::wire::frame::internet_checksum(&message, 2..4);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

/// An echo reply for `ident` in a frame: its sequence number and the TTL it arrived with.
fn echo_reply(frame: &[u8], ident: u16) -> Option<(u16, u8)> {
    let packet = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else { return None };
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &packet.transport else { return None };
    match icmp.icmp_type() {
        etherparse::Icmpv4Type::EchoReply(echo) if echo.id == ident => Some((echo.seq, ip.header().ttl())),
        _ => None,
    }
}

/// Milliseconds with two decimals, as ping prints them.
pub(super) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The client's program: four requests, each reply timed as it reaches the card.
async fn ping(net: SimNet) -> Result<()> {
    let ident: u16 = rand::random();
    let server = net.server_ip();
    let sent: Arc<Mutex<HashMap<u16, Duration>>> = Arc::default();
    // Bounded: the replies of this run, at most one per request (a copy is dropped).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u16>(usize::from(COUNT));
    let times = sent.clone();
    let _attached = net.attach(
        CLIENT,
        Box::new(move |frame, ctx| {
            let Some((seq, ttl)) = echo_reply(frame, ident) else { return };
            let Some(&at) = times.lock().unwrap_or_else(|e| e.into_inner()).get(&seq) else { return };
            let time = ms(ctx.now.saturating_sub(at));
            ctx.label =
                Some(en("icmp_seq={seq} ttl={ttl} time={ms} ms", &[("seq", &seq), ("ttl", &ttl), ("ms", &time)]));
            let _ = tx.try_send(seq);
        }),
    );
    let socket = net.echo_socket(CLIENT, ident)?;
    let start = net.now();
    let mut answered = Vec::new();
    for seq in 1..=COUNT {
        let at = start + INTERVAL * u32::from(seq - 1);
        net.sleep_until(at).await;
        // Like ping, say which sequence number went unanswered.
        let unanswered = (1..seq).rev().find(|n| !answered.contains(n));
        net.set_state(
            CLIENT,
            match unanswered {
                Some(lost) => {
                    en("icmp_seq={seq} sent; icmp_seq={lost} got no reply", &[("seq", &seq), ("lost", &lost)])
                }
                None => en("icmp_seq={seq} sent", &[("seq", &seq)]),
            },
        );
        sent.lock().unwrap_or_else(|e| e.into_inner()).insert(seq, net.now());
        socket.send(server, &echo_request(ident, seq, DATA))?;
        let deadline = at + INTERVAL;
        loop {
            tokio::select! {
                Some(got) = rx.recv() => {
                    if !answered.contains(&got) {
                        answered.push(got);
                    }
                    if got == seq {
                        break;
                    }
                }
                () = net.sleep_until(deadline) => break,
            }
        }
    }
    net.settle().await;
    let (count, got) = (usize::from(COUNT), answered.len());
    if got == 0 {
        bail!(en("no echo reply: {n} requests, none answered", &[("n", &count)]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_carries_a_checksum_that_sums_to_zero() {
        let m = echo_request(0x1234, 1, b"hi");
        assert_eq!(&m[..2], &[8, 0]);
        assert_eq!(&m[4..8], &[0x12, 0x34, 0, 1]);
        assert_eq!(crate::wire::frame::internet_checksum(&m, 2..4), u16::from_be_bytes([m[2], m[3]]));
    }
}
