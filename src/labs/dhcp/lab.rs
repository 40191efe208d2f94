//! The DHCP lab on the lab network: the client host starts with no address and sends from
//! 0.0.0.0 in raw frames; the server host answers from UDP port 67 of its own stack. The lease
//! runs on an accelerated clock ([`speedup`]× the network's, which stops while a frame waits at
//! the gate), so a 120 s lease renews at T1 after 3 s and rebinds at T2 after 5¼ s.
//!
//! The story: DORA; renewal at T1 (unicast); the server goes quiet, so the next renewal gets no
//! answer and at T2 the client rebinds by broadcast (the server is back); INFORM; RELEASE; and a
//! client that asks at boot for an address the server will not give, which gets a NAK.

use super::client::{Client, ClientConfig, Outgoing, State};
use super::lease::Instant;
use super::server::Server;
use super::wire;
use crate::labs::{LabFuture, LabInfo};
use crate::locale::{en, term};
use crate::net::Wire;
use crate::net::sim::{Attached, CLIENT, SERVER, ServedUdp, SimNet, mac};
use color_eyre::eyre::{Result, WrapErr, bail};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub static INFO: LabInfo = LabInfo {
    name: "dhcp",
    title: "DHCP",
    port: 67,
    rfcs: "RFC 2131, RFC 2132",
    about: "DORA, renewal at T1, rebinding at T2, INFORM, RELEASE, a NAK after a reboot",
    wires: &[Wire::Sim],
    conn: None,
    network: crate::net::sim::Topology::dhcp,
};

/// How much faster the lease clock runs than the network's, unless set otherwise.
pub const DEFAULT_SPEEDUP: u32 = 20;
/// The speed-ups a presenter can pick (`[` and `]` in the TUI, `--lease-speedup`).
pub const SPEEDUPS: [u32; 6] = [5, 10, 20, 40, 60, 120];

/// The speed-up the next run takes; a run keeps the one it started with.
static SPEEDUP: AtomicU32 = AtomicU32::new(DEFAULT_SPEEDUP);

/// The lease clock's speed-up for runs starting now.
pub fn speedup() -> u32 {
    SPEEDUP.load(Ordering::Relaxed)
}

/// Sets the lease clock's speed-up for the runs that start from now on (at least 1).
pub fn set_speedup(times: u32) {
    SPEEDUP.store(times.max(1), Ordering::Relaxed);
}
/// The address the NAK lesson asks for: outside the server's pool.
const UNGIVEABLE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
/// How long one phase of the story may take on the network's clock.
const PHASE: Duration = Duration::from_secs(30);

/// The DHCP lab.
pub struct Dhcp;

impl crate::labs::Lab for Dhcp {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("dhcp");

    fn packets(&self, net: &SimNet) -> Option<LabFuture> {
        Some(Box::pin(story(net.clone())))
    }

    #[cfg(target_os = "linux")]
    fn serve_interface(
        &self,
        interface: &str,
        sink: crate::session::StepSink,
        sessions: Option<u32>,
    ) -> Option<LabFuture> {
        let interface = interface.to_string();
        Some(Box::pin(async move { super::host::serve(&interface, sink, sessions).await }))
    }

    #[cfg(target_os = "linux")]
    fn run_interface(&self, interface: &str, sink: crate::session::StepSink) -> Option<LabFuture> {
        let interface = interface.to_string();
        Some(Box::pin(async move { super::host::client(&interface, sink).await }))
    }
}

/// The lease clock now.
fn lab_now(net: &SimNet, speedup: u32) -> Instant {
    Instant::from_duration(net.now() * speedup)
}

/// Sleeps until the lease clock reads `at` (longer if frames wait at the gate meanwhile).
async fn until(net: &SimNet, at: Instant, speedup: u32) {
    loop {
        // The lease clock stops while a frame waits for the presenter: no use waking till then.
        net.while_held().await;
        let left = at - lab_now(net, speedup);
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left / speedup + Duration::from_millis(1)).await;
    }
}

/// The server host's DHCP server, on UDP port 67 of its stack: it takes each message the moment
/// the stack does (so the message's step shows the server's view after it), and answers except
/// while the story has it quiet (until `quiet` microseconds on the lease clock).
fn serve(net: &SimNet, quiet: Arc<AtomicU64>, speedup: u32) -> std::io::Result<ServedUdp> {
    let mut server = Server::default();
    net.serve_udp(
        SERVER,
        67,
        Box::new(move |payload, _from, ctx| {
            let now = Instant::from_duration(ctx.now * speedup);
            if (now.since_start().as_micros() as u64) < quiet.load(Ordering::Relaxed) {
                ctx.label = Some("silent (the lab stopped it)".into());
                return;
            }
            let Ok(msg) = wire::parse(payload) else { return };
            let reply = server.handle(&msg, now);
            ctx.label = view(&mut server, &msg, reply.as_ref(), now);
            if let Some(reply) = reply {
                ctx.replies.push((reply.bytes(), reply.addr()));
            }
        }),
    )
}

