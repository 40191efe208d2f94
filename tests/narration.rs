//! The narration walk: every lab on every wire it runs on, with and without faults on the
//! cable, and every step it produced must have narration true to its moment: a key, every
//! placeholder filled, and no claim the step contradicts (a TCP state it is not in, "no data"
//! on a segment with payload, a retransmission told as new). On the lab network the moment the
//! narration names must also agree with the states the real stack reports. On a Korean screen,
//! every note and malformed reason of every step reads in Korean, the narration's too.

use protolab::labs::{self, run};
use protolab::locale::{Lang, localize, localize_reason};
use protolab::narration::Narration;
use protolab::net::{Wire, sim::Faults};
use protolab::session::{Fate, Step, StepSink};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;

const STATES: [&str; 11] = [
    "LISTEN",
    "SYN-SENT",
    "SYN-RECEIVED",
    "ESTABLISHED",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
    "CLOSED",
];

/// One run of the walk.
struct Walk {
    lab: &'static str,
    wire: Wire,
    faults: Faults,
    capture: bool,
}

fn walk(lab: &'static str, wire: Wire) -> Walk {
    Walk { lab, wire, faults: Faults::default(), capture: false }
}

impl Walk {
    fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    fn captured(mut self) -> Self {
        self.capture = true;
        self
    }

    fn name(&self) -> String {
        format!("{} on {:?}{} {:?}", self.lab, self.wire, if self.capture { " (captured)" } else { "" }, self.faults)
    }
}

fn drop(n: u64) -> Faults {
    Faults { drop: vec![n], ..Faults::default() }
}

async fn steps(w: &Walk) -> (color_eyre::Result<()>, Vec<Step>) {
    let lab = labs::find(w.lab).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = run::RunOptions { faults: w.faults.clone(), capture: w.capture, ..run::RunOptions::free(w.wire) };
    let result = tokio::time::timeout(Duration::from_secs(60), run::exchange(lab, opts, StepSink::new(w.lab, tx)))
        .await
        .unwrap_or_else(|_| panic!("{} hangs", w.name()));
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    (result, steps)
}

/// States a narration key may name without the step's states saying so: what its moment
/// implies (RFC 9293 §3.3.2), for wires that cannot read the stack's states.
fn implied(key: &str) -> &'static [&'static str] {
    let base = key.split('@').next().unwrap_or(key);
    match base {
        "tcp.syn" => &["SYN-SENT", "LISTEN", "SYN-RECEIVED"],
        "tcp.syn-ack" => &["SYN-RECEIVED", "ESTABLISHED"],
        "tcp.ack.handshake" => &["ESTABLISHED"],
        "tcp.fin.first" | "tcp.fin.first.data" => &["FIN-WAIT-1", "CLOSE-WAIT"],
        "tcp.ack.fin" => &["CLOSE-WAIT", "FIN-WAIT-2"],
        "tcp.fin.second" | "tcp.fin.second.data" => &["LAST-ACK", "TIME-WAIT"],
        "tcp.ack.last" => &["TIME-WAIT", "CLOSED"],
        "tcp.syn~again" => &["SYN-SENT"],
        "tcp.syn-ack~again" => &["SYN-RECEIVED", "ESTABLISHED"],
        "tcp.syn-ack~dropped" => &["SYN-SENT", "SYN-RECEIVED"],
        "tcp.ack.handshake~dropped" => &["ESTABLISHED", "SYN-RECEIVED"],
        "tcp.ack.fin~dropped" => &["FIN-WAIT-1"],
        "tcp.ack.last~dropped" | "tcp.ack.last.fin-again" => &["LAST-ACK", "TIME-WAIT"],
        "tcp.ack.fin.fin-again" => &["CLOSE-WAIT"],
        "tcp.rst.closed" => &["TIME-WAIT"],
        "socket.close.second" => &["TIME-WAIT"],
        // DHCP client states a text may name by its moment (RFC 2131 §4.4).
        "dhcp.offer~again" | "dhcp.offer~dropped" => &["SELECTING"],
        "dhcp.request.reboot" => &["INIT-REBOOT"],
        "dhcp.nak.reboot" => &["INIT"],
        _ => &[],
    }
}

