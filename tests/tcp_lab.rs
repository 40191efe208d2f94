//! The TCP lab on the sim wire: the real smoltcp stack's segments, decoded from the frames
//! that crossed the lab's cable.

use protolab::labs::{self, run};
use protolab::net::Wire;
use protolab::net::sim::Faults;
use protolab::session::{Step, StepSink};
use std::time::Duration;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(60);

async fn run_tcp(faults: Faults) -> (color_eyre::Result<()>, Vec<Step>) {
    let lab = labs::find("tcp").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = run::RunOptions { faults, ..run::RunOptions::free(Wire::Sim) };
    let result =
        tokio::time::timeout(LIMIT, run::exchange(lab, opts, StepSink::new("tcp", tx))).await.expect("never hangs");
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    (result, steps)
}

fn num(s: &Step, path: &str) -> u64 {
    s.value(path).unwrap_or_else(|| panic!("no {path} in {}", s.summary)).parse().unwrap()
}

fn flags(s: &Step) -> String {
    s.value("TCP.flags").unwrap_or_default()
}

fn tcp(steps: &[Step]) -> Vec<&Step> {
    steps.iter().filter(|s| s.proto == "TCP").collect()
}

#[tokio::test]
async fn handshake_data_close_and_rst() {
    let (result, steps) = run_tcp(Faults::default()).await;
    result.unwrap();
    assert!(steps.iter().all(|s| s.frame && s.malformed.is_none()), "{steps:#?}");
    assert_eq!(steps[0].kind, "arp.request");
    assert_eq!(steps[1].kind, "arp.reply");
    let segs = tcp(&steps);

    // The three-way handshake: ack = peer's seq + 1.
    let (syn, syn_ack, ack) = (segs[0], segs[1], segs[2]);
    assert_eq!((syn.from.as_str(), flags(syn).as_str()), ("client", "SYN"));
    assert_eq!((syn_ack.from.as_str(), flags(syn_ack).as_str()), ("server", "SYN,ACK"));
    assert_eq!(num(syn_ack, "TCP.ack"), (num(syn, "TCP.seq") + 1) % (1 << 32));
    assert_eq!(flags(ack), "ACK");
    assert_eq!(num(ack, "TCP.seq"), num(syn, "TCP.seq") + 1);
    assert_eq!(num(ack, "TCP.ack"), (num(syn_ack, "TCP.seq") + 1) % (1 << 32));
    assert!(syn.field("TCP.option.mss").is_some(), "the SYN announces its MSS");
    let state = |s: &Step, who: &str| s.states.iter().find(|(n, _)| n == who).map(|(_, st)| st.clone()).unwrap();
    assert_eq!(state(syn, "client"), "SYN-SENT");
    assert_eq!(state(syn_ack, "client"), "ESTABLISHED");
    assert_eq!(state(syn_ack, "server"), "SYN-RECEIVED");
    assert_eq!(state(ack, "server"), "ESTABLISHED");

    // Data sent equals data echoed.
    let data: Vec<_> = segs.iter().filter(|s| num(s, "TCP.payload_len") > 0).collect();
    assert_eq!(data.len(), 2, "the data and its echo");
    assert_eq!(data[0].value("TCP.payload").as_deref(), Some("hello, TCP"));
    assert_eq!(data[1].value("TCP.payload"), data[0].value("TCP.payload"));
    assert_eq!((data[0].from.as_str(), data[1].from.as_str()), ("client", "server"));

    // The close: a FIN each way, each acknowledged; the client ends in TIME-WAIT.
    let fins: Vec<_> = segs.iter().filter(|s| flags(s).contains("FIN")).collect();
    assert_eq!(fins.iter().map(|s| s.from.as_str()).collect::<Vec<_>>(), ["client", "server"]);
    for fin in &fins {
        let acked = segs.iter().any(|s| s.from != fin.from && num(s, "TCP.ack") == num(fin, "TCP.seq") + 1);
        assert!(acked, "the FIN from {} is acknowledged", fin.from);
    }
    assert!(steps.iter().any(|s| state(s, "client").contains("TIME-WAIT")), "the client waits in TIME-WAIT");

    // Then a SYN to a closed port, answered by RST.
    let rst = segs.iter().rposition(|s| flags(s).contains("RST")).expect("an RST");
    let probe = segs[rst - 1];
    assert_eq!(flags(probe), "SYN");
    assert_eq!(num(probe, "TCP.dst_port"), 8);
    assert_eq!(segs[rst].from, "server");
    assert_eq!(num(segs[rst], "TCP.ack"), num(probe, "TCP.seq") + 1);
}

#[tokio::test]
async fn initial_sequence_numbers_differ_between_runs() {
    let (_, a) = run_tcp(Faults::default()).await;
    let (_, b) = run_tcp(Faults::default()).await;
    assert_ne!(num(tcp(&a)[0], "TCP.seq"), num(tcp(&b)[0], "TCP.seq"));
}

