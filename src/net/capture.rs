//! Packet capture on the host wire (Linux, CAP_NET_RAW): the kernel's own TCP segments of a
//! lab's loopback connections, as steps beside the application messages. One capture socket
//! serves the whole process, and each run takes the frames of its own ports. The binary makes that
//! socket before its runtime starts any thread ([`open_early`]) and then gives up CAP_NET_RAW,
//! so no thread of the process holds it while labs talk to strangers. Without the capability, [`Capture::open`] says in one
//! line what is missing and how to grant it, and nothing else changes.
//!
//! A message is recorded the moment a program writes it, before its kernel has sent the
//! segment that carries it, and the capture sees that segment a little later. So that the
//! steps keep the order things really happened in (the SYN before the greeting, a request's
//! segment before its answer), a run's messages wait in its [`Capture`] until the segments that
//! carried their bytes are captured, and then follow them, naming them in `carried_by`. A
//! message whose segments never show up (the capture lost them) goes on after a short wait,
//! saying so.

use crate::net::Dir;
use crate::session::{Step, StepSink};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast};

/// How to grant the capability, for the one-line hint.
pub const HINT: &str =
    "packet capture is off: it needs CAP_NET_RAW (run as root, or once: sudo setcap cap_net_raw+ep $(which protolab))";

/// How long a message waits for its segments before it goes on without them.
const PATIENCE: Duration = Duration::from_millis(250);

/// One captured frame, shared by every run that looks at it (no copy per run).
type Frame = Arc<[u8]>;

/// Frames from the loopback interface, for every run of this process.
static FRAMES: OnceLock<Result<broadcast::Sender<Frame>, String>> = OnceLock::new();

/// Frames the capture lost so far, in this process: dropped by the kernel's packet socket, or
/// by a run that could not keep up.
static LOST: AtomicU64 = AtomicU64::new(0);

/// How many captured frames were lost so far (shown on screen when not 0).
pub fn lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// Whether this process can capture (opening the capture if it was not open yet); `Err` is the
/// one-line reason it cannot.
pub fn available() -> Result<(), String> {
    FRAMES.get_or_init(start).as_ref().map(|_| ()).map_err(Clone::clone)
}

/// A run's view of the capture: the segments of its own connections become its steps, and its
/// messages follow the segments that carried them.
pub struct Capture {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the run's capture task: a message was queued (its deadline may be the first).
    queued: Notify,
    /// Rings for whoever waits for the capture to settle: a segment was recorded.
    seen: Notify,
    sink: StepSink,
}

/// What a run's capture knows.
#[derive(Default)]
struct State {
    /// The servers' ports of the run's connections: a segment from one goes server → client.
    ports: HashSet<u16>,
    /// Names of connections by server port, for labs with more than one.
    conns: HashMap<u16, String>,
    /// The port of the connection whose messages are sequenced (the lab's main one).
    main: Option<u16>,
    /// Per direction of the main connection: the ISN, and which segment step carried which
    /// stream offsets (from the first byte after the SYN).
    isn: [Option<u32>; 2],
    carried: [Vec<(Range<u64>, u64)>; 2],
    /// How far each direction's stream has been seen in captured segments.
    covered: [u64; 2],
    /// Messages waiting for their segments, in the order they were written.
    waiting: VecDeque<Waiting>,
    /// Segments recorded so far.
    segments: usize,
}

struct Waiting {
    dir: usize,
    range: Range<u64>,
    step: Step,
    since: Instant,
}