/// The server's view of the address a message was about, once it handled the message:
/// `192.0.2.10 OFFERED`, `BOUND`, `FREE` after a RELEASE, or `not in pool` for one it refused.
fn view(
    server: &mut Server,
    msg: &dhcproto::v4::Message,
    reply: Option<&super::server::Reply>,
    now: Instant,
) -> Option<String> {
    use dhcproto::v4::{DhcpOption, OptionCode};
    let requested = match msg.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    };
    let yiaddr = reply.map(|r| r.message.yiaddr()).filter(|a| !a.is_unspecified());
    let ciaddr = Some(msg.ciaddr()).filter(|a| !a.is_unspecified());
    let addr = yiaddr.or(ciaddr).or(requested)?;
    if !server.pool().config().in_pool(addr) {
        return Some(format!("{addr} not in pool"));
    }
    Some(format!("{addr} {}", server.pool_mut().state(addr, now)))
}

/// The client host's program: the DHCP client, shared by the card (frames, handled as they
/// arrive, so each step shows the state they lead to) and the story (timers and phases).
struct ClientSide {
    client: Client,
    /// Where unicast goes: the server's MAC, learned from its frames.
    server_mac: [u8; 6],
    /// The xid of the latest reply that reached the client.
    last_reply: Option<u32>,
}

/// The client's state as the state row shows it.
fn label(client: &Client) -> String {
    let state = client.state();
    match (state, client.lease()) {
        (State::Bound | State::Renewing | State::Rebinding, Some(lease)) => format!("{state} {}", lease.addr),
        _ => state.to_string(),
    }
}

/// A message in a frame built by hand: the host may have no address to send from.
fn frame(out: &Outgoing, server_mac: [u8; 6]) -> Option<Vec<u8>> {
    let dst_mac = if out.is_broadcast() { [0xff; 6] } else { server_mac };
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(CLIENT), dst_mac)
        .ipv4(out.from.ip().octets(), out.to.ip().octets(), 64)
        .udp(out.from.port(), out.to.port())
        .write(&mut frame, &out.bytes())
        .ok()?;
    Some(frame)
}

/// The DHCP client on the client host's card.
fn attach(net: &SimNet, side: Arc<Mutex<ClientSide>>, changed: Arc<Notify>, speedup: u32) -> Attached {
    net.attach(
        CLIENT,
        Box::new(move |bytes, ctx| {
            let Some((_, 68, range)) = crate::wire::frame::udp_payload(bytes) else { return };
            // A damaged frame fails its checksums: a real client's stack drops it unread.
            if crate::wire::frame::decode(bytes).malformed.is_some() {
                return;
            }
            let Ok(msg) = wire::parse(&bytes[range]) else { return };
            let mut side = side.lock().unwrap_or_else(|e| e.into_inner());
            side.server_mac.copy_from_slice(&bytes[6..12]);
            side.last_reply = Some(msg.xid());
            let before = side.client.lease().map(|l| l.addr);
            let out = side.client.on_message(&msg, Instant::from_duration(ctx.now * speedup));
            // The interface takes the leased address (or gives it up).
            let after = side.client.lease().map(|l| (l.addr, prefix(l.mask)));
            if after.map(|a| a.0) != before {
                ctx.address = Some(after);
            }
            if let Some(f) = out.and_then(|o| frame(&o, side.server_mac)) {
                ctx.send.push(f);
            }
            ctx.label = Some(label(&side.client));
            changed.notify_one();
        }),
    )
}

/// The story's hold on the client: timers, phases, and what it sends by itself.
struct Story {
    net: SimNet,
    side: Arc<Mutex<ClientSide>>,
    /// Rings when the card handled a frame.
    changed: Arc<Notify>,
    /// The lease clock's speed-up for this run.
    speedup: u32,
}

impl Story {
    /// Runs `f` on the client, then sends what it returned. The client's lock is never held
    /// while the network's is taken: the card takes them the other way round.
    fn act(&self, f: impl FnOnce(&mut Client, Instant) -> Option<Outgoing>) {
        // The clock takes the network's lock: read it before taking the client's.
        let now = lab_now(&self.net, self.speedup);
        let (out, label) = {
            let mut side = self.side.lock().unwrap_or_else(|e| e.into_inner());
            let out = f(&mut side.client, now);
            (out.and_then(|o| frame(&o, side.server_mac)), label(&side.client))
        };
        self.net.set_state(CLIENT, label);
        if let Some(frame) = out {
            self.net.send_raw(CLIENT, frame);
        }
    }

    fn client<T>(&self, f: impl FnOnce(&Client) -> T) -> T {
        f(&self.side.lock().unwrap_or_else(|e| e.into_inner()).client)
    }