#[tokio::test]
async fn a_dropped_syn_ack_is_retransmitted_with_the_same_seq() {
    let (_, clean) = run_tcp(Faults::default()).await;
    let n = clean.iter().position(|s| flags(s) == "SYN,ACK").unwrap() as u64 + 1;
    let (result, steps) = run_tcp(Faults { drop: vec![n], ..Faults::default() }).await;
    result.expect("the connection still completes");
    let syn_acks: Vec<_> = steps.iter().filter(|s| flags(s) == "SYN,ACK").collect();
    assert!(syn_acks.len() >= 2, "{steps:#?}");
    assert!(syn_acks[0].summary.starts_with("[dropped]"));
    assert_eq!(num(syn_acks[0], "TCP.seq"), num(syn_acks[1], "TCP.seq"), "a retransmission, not a new SYN-ACK");
    assert!(syn_acks[1].t_us - syn_acks[0].t_us >= 500_000, "after the retransmission timer");
}

#[tokio::test]
async fn a_corrupted_frame_is_discarded_and_sent_again() {
    let (_, clean) = run_tcp(Faults::default()).await;
    let n = clean.iter().position(|s| s.proto == "TCP" && num(s, "TCP.payload_len") > 0).unwrap() as u64 + 1;
    let (result, steps) = run_tcp(Faults { corrupt: vec![n], ..Faults::default() }).await;
    result.expect("the data still arrives");
    let bad = steps.iter().find(|s| s.summary.starts_with("[corrupted]")).unwrap();
    assert!(bad.malformed.as_deref().unwrap_or_default().contains("checksum"), "{bad:?}");
}

#[tokio::test]
async fn random_faults_complete_or_fail_clearly_never_hang() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7c9);
    let mut cases = Vec::new();
    for _ in 0..12 {
        let mut f = Faults::default();
        for _ in 0..rng.random_range(1..4) {
            let n = rng.random_range(1..16);
            match rng.random_range(0..3) {
                0 => f.drop.push(n),
                1 => f.duplicate.push(n),
                _ => f.delay.push((n, rng.random_range(10..400))),
            }
        }
        cases.push(f);
    }
    let runs = cases.iter().cloned().map(|f| tokio::spawn(run_tcp(f)));
    for (faults, run) in cases.iter().zip(runs) {
        let (result, steps) = run.await.unwrap();
        match result {
            Ok(()) => {
                let data: Vec<_> = tcp(&steps)
                    .into_iter()
                    .filter(|s| s.from == "client" && s.value("TCP.payload").as_deref() == Some("hello, TCP"))
                    .collect();
                assert!(!data.is_empty(), "{faults:?}: the data crossed");
            }
            Err(e) => assert!(!e.to_string().is_empty(), "{faults:?}: a reason"),
        }
    }
}

/// Presses → for every frame after `pause`, as a presenter who talks that long about each, but
/// `d` (drop) for the `n`th frame that waits at the gate. Also returns the run's wall time.
async fn run_stepping_with_drop(n: usize, pause: Duration) -> (color_eyre::Result<()>, Vec<Step>, Duration) {
    use protolab::net::{Gate, GateEvent, Release};
    let lab = labs::find("tcp").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (gtx, mut grx) = mpsc::unbounded_channel();
    let gate = Gate::stepping(gtx);
    let presser = {
        let gate = gate.clone();
        tokio::spawn(async move {
            let mut waits = 0;
            while let Some(GateEvent::Waiting { .. }) = grx.recv().await {
                waits += 1;
                tokio::time::sleep(pause).await;
                let release = if waits == n { Release::Drop } else { Release::Send };
                assert!(gate.release_one(release));
            }
        })
    };
    let started = std::time::Instant::now();
    let opts = run::RunOptions { gate, ..run::RunOptions::free(Wire::Sim) };
    let result =
        tokio::time::timeout(LIMIT, run::exchange(lab, opts, StepSink::new("tcp", tx))).await.expect("never hangs");
    let wall = started.elapsed();
    presser.abort();
    let mut steps = Vec::new();
    while let Ok(s) = rx.try_recv() {
        steps.push(s);
    }
    (result, steps, wall)
}

#[tokio::test]
async fn dropping_the_waiting_syn_ack_at_the_gate_brings_a_retransmission() {
    // Frames at the gate: ARP request, ARP reply, SYN, SYN-ACK (the 4th).
    let (result, steps, _) = run_stepping_with_drop(4, Duration::ZERO).await;
    result.expect("the connection still completes");
    let syn_acks: Vec<_> = steps.iter().filter(|s| flags(s) == "SYN,ACK").collect();
    assert!(syn_acks[0].summary.starts_with("[dropped]"), "{:?}", syn_acks[0].summary);
    assert!(syn_acks.len() >= 2);
    assert_eq!(num(syn_acks[0], "TCP.seq"), num(syn_acks[1], "TCP.seq"));
    let syns = steps.iter().filter(|s| flags(s) == "SYN" && num(s, "TCP.dst_port") == 7).count();
    assert_eq!(syns, 2, "the client's SYN timer fired: it sent its SYN again");
}

