//! `serve` under load, as a user runs it: the release binary's `serve smtp` and `serve ws` with
//! `--format jsonl`, stdout to /dev/null, to a slow reader (4 KiB every 10 ms) or to a pipe
//! nobody reads, driven by many pipelining clients at once:
//!
//! - 200 SMTP clients × 5 messages, and 100 WebSocket clients × 1000 echoes (text and binary
//!   in turn), each to /dev/null and to the slow reader;
//! - 32 SMTP clients flooding NOOPs, 256 at a time, for 10 s, to /dev/null;
//! - the 200 × 5 SMTP clients again once stdout is a full pipe nobody reads
//!   (`serve smtp | (sleep 600)`): one-message clients, one after the other, fill it first.
//!
//! Each variant checks that nothing accepted is lost: every message a client sent got its
//! 250 or came back as it went; the server's queue ids are exactly 1 to the number of 250s
//! the clients counted; on the slow pipe every accepted message shows as its `250 OK queued
//! as` step or is among the steps the server said it dropped, and every missing `seq` too.
//! Then that the server's peak RSS (`VmHWM`) stays under 256 MiB, that the memory comes back
//! once the load is over (but on the unread pipe, whose steps are still held), and that
//! SIGINT ends it, with status 0, within 5 s; then a table. Any broken promise: exit status 1.
//!
//! `cargo bench --bench load` (about a minute and a half; cargo builds the release binary
//! first). Words after `--` pick variants: `-- ws slow`.
//!
//! Clients past the server's 32 at once get its busy answer (SMTP 421, HTTP 503, or a close
//! without a word past its 64 refusals at once) and come back after a short wait that doubles
//! up to 200 ms: a real client's behaviour, which keeps the busy path loaded too. The
//! refusals are counted and printed.

use futures_util::{SinkExt, StreamExt};
use protolab::labs::smtp::wire::{Reply, ReplyError};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};

/// The release binary cargo built for this bench.
const BIN: &str = env!("CARGO_BIN_EXE_protolab");
/// The promise: the server's peak RSS in every variant.
const PEAK_LIMIT_MIB: f64 = 256.0;
/// How long the server may take to end after SIGINT.
const SIGINT_LIMIT: Duration = Duration::from_secs(5);
/// How long any one reply may take before a client calls it a stall.
const STALL: Duration = Duration::from_secs(60);
/// How long the load is left idle before the resident memory is read again.
const IDLE: Duration = Duration::from_secs(3);
/// The memory a burst took comes back: idle, the RSS is at most half the peak, or this.
const IDLE_FLOOR_MIB: f64 = 16.0;
/// The slow reader: this much every [`SLOW_EVERY`].
const SLOW_CHUNK: usize = 4096;
const SLOW_EVERY: Duration = Duration::from_millis(10);

const SMTP_CLIENTS: usize = 200;
const SMTP_MESSAGES: usize = 5;
const WS_CLIENTS: usize = 100;
const WS_ECHOES: usize = 1000;
const NOOP_CLIENTS: usize = 32;
const NOOP_FOR: Duration = Duration::from_secs(10);
/// NOOPs a flood client writes at once before reading their replies.
const NOOP_BATCH: usize = 256;
/// At most this many one-message clients, one after the other, to fill a pipe nobody reads.
const FILL_MAX: usize = 200;
/// The pipe is full once this many clients' steps did not change what it holds.
const FULL_AFTER: usize = 3;
/// How long the slow reader may take to get what the server printed once the load is over.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    DevNull,
    /// A reader that takes [`SLOW_CHUNK`] every [`SLOW_EVERY`].
    SlowPipe,
    /// A pipe nobody ever reads (`serve smtp | (sleep 600)`).
    Unread,
}

impl Out {
    fn name(self) -> &'static str {
        match self {
            Out::DevNull => "/dev/null",
            Out::SlowPipe => "slow pipe",
            Out::Unread => "unread pipe",
        }
    }
}