/// On the lab network, the states the real stack reports must be those the moment means:
/// (sender's state as it sent, receiver's once it took the frame in).
fn expected(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "tcp.syn" => ("SYN-SENT", ""),
        "tcp.syn-ack" => ("SYN-RECEIVED", "ESTABLISHED"),
        "tcp.ack.handshake" => ("ESTABLISHED", "ESTABLISHED"),
        "tcp.fin.first" | "tcp.fin.first.data" => ("FIN-WAIT-1", "CLOSE-WAIT"),
        "tcp.ack.fin" => ("CLOSE-WAIT", "FIN-WAIT-2"),
        "tcp.fin.second" | "tcp.fin.second.data" => ("LAST-ACK", "TIME-WAIT"),
        "tcp.ack.last" | "tcp.ack.last.fin-again" => ("TIME-WAIT", "CLOSED"),
        "tcp.rst.closed" => ("CLOSED", ""),
        "tcp.rst.refused" => ("CLOSED", "CLOSED"),
        _ => return None,
    })
}

/// Whether a step repeats an earlier one of its run, judged here on its own (not by the
/// lab's tracker): the same DHCP message type from the same sender with the same xid, or a TCP
/// segment from the same port starting at the same sequence number with SYN, FIN or data.
fn repeats(step: &Step, before: &mut HashSet<String>) -> bool {
    let id = match step.proto.as_str() {
        "DHCP" => format!("{}|{:?}|{:?}", step.from, step.value("DHCP.message_type"), step.value("DHCP.xid")),
        "TCP" if step.frame => {
            let flags = step.value("TCP.flags").unwrap_or_default();
            let carries = flags.contains("SYN") || flags.contains("FIN") || step.number("TCP.payload_len") > Some(0);
            if !carries {
                return false;
            }
            format!(
                "{:?}|{:?}|{:?}|{flags}",
                step.value("IPv4.src"),
                step.number("TCP.src_port"),
                step.number("TCP.seq")
            )
        }
        _ => return false,
    };
    // The cable's own copy is not the sender's repetition, nor is a router's passing it on (a
    // port forward keeps the source and the sequence number).
    step.fate != Fate::Duplicate && !step.forwarded && !before.insert(id)
}

/// Where a TCP state lies on the way from opening to closed (RFC 9293 §3.3.2), for the check that
/// no endpoint's state runs backwards; CLOSED counts as the end once the endpoint left its start
/// (a refused SYN-SENT ends CLOSED too).
fn rank(state: &str, opened: bool) -> u8 {
    match state {
        "CLOSED" if opened => 6,
        "LISTEN" | "CLOSED" => 0,
        "SYN-SENT" | "SYN-RECEIVED" => 1,
        "ESTABLISHED" => 2,
        "FIN-WAIT-1" | "CLOSE-WAIT" => 3,
        "FIN-WAIT-2" | "CLOSING" | "LAST-ACK" => 4,
        "TIME-WAIT" => 5,
        _ => 0,
    }
}

/// Each endpoint's TCP states, step after step of one connection, never run backwards.
fn backwards(steps: &[Step]) -> Vec<String> {
    let mut last: std::collections::HashMap<(String, String), (u8, String)> = Default::default();
    let mut out = Vec::new();
    for s in steps.iter().filter(|s| s.proto == "TCP" && s.frame) {
        let ports = [s.number("TCP.src_port"), s.number("TCP.dst_port")];
        let conn = format!("{:?}", ports.iter().flatten().min().zip(ports.iter().flatten().max()));
        for (who, state) in &s.states {
            let key = (conn.clone(), who.clone());
            let opened = last.get(&key).is_some_and(|(r, _)| *r >= 1);
            let r = rank(state, opened);
            if let Some((before, was)) = last.get(&key)
                && r < *before
            {
                out.push(format!("#{} {}: {who} goes back from {was} to {state}", s.seq, s.summary));
            }
            last.insert(key, (r, state.clone()));
        }
    }
    out
}

fn hangul(text: &str) -> bool {
    text.chars().any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c))
}