#[tokio::test]
async fn a_duplicated_segment_is_acknowledged_again() {
    let (_, clean) = run_tcp(Faults::default()).await;
    let n = clean.iter().position(|s| s.proto == "TCP" && num(s, "TCP.payload_len") > 0).unwrap() as u64 + 1;
    let (result, steps) = run_tcp(Faults { duplicate: vec![n], ..Faults::default() }).await;
    result.expect("the exchange completes");
    let copy = steps.iter().position(|s| s.summary.starts_with("[duplicate]")).expect("the copy crossed");
    let expected = num(&steps[copy], "TCP.seq") + num(&steps[copy], "TCP.payload_len");
    let acks = tcp(&steps[copy..]).into_iter().filter(|s| s.from == "server" && num(s, "TCP.ack") == expected).count();
    assert!(acks >= 2, "the data and its copy are each acknowledged: {acks}");
    // The data reached the application once: one echo.
    let echoes = tcp(&steps).into_iter().filter(|s| s.from == "server" && num(s, "TCP.payload_len") > 0).count();
    assert_eq!(echoes, 1);
}

/// A presenter who talks 150 ms about every frame: the lab clock stops meanwhile, so the
/// retransmitted SYN after a lost SYN-ACK reads as the stack's own timer (about 1 s), and the
/// states each step shows are those it crossed with, with who moved on while it waited.
#[tokio::test]
async fn a_slow_presenter_changes_neither_the_timers_nor_the_states() {
    // The 4th frame at the gate is the SYN-ACK: lost.
    let (result, steps, wall) = run_stepping_with_drop(4, Duration::from_millis(150)).await;
    result.unwrap();
    let syns: Vec<_> = steps.iter().filter(|s| flags(s) == "SYN" && num(s, "TCP.dst_port") == 7).collect();
    let timer = (syns[1].t_us - syns[0].t_us) as f64 / 1e6;
    assert!((0.9..1.6).contains(&timer), "the SYN timer reads {timer:.3} s on the lab clock");
    let lab_time = Duration::from_micros(steps.last().unwrap().t_us);
    assert!(wall > lab_time + Duration::from_secs(1), "the presenter's {wall:?} are not in the lab's {lab_time:?}");

    // The server's ACK of the client's FIN: sent in CLOSE-WAIT; its program closed while the
    // ACK waited, so it is LAST-ACK now and its FIN waits behind.
    let ack_of_fin = steps.iter().find(|s| s.kind == "tcp.ack.fin").expect("the ACK of the FIN");
    assert_eq!((ack_of_fin.state("server"), ack_of_fin.state("client")), (Some("CLOSE-WAIT"), Some("FIN-WAIT-2")));
    let moved: Vec<_> = ack_of_fin.moved.iter().map(|m| (m.who.as_str(), m.from.as_str(), m.to.as_str())).collect();
    assert_eq!(moved, [("server", "CLOSE-WAIT", "LAST-ACK")]);
    assert!(ack_of_fin.moved[0].waiting.contains("FIN"), "{:?}", ack_of_fin.moved);
    // Taking the SYN in, the server went to SYN-RECEIVED, and its SYN-ACK waited.
    let first = syns[0];
    assert_eq!(first.state("server"), Some("SYN-RECEIVED"));
    assert!(first.moved.iter().any(|m| m.who == "server" && m.from == "LISTEN" && m.waiting.starts_with("SYN,ACK")));
}

/// On the host wire a capture has no stack to read: the states come from the segments. On the
/// lab network both exist, so the reading from the segments is checked against the real stack's,
/// step by step, with and without lost frames.
#[tokio::test]
async fn the_states_read_from_the_segments_are_the_stacks() {
    use protolab::session::moment::Moments;
    let mut faults = vec![Faults::default()];
    faults.extend((1..=13).map(|n| Faults { drop: vec![n], ..Faults::default() }));
    faults.extend((3..=13).map(|n| Faults { corrupt: vec![n], ..Faults::default() }));
    faults.extend((3..=13).map(|n| Faults { duplicate: vec![n], ..Faults::default() }));
    faults.extend([(5, 3000), (6, 300), (8, 500), (9, 200)].map(|d| Faults { delay: vec![d], ..Faults::default() }));
    let mut wrong = Vec::new();
    for f in faults {
        let (result, steps) = run_tcp(f.clone()).await;
        result.unwrap();
        let mut moments = Moments::default();
        for real in steps.iter().filter(|s| s.proto == "TCP") {
            let mut read = Step { states: Vec::new(), kind: "tcp".into(), again: false, ..real.clone() };
            moments.place(&mut read);
            for (who, state) in &read.states {
                if real.state(who) != Some(state.as_str()) {
                    wrong.push(format!(
                        "{f:?} #{} {}: {who} read {state}, the stack says {:?}",
                        real.seq,
                        real.summary,
                        real.state(who)
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