/// What the server said on stderr.
#[derive(Debug, Default)]
struct Said {
    /// The last "M in all" of "protolab: N steps dropped, M in all".
    dropped: u64,
    /// Sessions turned away as busy.
    turned_away: u64,
    /// Other sessions that ended in an error, and the first few of them.
    failed: u64,
    samples: Vec<String>,
    /// At the end, stdout did not take the last steps (said how many it left): right for the
    /// pipe nobody reads, wrong for any other.
    unwritten: Option<String>,
}

impl Said {
    fn hear(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("protolab: ")
            && let Some((_, all)) = rest.split_once(" steps dropped, ")
            && let Some(n) = all.split_whitespace().next().and_then(|n| n.parse().ok())
        {
            self.dropped = self.dropped.max(n);
        } else if line.contains(" ended: turned away") {
            self.turned_away += 1;
        } else if line.starts_with("protolab: stdout did not take the last steps") {
            self.unwritten = Some(line.to_string());
        } else if line.starts_with("listening on ") || line == "interrupted" {
        } else {
            self.failed += 1;
            if self.samples.len() < 5 {
                self.samples.push(line.to_string());
            }
        }
    }
}

/// What the slow reader took from stdout.
#[derive(Debug, Default)]
struct Printed {
    lines: u64,
    bytes: u64,
    /// Steps missing between the `seq` numbers read: the dropped ones.
    gaps: u64,
    last_seq: u64,
    /// Lines that were not a step, or a `seq` that went back.
    bad: u64,
    /// The queue ids of the server's `250 OK queued as ID` steps: the mail it accepted.
    queued: Vec<String>,
}

impl Printed {
    fn line(&mut self, line: &[u8]) {
        self.lines += 1;
        let step = serde_json::from_slice::<serde_json::Value>(line).unwrap_or_default();
        if step["from"] == "server"
            && let Some(id) = step["summary"].as_str().and_then(|s| s.strip_prefix("250 OK queued as "))
        {
            self.queued.push(id.to_string());
        }
        match step["seq"].as_u64() {
            Some(seq) if seq > self.last_seq => {
                self.gaps += seq - self.last_seq - 1;
                self.last_seq = seq;
            }
            _ => self.bad += 1,
        }
    }
}

/// A running `protolab serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
    said: Arc<Mutex<Said>>,
    reader: Option<JoinHandle<Printed>>,
    /// Held and never read.
    unread: Option<ChildStdout>,
    /// Bytes the slow reader took so far.
    taken: Arc<AtomicU64>,
}