/// What a Korean screen would leave in English of a step's notes and malformed reason: the
/// accept key's derivation lines are formulas, and an OS error's text is the OS's. A reason
/// naming several checks is said check by check.
fn english_left(s: &Step, korean: &Narration, wire: Wire) -> Vec<String> {
    let mut out = Vec::new();
    for note in s.notes.iter().filter(|n| !n.starts_with("  = ")) {
        if !hangul(&localize(Lang::Ko, note)) {
            out.push(format!("the note {note:?} has no Korean"));
        }
    }
    if let Some(reason) = s.malformed.as_deref().filter(|_| s.kind != "socket.reset") {
        let said = localize_reason(Lang::Ko, reason);
        if !said.split("; ").all(hangul) {
            out.push(format!("the reason {reason:?} has no Korean: {said:?}"));
        }
        let key = korean.key(s, wire).unwrap_or_default();
        if korean.text(&key).is_some_and(|t| t.contains("{malformed}")) && !korean.explain(s, wire).contains(&*said) {
            out.push(format!("[{key}] in Korean does not give the reason in Korean: {said:?}"));
        }
    }
    out
}

/// Every problem with the narration of `steps`.
fn problems(w: &Walk, steps: &[Step]) -> Vec<String> {
    let lab = labs::find(w.lab).unwrap();
    let narration = Narration::for_lab(Lang::En, lab.as_ref());
    let korean = Narration::for_lab(Lang::Ko, lab.as_ref());
    let mut seen = HashSet::new();
    let mut out = backwards(steps);
    for s in steps {
        let at = format!("#{} {} ({})", s.seq, s.summary, s.kind);
        out.extend(english_left(s, &korean, w.wire).into_iter().map(|p| format!("{at}: {p}")));
        let Some(key) = narration.key(s, w.wire) else {
            out.push(format!("{at}: no narration (tried {:?})", Narration::keys(s, w.wire)));
            continue;
        };
        let missing = narration.missing(s, w.wire);
        if !missing.is_empty() {
            out.push(format!("{at}: [{key}] has no value for {missing:?}"));
        }
        let text = narration.explain(s, w.wire);
        let allowed: HashSet<&str> = s
            .states
            .iter()
            .map(|(_, st)| st.as_str())
            .chain(s.moved.iter().flat_map(|m| [m.from.as_str(), m.to.as_str()]))
            .chain(implied(&key).iter().copied())
            .collect();
        for name in STATES {
            // "CLOSED" inside "CLOSED" only; FIN-WAIT-1 is not FIN-WAIT-2.
            let named = text.match_indices(name).any(|(i, _)| {
                let after = text[i + name.len()..].chars().next();
                !after.is_some_and(|c| c == '-' || c.is_ascii_alphanumeric())
            });
            if named && !allowed.contains(name) {
                out.push(format!("{at}: [{key}] says {name}, the step is in {allowed:?}"));
            }
        }
        let payload = s.number("TCP.payload_len").unwrap_or(0);
        let says_empty = ["no data", "no payload", "carries no data", "no bytes"].iter().any(|p| text.contains(p));
        if says_empty && payload > 0 {
            out.push(format!("{at}: [{key}] says it has no data, it carries {payload} bytes"));
        }
        if repeats(s, &mut seen) {
            if !text.contains("again") {
                out.push(format!("{at}: [{key}] does not say it is sent again"));
            }
            for new in ["random", "picks", "chosen for this", "new for"] {
                if text.contains(new) {
                    out.push(format!("{at}: [{key}] says \"{new}\" of a retransmission"));
                }
            }
        }
        if w.wire == Wire::Sim
            && s.fate == Fate::Delivered
            && let Some((sender, receiver)) = expected(&s.kind)
        {
            let (got_sender, got_receiver) = (s.state(&s.from).unwrap_or("?"), s.state(&s.to).unwrap_or("?"));
            // A router keeps no connection state, and a host whose state is the lab's own (a
            // scanner's table) shows none: only the other ends are checked.
            let routers: Vec<&str> = (lab.info().network)().routers.iter().map(|r| r.name).collect();
            let unchecked = |who: &str, got: &str| routers.contains(&who) || (got != "?" && !STATES.contains(&got));
            let (sender, receiver) = (
                if unchecked(&s.from, got_sender) { got_sender } else { sender },
                if unchecked(&s.to, got_receiver) { "" } else { receiver },
            );
            if got_sender != sender || (!receiver.is_empty() && got_receiver != receiver) {
                out.push(format!(
                    "{at}: the moment means {from} {sender} → {to} {receiver}, the stack says {got_sender} → {got_receiver}",
                    from = s.from,
                    to = s.to
                ));
            }
        }
    }
    out
}