impl Capture {
    /// Starts recording the loopback segments of connections to `port` into `sink`; messages
    /// handed to [`Capture::message`] are put after their segments. `Err` is the one-line
    /// reason there is no capture.
    pub fn open(sink: StepSink, port: u16) -> Result<Capture, String> {
        let frames = FRAMES.get_or_init(start).clone()?;
        let mut rx = frames.subscribe();
        let state = State { ports: HashSet::from([port]), main: Some(port), ..State::default() };
        let shared = Arc::new(Shared { state: Mutex::new(state), queued: Notify::new(), seen: Notify::new(), sink });
        let run = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let deadline = run.lock().waiting.front().map(|w| w.since + PATIENCE);
                tokio::select! {
                    frame = rx.recv() => match frame {
                        Ok(frame) => run.segment(&frame),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            LOST.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    () = run.queued.notified() => {}
                    () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {
                        run.release(true);
                    }
                }
            }
        });
        Ok(Capture { shared, task })
    }

    /// Also records the segments of connections to `port` (a second connection of the lab),
    /// named `conn` if given.
    pub fn watch(&self, port: u16, conn: Option<String>) {
        let mut s = self.shared.lock();
        s.ports.insert(port);
        if let Some(name) = conn {
            s.conns.insert(port, name);
        }
    }

    /// Names the connection to `port` in its segments' steps.
    pub fn name(&self, port: u16, conn: String) {
        self.shared.lock().conns.insert(port, conn);
    }

    /// A message of the main connection, `range` its place in the `dir` stream: it waits for
    /// the segments that carry those bytes, then follows them.
    pub fn message(&self, dir: Dir, range: Range<u64>, step: Step) {
        let dir = dir as usize;
        let mut s = self.shared.lock();
        s.waiting.push_back(Waiting { dir, range, step, since: Instant::now() });
        drop(s);
        self.shared.release(false);
        self.shared.queued.notify_one();
    }

    /// Waits until every message went out and no segment came for `quiet` (at most `limit`): the
    /// capture runs a little behind the sockets (the last FIN and ACK come after the last
    /// message).
    pub async fn settle(&self, quiet: Duration, limit: Duration) {
        let wait = async {
            loop {
                let rung = self.shared.seen.notified();
                let (segments, waiting) = {
                    let s = self.shared.lock();
                    (s.segments, !s.waiting.is_empty())
                };
                if !waiting
                    && tokio::time::timeout(quiet, rung).await.is_err()
                    && self.shared.lock().segments == segments
                {
                    return;
                }
                if waiting {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.shared.release(true);
    }
}

#[cfg(test)]
impl Capture {
    /// A capture that sees no frames (no raw socket): what waits in it goes out once overdue.
    pub(crate) fn without_frames(sink: StepSink) -> Capture {
        let (queued, seen) = (Notify::new(), Notify::new());
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), queued, seen, sink });
        Capture { shared, task: tokio::spawn(async {}) }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A captured frame: a step if it is a TCP segment of one of the run's connections; then
    /// the messages it completes.
    fn segment(&self, frame: &[u8]) {
        let mut s = self.lock();
        let Some((mut step, server_port)) = segment_step(frame, &s.ports) else { return };
        step.conn = s.conns.get(&server_port).cloned();
        let dir = if step.from == "client" { 0 } else { 1 };
        let main = s.main == Some(server_port);
        let (seq, len, syn) = (
            step.number("TCP.seq").unwrap_or(0) as u32,
            step.number("TCP.payload_len").unwrap_or(0),
            step.value("TCP.flags").is_some_and(|f| f.contains("SYN")),
        );
        let number = self.sink.emit(step);
        s.segments += 1;
        if main {
            if syn {
                s.isn[dir] = Some(seq);
            }
            if let Some(isn) = s.isn[dir].filter(|_| len > 0) {
                let start = u64::from(seq.wrapping_sub(isn).wrapping_sub(1));
                s.carried[dir].push((start..start + len, number));
                s.covered[dir] = s.covered[dir].max(start + len);
            }
        }
        drop(s);
        self.release(false);
        self.seen.notify_waiters();
    }

    /// Emits the waiting messages whose bytes have all been captured, in order; with `late`,
    /// also those that waited too long (their segments were lost), saying so.
    fn release(&self, late: bool) {
        let mut s = self.lock();
        while let Some(w) = s.waiting.front() {
            let covered = s.covered[w.dir] >= w.range.end;
            let overdue = w.since.elapsed() >= PATIENCE;
            if !(covered || late && overdue) {
                break;
            }
            let mut w = s.waiting.pop_front().expect("a waiting message");
            let log = &mut s.carried[w.dir];
            w.step.carried_by =
                log.iter().filter(|(r, _)| r.start < w.range.end && w.range.start < r.end).map(|&(_, n)| n).collect();
            // Segments wholly before this message carry nothing that waits any more.
            log.retain(|(r, _)| r.end > w.range.end);
            if !covered {
                LOST.fetch_add(1, Ordering::Relaxed);
                w.step.notes.push(crate::locale::en(
                    "the capture did not see the segments that carried this message (it lost frames)",
                    &[],
                ));
            }
            self.sink.emit(w.step);
        }
    }
}