impl Server {
    fn start(lab: &str, out: Out) -> Server {
        let stdout = if out == Out::DevNull { Stdio::null() } else { Stdio::piped() };
        let mut child = Command::new(BIN)
            .args(["serve", lab, "--format", "jsonl"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let said = Arc::new(Mutex::new(Said::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let heard = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().expect("an address"));
                }
                heard.lock().unwrap().hear(&line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("serve says where it listens");
        let taken = Arc::new(AtomicU64::new(0));
        let (reader, unread) = match out {
            Out::DevNull => (None, None),
            Out::Unread => (None, child.stdout.take()),
            Out::SlowPipe => {
                let stdout = child.stdout.take().unwrap();
                let taken = taken.clone();
                (Some(std::thread::spawn(move || slow_reader(stdout, &taken))), None)
            }
        };
        Server { child, addr, said, reader, unread, taken }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` value in MiB (`VmHWM`, `VmRSS`).
    fn mem_mib(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN);
        kib / 1024.0
    }

    /// Waits until the slow reader has taken everything the server printed (nothing new for a
    /// second), at most `limit`; whether it has.
    fn drained(&self, limit: Duration) -> bool {
        if self.reader.is_none() {
            return true;
        }
        let start = Instant::now();
        let mut last = u64::MAX;
        while start.elapsed() < limit {
            let now = self.taken.load(Relaxed);
            if now == last {
                return true;
            }
            last = now;
            std::thread::sleep(Duration::from_secs(1));
        }
        false
    }

    /// Bytes waiting in the pipe nobody reads (0 without one).
    fn stdout_held(&self) -> i32 {
        let Some(out) = &self.unread else { return 0 };
        let mut held: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int, `held`, on a pipe we hold open.
        let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(out), libc::FIONREAD, &mut held) };
        if r == 0 { held } else { 0 }
    }

    /// Sends SIGINT; how long the server took to end and how, or `None` if it had not in
    /// [`SIGINT_LIMIT`] (then it is killed). Also what it printed and said.
    fn interrupt(mut self) -> (Option<(Duration, ExitStatus)>, Printed, Said) {
        let start = Instant::now();
        // SAFETY: a signal to our own child, whose pid is ours until we reap it.
        unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGINT) };
        let mut ended = None;
        while start.elapsed() < SIGINT_LIMIT {
            if let Ok(Some(status)) = self.child.try_wait() {
                ended = Some((start.elapsed(), status));
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if ended.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let printed = self.reader.take().map(|r| r.join().unwrap()).unwrap_or_default();
        // Its last stderr lines, read by now (the pipe closed with the process).
        std::thread::sleep(Duration::from_millis(100));
        let said = std::mem::take(&mut *self.said.lock().unwrap());
        (ended, printed, said)
    }
}

/// Reads the server's stdout slowly, a little at a time, checking each line is a step.
fn slow_reader(mut out: ChildStdout, taken: &AtomicU64) -> Printed {
    let mut printed = Printed::default();
    let mut line = Vec::new();
    let mut chunk = vec![0u8; SLOW_CHUNK];
    loop {
        let n = match out.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        printed.bytes += n as u64;
        taken.fetch_add(n as u64, Relaxed);
        for &b in &chunk[..n] {
            if b == b'\n' {
                printed.line(&line);
                line.clear();
            } else {
                line.push(b);
            }
        }
        std::thread::sleep(SLOW_EVERY);
    }
    // A line cut by SIGINT is not a step.
    printed
}

/// What the clients of one variant counted.
#[derive(Debug, Default)]
struct Tally {
    /// Messages (SMTP texts, WebSocket messages) the clients sent.
    sent: AtomicU64,
    /// Accepted (SMTP: 250 after the text) or echoed back intact (WebSocket).
    done: AtomicU64,
    /// Busy answers and silent closes before a client was served.
    refused: AtomicU64,
    /// Clients that could not finish, and why (the first few).
    failures: Mutex<Vec<String>>,
    /// SMTP queue ids of the accepted messages.
    ids: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, who: String, why: String) {
        let mut f = self.failures.lock().unwrap();
        f.push(format!("{who}: {why}"));
    }
}

/// Waits before trying again: 20 ms, doubling to 200 ms, with a client's own offset so that
/// refused clients do not come back all at once.
async fn back_off(attempt: u32, id: usize) {
    let ms = (20u64 << attempt.min(4)).min(200) + (id as u64 * 7) % 20;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Reads one SMTP reply; `Err` when the server closed or stalled.
async fn reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Reply, String> {
    loop {
        match Reply::parse(buf) {
            Ok((reply, len)) => {
                buf.drain(..len);
                return Ok(reply);
            }
            Err(ReplyError::Incomplete) => {}
            Err(e) => return Err(format!("not a reply: {e:?}")),
        }
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(STALL, s.read(&mut chunk)).await {
            Err(_) => return Err(format!("no reply in {STALL:?}")),
            Ok(Err(e)) => return Err(format!("reading: {e}")),
            Ok(Ok(0)) => return Err("the server closed the connection".into()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads a reply and checks its code.
async fn expect(s: &mut TcpStream, buf: &mut Vec<u8>, code: u16, what: &str) -> Result<Reply, String> {
    let r = reply(s, buf).await.map_err(|e| format!("{what}: {e}"))?;
    if r.code.0 != code {
        return Err(format!("{what}: expected {code}, got {r}"));
    }
    Ok(r)
}

/// Connects until the server greets with 220 (not its busy 421); the socket and its buffer.
async fn smtp_greeted(addr: SocketAddr, id: usize, tally: &Tally) -> Result<(TcpStream, Vec<u8>), String> {
    let start = Instant::now();
    for attempt in 0.. {
        if start.elapsed() > STALL {
            break;
        }
        let mut s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let mut buf = Vec::new();
        match reply(&mut s, &mut buf).await {
            Ok(r) if r.code.0 == 220 => return Ok((s, buf)),
            Ok(r) if r.code.0 == 421 => {}
            Ok(r) => return Err(format!("greeted with {r}")),
            // Past its refusals at once, the server closes without a word.
            Err(_) => {}
        }
        tally.refused.fetch_add(1, Relaxed);
        drop(s);
        back_off(attempt, id).await;
    }
    Err(format!("not served in {STALL:?}"))
}

/// The text of message `m` of client `id`: about 1 KiB, CR LF lines, ending in CR LF . CR LF.
fn text(id: usize, m: usize) -> Vec<u8> {
    let mut t = format!(
        "From: <c{id}@load.test>\r\nTo: <bob@protolab.test>\r\nSubject: load {id}.{m}\r\nMessage-ID: <{id}.{m}@load.test>\r\n\r\n"
    );
    for line in 0..12 {
        t.push_str(&format!("client {id:03} message {m} line {line:02}: {}\r\n", "x".repeat(50)));
    }
    t.push_str(".\r\n");
    t.into_bytes()
}

/// One SMTP client: `messages` messages in one session, pipelined (RFC 2920): MAIL, RCPT and
/// DATA in one write; each text in one write with the next MAIL, RCPT and DATA (or QUIT).
async fn smtp_client(addr: SocketAddr, id: usize, messages: usize, tally: &Tally) -> Result<(), String> {
    let (mut s, mut buf) = smtp_greeted(addr, id, tally).await?;
    let envelope = format!("MAIL FROM:<c{id}@load.test>\r\nRCPT TO:<bob@protolab.test>\r\nDATA\r\n");
    let write = |e: std::io::Error| format!("writing: {e}");
    s.write_all(format!("EHLO c{id}.load.test\r\n").as_bytes()).await.map_err(write)?;
    expect(&mut s, &mut buf, 250, "EHLO").await?;
    s.write_all(envelope.as_bytes()).await.map_err(write)?;
    for m in 0..messages {
        expect(&mut s, &mut buf, 250, "MAIL").await?;
        expect(&mut s, &mut buf, 250, "RCPT").await?;
        expect(&mut s, &mut buf, 354, "DATA").await?;
        let next = if m + 1 < messages { envelope.as_str() } else { "QUIT\r\n" };
        s.write_all(&[text(id, m), next.as_bytes().to_vec()].concat()).await.map_err(write)?;
        tally.sent.fetch_add(1, Relaxed);
        let ok = expect(&mut s, &mut buf, 250, &format!("message {m}")).await?;
        let id = ok.text().strip_prefix("OK queued as ").ok_or_else(|| format!("250 without a queue id: {ok}"))?;
        tally.ids.lock().unwrap().push(id.to_string());
        tally.done.fetch_add(1, Relaxed);
    }
    expect(&mut s, &mut buf, 221, "QUIT").await?;
    Ok(())
}

/// The message `i` of WebSocket client `id`: text and binary in turn.
fn ws_message(id: usize, i: usize) -> Message {
    let body = format!("client {id:03} echo {i:04} {}", "y".repeat(24));
    if i.is_multiple_of(2) { Message::text(body) } else { Message::binary(body.into_bytes()) }
}

/// One WebSocket client: upgrades (again after a 503), sends all its messages, then reads all
/// the echoes, checking each, and closes.
async fn ws_client(addr: SocketAddr, id: usize, echoes: usize, tally: &Tally) -> Result<(), String> {
    let start = Instant::now();
    let mut attempt = 0;
    let mut ws = loop {
        if start.elapsed() > STALL {
            return Err(format!("not served in {STALL:?}"));
        }
        let s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let url = format!("ws://{addr}/load/{id}");
        match tokio::time::timeout(STALL, tokio_tungstenite::client_async(url, s)).await {
            Err(_) => return Err("no answer to the upgrade".into()),
            Ok(Ok((ws, _))) => break ws,
            Ok(Err(tungstenite::Error::Http(r))) if r.status() != 503 => {
                return Err(format!("upgrade answered {}", r.status()));
            }
            // 503, or closed without a word past the server's refusals at once.
            Ok(Err(_)) => {}
        }
        tally.refused.fetch_add(1, Relaxed);
        back_off(attempt, id).await;
        attempt += 1;
    };
    for i in 0..echoes {
        ws.feed(ws_message(id, i)).await.map_err(|e| format!("sending: {e}"))?;
        tally.sent.fetch_add(1, Relaxed);
    }
    ws.flush().await.map_err(|e| format!("sending: {e}"))?;
    for i in 0..echoes {
        match tokio::time::timeout(STALL, ws.next()).await {
            Err(_) => return Err(format!("echo {i}: none in {STALL:?}")),
            Ok(Some(Ok(got))) if got == ws_message(id, i) => {
                tally.done.fetch_add(1, Relaxed);
            }
            Ok(other) => return Err(format!("echo {i}: got {other:?}")),
        }
    }
    ws.close(None).await.map_err(|e| format!("closing: {e}"))?;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(STALL, ws.next()).await {}
    Ok(())
}

/// One NOOP flood client: pipelines batches of NOOPs until `until`; the NOOPs answered.
async fn noop_client(addr: SocketAddr, id: usize, until: Instant, tally: &Tally) -> Result<(), String> {
    let (mut s, mut buf) = smtp_greeted(addr, id, tally).await?;
    let batch = b"NOOP\r\n".repeat(NOOP_BATCH);
    let write = |e: std::io::Error| format!("writing: {e}");
    while Instant::now() < until {
        s.write_all(&batch).await.map_err(write)?;
        tally.sent.fetch_add(NOOP_BATCH as u64, Relaxed);
        for _ in 0..NOOP_BATCH {
            expect(&mut s, &mut buf, 250, "NOOP").await?;
            tally.done.fetch_add(1, Relaxed);
        }
    }
    s.write_all(b"QUIT\r\n").await.map_err(write)?;
    expect(&mut s, &mut buf, 221, "QUIT").await?;
    Ok(())
}

/// One row of the table.
#[derive(Debug, Default)]
struct Row {
    name: String,
    expected: u64,
    sent: u64,
    done: u64,
    refused: u64,
    secs: f64,
    peak: f64,
    idle: f64,
    dropped: u64,
    printed: Option<Printed>,
    sigint: Option<Duration>,
}

/// The clients of one variant, run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Smtp,
    Ws,
    Noop,
}

async fn drive(load: Load, addr: SocketAddr, tally: Arc<Tally>) {
    let until = Instant::now() + NOOP_FOR;
    let clients = match load {
        Load::Smtp => SMTP_CLIENTS,
        Load::Ws => WS_CLIENTS,
        Load::Noop => NOOP_CLIENTS,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..clients {
        let tally = tally.clone();
        tasks.spawn(async move {
            let result = match load {
                Load::Smtp => smtp_client(addr, id, SMTP_MESSAGES, &tally).await,
                Load::Ws => ws_client(addr, id, WS_ECHOES, &tally).await,
                Load::Noop => noop_client(addr, id, until, &tally).await,
            };
            if let Err(e) = result {
                tally.fail(format!("client {id}"), e);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tally.fail("a client task".into(), e.to_string());
        }
    }
}

/// Before the load on a pipe nobody reads: one-message clients, one after the other, until
/// the pipe takes no more, its bytes the same after [`FULL_AFTER`] clients' steps; how many
/// clients were served, and the bytes it holds then (0: it never filled).
fn fill(rt: &tokio::runtime::Runtime, server: &Server, tally: &Tally) -> (usize, i32) {
    let (mut served, mut held, mut same) = (0, 0, 0);
    while served < FILL_MAX {
        let id = 10_000 + served;
        if let Err(e) = rt.block_on(smtp_client(server.addr, id, 1, tally)) {
            tally.fail(format!("client {id}"), e);
            break;
        }
        served += 1;
        // Its steps reach the pipe after its last reply: give the printer a moment.
        std::thread::sleep(Duration::from_millis(100));
        let now = server.stdout_held();
        same = if now > 0 && now == held { same + 1 } else { 0 };
        held = now;
        if same == FULL_AFTER {
            return (served, held);
        }
    }
    (served, 0)
}

/// Runs one variant against a fresh server; its row, and its broken promises in `broken`.
fn variant(rt: &tokio::runtime::Runtime, load: Load, out: Out, broken: &mut Vec<String>) -> Row {
    let (lab, what, mut expected) = match load {
        Load::Smtp => ("smtp", format!("{SMTP_CLIENTS} × {SMTP_MESSAGES} msg"), (SMTP_CLIENTS * SMTP_MESSAGES) as u64),
        Load::Ws => ("ws", format!("{WS_CLIENTS} × {WS_ECHOES} echo"), (WS_CLIENTS * WS_ECHOES) as u64),
        Load::Noop => ("smtp", format!("{NOOP_CLIENTS} × NOOP {}s", NOOP_FOR.as_secs()), 0),
    };
    let name = format!("{lab} {what}, {}", out.name());
    eprintln!("running {name} ...");
    let mut problems = Vec::new();
    let server = Server::start(lab, out);
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let mut full = 0;
    if out == Out::Unread {
        let filled;
        (filled, full) = fill(rt, &server, &tally);
        expected += filled as u64;
        if full == 0 {
            problems.push(format!("stdout not full after {filled} clients: the load would not meet a stuck printer"));
        }
    }
    rt.block_on(drive(load, server.addr, tally.clone()));
    let secs = start.elapsed().as_secs_f64();
    let peak = server.mem_mib("VmHWM");
    // The queue's backlog goes out first (a slow reader takes a while), then the load is idle.
    if !server.drained(DRAIN_LIMIT) {
        problems.push(format!("the slow reader still took more after {DRAIN_LIMIT:?}: the counts below are cut"));
    }
    if out == Out::Unread && server.stdout_held() != full {
        problems.push("stdout took more after it was full: the printer was not stuck".into());
    }
    std::thread::sleep(IDLE);
    let idle = server.mem_mib("VmRSS");
    let peak = peak.max(server.mem_mib("VmHWM"));
    let (ended, printed, said) = server.interrupt();

    let tally = Arc::into_inner(tally).unwrap();
    let (sent, done) = (tally.sent.into_inner(), tally.done.into_inner());
    let mut fail = |why: String| broken.push(format!("{name}: {why}"));
    for p in problems {
        fail(p);
    }
    for f in tally.failures.into_inner().unwrap().iter().take(5) {
        fail(f.clone());
    }
    if sent != done {
        fail(format!("{} of {sent} sent were lost (not accepted or not echoed)", sent - done));
    }
    if expected > 0 && done != expected {
        fail(format!("{done} done, {expected} expected"));
    }
    // The server numbers the mail it accepts 1, 2, 3, … in hex: the clients were told 250 for
    // each number it gave, once, and for no other.
    let mut ids: Vec<u64> =
        tally.ids.into_inner().unwrap().iter().filter_map(|id| u64::from_str_radix(id, 16).ok()).collect();
    ids.sort_unstable();
    if load == Load::Smtp && !ids.iter().copied().eq(1..=done) {
        fail(format!(
            "{done} accepted, but the server's queue ids are not 1 to {done}: {:?}…",
            &ids[..ids.len().min(8)]
        ));
    }
    // On the slow pipe, each accepted message is in stdout as its 250 step, or said dropped.
    if out == Out::SlowPipe && load == Load::Smtp {
        let told: std::collections::HashSet<u64> = ids.iter().copied().collect();
        let printed_ids: Vec<u64> = printed.queued.iter().filter_map(|id| u64::from_str_radix(id, 16).ok()).collect();
        if let Some(id) = printed_ids.iter().find(|id| !told.contains(id)) {
            fail(format!("stdout shows {id:X} queued, which no client was told"));
        }
        let shown: std::collections::HashSet<u64> = printed_ids.into_iter().collect();
        let missing = told.difference(&shown).count() as u64;
        if missing > said.dropped {
            fail(format!("{missing} accepted messages missing from stdout, {} steps said dropped", said.dropped));
        }
    }
    if peak.is_nan() || peak > PEAK_LIMIT_MIB {
        fail(format!("peak RSS {peak:.0} MiB, over {PEAK_LIMIT_MIB} MiB"));
    }
    // Not on the pipe nobody reads: there, the steps it could not print are still held.
    if out != Out::Unread && (idle.is_nan() || idle > IDLE_FLOOR_MIB.max(peak / 2.0)) {
        fail(format!("RSS {idle:.1} MiB {IDLE:?} after the load (peak {peak:.1} MiB): the burst's memory was kept"));
    }
    match ended {
        None => fail(format!("SIGINT did not end the server in {SIGINT_LIMIT:?}")),
        Some((_, status)) if !status.success() => fail(format!("after SIGINT the server ended with {status}")),
        Some(_) => {}
    }
    if printed.bad > 0 {
        fail(format!("{} printed lines were not steps in order", printed.bad));
    }
    if said.failed > 0 {
        fail(format!("{} sessions failed on the server: {:?}", said.failed, said.samples));
    }
    match (&said.unwritten, out == Out::Unread) {
        (Some(line), false) => fail(format!("stdout was read, yet: {line}")),
        (None, true) => fail("nobody read stdout, yet serve did not say what it could not write".to_string()),
        _ => {}
    }
    // Every step missing from stdout was said dropped (the last dropped leave no gap).
    if printed.gaps > said.dropped {
        fail(format!("{} steps missing from stdout, {} said dropped", printed.gaps, said.dropped));
    }
    Row {
        name,
        expected,
        sent,
        done,
        refused: tally.refused.into_inner(),
        secs,
        peak,
        idle,
        dropped: said.dropped,
        printed: (out == Out::SlowPipe).then_some(printed),
        sigint: ended.map(|(d, _)| d),
    }
}

fn table(rows: &[Row]) {
    println!();
    println!(
        "{:<32} {:>13} {:>5} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>8}  stdout (slow pipe)",
        "variant", "done", "lost", "refused", "time s", "per s", "peak MiB", "idle MiB", "dropped", "SIGINT"
    );
    for r in rows {
        let printed = match &r.printed {
            Some(p) if p.queued.is_empty() => {
                format!("{} lines, {:.1} MiB, {} seq gaps", p.lines, p.bytes as f64 / 1048576.0, p.gaps)
            }
            Some(p) => format!(
                "{} lines, {:.1} MiB, {} seq gaps, {} queued-as",
                p.lines,
                p.bytes as f64 / 1048576.0,
                p.gaps,
                p.queued.len()
            ),
            None => String::new(),
        };
        let sigint = r.sigint.map_or("IGNORED".into(), |d| format!("{} ms", d.as_millis()));
        let done = if r.expected > 0 { format!("{}/{}", r.done, r.expected) } else { r.done.to_string() };
        println!(
            "{:<32} {:>13} {:>5} {:>8} {:>7.1} {:>9.0} {:>9.1} {:>9.1} {:>9} {:>8}  {printed}",
            r.name,
            done,
            r.sent - r.done,
            r.refused,
            r.secs,
            r.done as f64 / r.secs,
            r.peak,
            r.idle,
            r.dropped,
            sigint,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the words after `--` pick the variants whose `Load Out`
    // name (`smtp devnull`, `ws slowpipe`, `noop devnull`, `smtp unread`) holds them all.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let variants = [
        (Load::Smtp, Out::DevNull),
        (Load::Smtp, Out::SlowPipe),
        (Load::Ws, Out::DevNull),
        (Load::Ws, Out::SlowPipe),
        (Load::Noop, Out::DevNull),
        (Load::Smtp, Out::Unread),
    ];
    println!("load: {BIN}");
    let total = Instant::now();
    let mut broken = Vec::new();
    let mut rows = Vec::new();
    for (load, out) in variants {
        let key = format!("{load:?} {out:?}").to_lowercase();
        if filter.iter().all(|f| key.contains(&f.to_lowercase())) {
            rows.push(variant(&rt, load, out, &mut broken));
        }
    }
    table(&rows);
    println!("\nall variants in {:.0} s", total.elapsed().as_secs_f64());
    if !broken.is_empty() {
        println!("\nBROKEN PROMISES:");
        for b in &broken {
            println!("  {b}");
        }
        std::process::exit(1);
    }
    println!("every promise held: nothing accepted lost, peak RSS under {PEAK_LIMIT_MIB} MiB, SIGINT obeyed");
}