/// Runs each walk and fails with every problem found, naming the run.
async fn check(walks: Vec<Walk>, must_complete: bool) {
    let mut all = Vec::new();
    for w in &walks {
        let (result, steps) = steps(w).await;
        assert!(!steps.is_empty(), "{}: no steps", w.name());
        if must_complete && let Err(e) = &result {
            all.push(format!("{}: the run failed: {e:#}", w.name()));
        }
        all.extend(problems(w, &steps).into_iter().map(|p| format!("{}: {p}", w.name())));
    }
    assert!(all.is_empty(), "{} problems:\n{}", all.len(), all.join("\n"));
}

#[tokio::test]
async fn tcp_on_the_lab_network_with_every_single_drop() {
    let mut walks = vec![walk("tcp", Wire::Sim)];
    walks.extend((1..=13).map(|n| walk("tcp", Wire::Sim).faults(drop(n))));
    walks.push(walk("tcp", Wire::Sim).faults(Faults { duplicate: vec![4, 5, 6, 8], ..Faults::default() }));
    walks.push(walk("tcp", Wire::Sim).faults(Faults { corrupt: vec![1, 4, 6, 9], ..Faults::default() }));
    walks.extend((5..=11).map(|n| walk("tcp", Wire::Sim).faults(Faults { corrupt: vec![n], ..Faults::default() })));
    walks.extend((5..=11).map(|n| walk("tcp", Wire::Sim).faults(Faults { duplicate: vec![n], ..Faults::default() })));
    walks.push(walk("tcp", Wire::Sim).faults(Faults { delay: vec![(6, 300)], ..Faults::default() }));
    // Held back past the close: it arrives late, old, to a side that is gone.
    walks.push(walk("tcp", Wire::Sim).faults(Faults { delay: vec![(5, 3000)], ..Faults::default() }));
    check(walks, true).await;
}

#[tokio::test]
async fn stream_labs_on_the_lab_network_with_faults() {
    let mut walks = Vec::new();
    for lab in ["ws", "smtp", "pop3", "imap"] {
        walks.push(walk(lab, Wire::Sim));
        walks.push(walk(lab, Wire::Sim).faults(drop(6)));
        walks.push(walk(lab, Wire::Sim).faults(Faults {
            duplicate: vec![6, 7],
            corrupt: vec![8],
            ..Faults::default()
        }));
    }
    check(walks, true).await;
}

#[tokio::test]
async fn dhcp_with_every_single_drop_and_copies() {
    protolab::labs::dhcp::set_speedup(120);
    let mut walks = vec![walk("dhcp", Wire::Sim)];
    // The story survives any single lost frame, and says how it recovers.
    walks.extend((1..=17).map(|n| walk("dhcp", Wire::Sim).faults(drop(n))));
    walks.push(walk("dhcp", Wire::Sim).faults(Faults { duplicate: vec![1, 3], corrupt: vec![2], ..Faults::default() }));
    walks.push(walk("dhcp", Wire::Sim).faults(Faults { duplicate: vec![3, 4], ..Faults::default() }));
    check(walks, true).await;
}