    /// The lease clock now, where a phase of the story begins.
    fn now(&self) -> Instant {
        lab_now(&self.net, self.speedup)
    }

    /// Lets frames and timers drive the client until `done` holds: retransmissions, T1, T2,
    /// expiry and starting over happen as they would, so a lost frame is recovered from.
    async fn run_until(&self, what: &str, done: impl Fn(&ClientSide) -> bool) -> Result<()> {
        let work = async {
            loop {
                let changed = self.changed.notified();
                let (finished, timer) = {
                    let side = self.side.lock().unwrap_or_else(|e| e.into_inner());
                    (done(&side), side.client.next_timer())
                };
                if finished {
                    return;
                }
                tokio::select! {
                    () = changed => {}
                    () = until(&self.net, timer.unwrap_or(Instant::ZERO), self.speedup), if timer.is_some() => {
                        self.act(|c, now| c.on_timer(now));
                    }
                }
            }
        };
        match crate::net::timeout(PHASE, work).await {
            Ok(()) => Ok(()),
            Err(_) => bail!(en(
                "no {what} within {s} s (client {state})",
                &[("what", &what), ("s", &PHASE.as_secs()), ("state", &self.client(|c| c.state()))]
            )),
        }
    }
}

/// The prefix length of a subnet mask (24 for 255.255.255.0).
fn prefix(mask: Option<Ipv4Addr>) -> u8 {
    mask.map_or(24, |m| u32::from(m).count_ones() as u8)
}

async fn story(net: SimNet) -> Result<()> {
    net.set_address(CLIENT, None);
    let quiet = Arc::new(AtomicU64::new(0));
    let speedup = speedup();
    // Bound before the client speaks, so the first DISCOVER finds the server listening.
    let _server = serve(&net, quiet.clone(), speedup).wrap_err(term("binding UDP port 67"))?;
    // Port 68 is bound, so the client's stack takes the unicast replies instead of answering
    // "port unreachable"; the DHCP client itself reads its frames off the card.
    let _port68 = net.serve_udp(CLIENT, 68, Box::new(|_, _, _| {}))?;
    let side = Arc::new(Mutex::new(ClientSide {
        client: Client::new(ClientConfig::default()),
        server_mac: [0xff; 6],
        last_reply: None,
    }));
    let changed = Arc::new(Notify::new());
    let _attached = attach(&net, side.clone(), changed.clone(), speedup);
    let story = Story { net: net.clone(), side, changed, speedup };
    net.set_state(SERVER, term("listening on 67"));

    // Each phase is judged by what the client went through since the phase began (a frame may
    // carry it through a state between two looks), so a lost frame that changes the path (a
    // renewal lost, then a rebind; a rebind lost, then a lease from scratch) still ends it.
    let went = |from: Option<State>, to: State, since: Instant| {
        move |side: &ClientSide| {
            side.client.transitions().any(|t| t.at >= since && t.to == to && from.is_none_or(|f| t.from == f))
        }
    };

    // DORA: DISCOVER, OFFER, REQUEST, ACK.
    let since = story.now();
    story.act(|c, now| c.start(now));
    story.run_until(term("lease"), went(None, State::Bound, since)).await?;

    // T1: the client renews by unicast, and the server extends the lease (had the renewal been
    // lost, the client would rebind at T2).
    let since = story.now();
    story.run_until(term("renewal"), went(None, State::Bound, since)).await?;

    // The server goes quiet until T2: at T1 the renewal goes unanswered; at T2 the client
    // rebinds by broadcast, and the server (back again) answers.
    let since = story.now();
    let t2 = story.client(|c| c.lease().map_or(Duration::ZERO, |l| l.t2_at().since_start()));
    quiet.store(t2.as_micros() as u64, Ordering::Relaxed);
    story.run_until(term("lease after rebinding"), went(None, State::Bound, since)).await?;

    // INFORM: with its address, the client asks only for the other settings; the server's
    // ACK carries no lease, and nothing about the lease changes. Unanswered, it asks again.
    story.act(|c, now| c.inform(now));
    let xid = story.client(|c| c.xid().0);
    story.run_until(term("answer to INFORM"), |side: &ClientSide| side.last_reply == Some(xid)).await?;

    // RELEASE: the client gives the address back and forgets it.
    story.act(|c, now| c.release(now));
    net.set_address(CLIENT, None);

    // A client that boots asking for an address the server will not give: NAK.
    let since_reboot = story.now();
    story.act(|c, now| {
        *c = Client::new(ClientConfig { requested_ip: Some(UNGIVEABLE), ..ClientConfig::default() });
        c.start(now)
    });
    story.run_until("NAK", went(Some(State::Rebooting), State::Init, since_reboot)).await?;
    Ok(())
}