/// A captured frame as a step, if it is a TCP segment to or from one of `ports` (the servers'
/// side); with the server port it matched.
fn segment_step(frame: &[u8], ports: &HashSet<u16>) -> Option<(Step, u16)> {
    // Every loopback frame of the machine comes by: look at the ports before decoding it all.
    let packet = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else { return None };
    let (src, dst) = (tcp.source_port(), tcp.destination_port());
    if !ports.contains(&src) && !ports.contains(&dst) {
        return None;
    }
    let msg = crate::wire::frame::decode_captured(frame);
    let (from, to, port) = if ports.contains(&src) {
        ("server", "client", src)
    } else if ports.contains(&dst) {
        ("client", "server", dst)
    } else {
        return None;
    };
    Some((Step { frame: true, ..msg.into_step(from, to, frame.to_vec(), frame.len()) }, port))
}

/// The capture socket made by [`open_early`], or why it could not be made.
#[cfg(target_os = "linux")]
static EARLY: Mutex<Option<Result<std::os::fd::OwnedFd, String>>> = Mutex::new(None);

/// Makes the capture socket (if the command may `capture`) while the process has one thread,
/// then gives up CAP_NET_RAW for the whole process: capabilities belong to each thread, and
/// the threads made later (the runtime's) start with their maker's. The socket receives
/// nothing until a run needs it. Call it before any thread starts; without it, the socket is
/// made on first use and the capability kept.
///
/// `icmp`: also make a raw ICMP socket, for ping on the host wire where the kernel allows no
/// ICMP datagram socket ([`icmp_socket`]).
pub fn open_early(capture: bool, icmp: bool) {
    #[cfg(target_os = "linux")]
    {
        if capture {
            let socket = super::raw::socket().map_err(|_| HINT.to_string());
            *EARLY.lock().unwrap_or_else(|e| e.into_inner()) = Some(socket);
        }
        *EARLY_ICMP.lock().unwrap_or_else(|e| e.into_inner()) = Some(if icmp { raw_icmp() } else { None });
        drop_net_raw();
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (capture, icmp);
}

/// The raw ICMP socket made by [`open_early`] while the process could (`Some(None)`: it could
/// not, or was not asked to; `None`: `open_early` was not called).
static EARLY_ICMP: Mutex<Option<Option<socket2::Socket>>> = Mutex::new(None);

fn raw_icmp() -> Option<socket2::Socket> {
    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::RAW, Some(socket2::Protocol::ICMPV4)).ok()
}

/// A raw ICMP socket (a copy of the one made at start), if the process had CAP_NET_RAW then;
/// without [`open_early`], made now if the process has it.
pub fn icmp_socket() -> Option<socket2::Socket> {
    match &*EARLY_ICMP.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(early) => early.as_ref().and_then(|s| s.try_clone().ok()),
        None => raw_icmp(),
    }
}

#[cfg(target_os = "linux")]
fn start() -> Result<broadcast::Sender<Frame>, String> {
    let early = EARLY.lock().unwrap_or_else(|e| e.into_inner()).take();
    let fd = early.unwrap_or_else(|| super::raw::socket().map_err(|_| HINT.to_string()))?;
    let socket = super::raw::RawSocket::bind(fd, "lo").map_err(|e| format!("packet capture is off: {e}"))?;
    let (tx, _) = broadcast::channel(1024);
    let sender = tx.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_600];
        let mut stats = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                n = socket.recv(&mut buf) => match n {
                    // Nobody listening right now is fine: frames of no run are not kept.
                    Ok(n) => { let _ = sender.send(Arc::from(&buf[..n])); }
                    Err(_) => return,
                },
                _ = stats.tick() => {
                    LOST.fetch_add(socket.drops(), Ordering::Relaxed);
                }
            }
        }
    });
    Ok(tx)
}

#[cfg(not(target_os = "linux"))]
fn start() -> Result<broadcast::Sender<Frame>, String> {
    Err("packet capture is Linux-only; use --wire sim to see every segment".into())
}

/// Gives up CAP_NET_RAW on the calling thread (effective, permitted and inheritable).
#[cfg(target_os = "linux")]
fn drop_net_raw() {
    /// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words of each set.
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_RAW: u32 = 13;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the kernel expects.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) != 0 {
            return;
        }
        let bit = 1u32 << CAP_NET_RAW;
        data[0].effective &= !bit;
        data[0].permitted &= !bit;
        data[0].inheritable &= !bit;
        let _ = libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr());
    }
}