/// ping across r1: every frame on both cables, with a lost, a damaged and a copied one; and
/// traceroute across r1, r2, r3; dns on a switched LAN; nat between an inside LAN and the outside.
#[tokio::test]
async fn ping_traceroute_dns_and_nat_with_faults() {
    let mut walks = vec![walk("ping", Wire::Sim)];
    walks.extend([3, 4, 6, 7, 8].map(|n| walk("ping", Wire::Sim).faults(drop(n))));
    walks.push(walk("ping", Wire::Sim).faults(Faults { corrupt: vec![6], duplicate: vec![8], ..Faults::default() }));
    walks.push(walk("ping", Wire::Sim).faults(Faults { corrupt: vec![1, 12], ..Faults::default() }));
    // traceroute: the probes, each router's answer, the silent r3, the server's Port Unreachable;
    // a lost probe (frame 3) and a lost answer (frame 4).
    walks.push(walk("traceroute", Wire::Sim));
    walks.extend([3, 4].map(|n| walk("traceroute", Wire::Sim).faults(drop(n))));
    // dns: referrals, answers, TC and TCP, NXDOMAIN; a lost query (frame 5), a lost answer (6),
    // a damaged query and a copied answer.
    walks.push(walk("dns", Wire::Sim));
    walks.extend([5, 6].map(|n| walk("dns", Wire::Sim).faults(drop(n))));
    walks.push(walk("dns", Wire::Sim).faults(Faults { corrupt: vec![5], duplicate: vec![6], ..Faults::default() }));
    check(walks, true).await;
    // traceroute -I: echo requests as probes (the lab's setting, for these walks only: no other
    // test of this binary runs traceroute), a lost probe (frame 3) and a lost answer (frame 4).
    protolab::labs::traceroute::set_icmp(true);
    let mut walks = vec![walk("traceroute", Wire::Sim)];
    walks.extend([3, 4].map(|n| walk("traceroute", Wire::Sim).faults(drop(n))));
    check(walks, true).await;
    protolab::labs::traceroute::set_icmp(false);
    let mut walks = Vec::new();
    // nat: the port forward and source NAT; remote's first SYN lost (frame 3), the forwarded
    // one lost (frame 7).
    walks.push(walk("nat", Wire::Sim));
    walks.extend([3, 7].map(|n| walk("nat", Wire::Sim).faults(drop(n))));
    check(walks, true).await;
}

/// portscan: the sweeps and both scans; a lost ARP reply (frame 16, web's), a lost connect-scan
/// SYN (frame 35: the port looks filtered), a damaged SYN-ACK and a copied RST.
#[tokio::test]
async fn portscan_with_faults() {
    let mut walks = vec![walk("portscan", Wire::Sim)];
    walks.extend([16, 35].map(|n| walk("portscan", Wire::Sim).faults(drop(n))));
    walks.push(walk("portscan", Wire::Sim).faults(Faults {
        corrupt: vec![36],
        duplicate: vec![40],
        ..Faults::default()
    }));
    check(walks, true).await;
}

#[tokio::test]
async fn every_lab_on_the_host_wire() {
    let mut walks = Vec::new();
    for lab in labs::registry() {
        let info = lab.info();
        if !info.runs_on(Wire::Host) {
            continue;
        }
        let icmp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::ICMPV4));
        if info.name == "ping" && icmp.is_err() && protolab::net::capture::icmp_socket().is_none() {
            eprintln!("no ICMP socket for this user (ping_group_range, CAP_NET_RAW): ping's host walk is skipped");
            continue;
        }
        walks.push(walk(info.name, Wire::Host));
        if protolab::net::capture::available().is_ok() {
            walks.push(walk(info.name, Wire::Host).captured());
        } else {
            eprintln!("packet capture is not available here: the captured walk is skipped");
        }
    }
    check(walks, true).await;
}

/// mail: the journey across five parties and mallory's forgery; a lost segment early (frame 6)
/// and later (frame 60), a damaged and a copied one; then with bob reading by POP3.
#[tokio::test]
async fn mail_journey_with_faults() {
    let mut walks = vec![walk("mail", Wire::Sim)];
    walks.extend([6, 60].map(|n| walk("mail", Wire::Sim).faults(drop(n))));
    walks.push(walk("mail", Wire::Sim).faults(Faults { corrupt: vec![40], duplicate: vec![41], ..Faults::default() }));
    check(walks, true).await;
    // bob reads by POP3 (the lab's setting, for these walks only: no other test of this binary
    // runs the mail lab).
    protolab::labs::mail::set_pop3(true);
    check(vec![walk("mail", Wire::Sim), walk("mail", Wire::Sim).faults(drop(150))], true).await;
    protolab::labs::mail::set_pop3(false);
}
