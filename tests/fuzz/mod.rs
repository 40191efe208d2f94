//! A small, stable-Rust fuzzer for the decoders that read untrusted bytes, shared by
//! `cargo bench --profile fuzz --bench fuzz` (millions of inputs) and `tests/fuzz_smoke.rs` (a
//! few thousand in every `cargo test`).
//!
//! Each decoder is a [`Target`]: a corpus of valid conversations built by our own encoders, the
//! tokens its format is made of, and a `run` that feeds an input to every entry point of the
//! decoder and checks what comes out. An input is a list of chunks, each one `feed` of bytes in
//! one direction (or one frame, one datagram): mutating the chunks' bytes damages messages,
//! splitting them is how a socket delivers a stream. Input number `n` of a run is made from the
//! seed and `n` alone, so a run is the same on any number of threads, and any input can be made
//! again.
//!
//! A panic, an invariant a `run` finds broken, or an input that runs for more than
//! [`HANG_SECS`] is a failure: the input is written to `target/fuzz-crashes/<decoder>-<hash>.bin`
//! (the format of [`Input::to_bytes`]) and shown in hex.

pub mod targets;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// An input that takes longer than this is a hang.
pub const HANG_SECS: u64 = 30;
/// The most bytes an input holds after mutation (the corpus's longest entries are a little
/// over 64 KiB, the bytes a step keeps).
pub const MAX_INPUT: usize = 192 * 1024;
/// A corpus entry longer than this is picked less often.
const BIG: usize = 16 * 1024;
/// Inputs a worker claims at a time.
const BATCH: u64 = 256;

/// splitmix64: small, fast, and good enough to choose mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of input `n` of a run with `seed` for the target named `name`.
    pub fn for_input(seed: u64, name: &str, n: u64) -> Self {
        let mut rng = Rng(seed ^ fnv1a(name.as_bytes()));
        rng.0 ^= Rng(n).next();
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A length that is mostly small: 1 to 2^k with k uniform up to `max_log2`.
    pub fn small_len(&mut self, max_log2: u32) -> usize {
        let k = self.below(max_log2 as usize + 1);
        1 + self.below(1 << k)
    }
}

/// FNV-1a, 64 bits: names crash files and seeds generators.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// One `feed` of bytes in one direction: 0 is client to server, 1 server to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub dir: u8,
    pub bytes: Vec<u8>,
}

impl Chunk {
    pub fn new(dir: u8, bytes: impl Into<Vec<u8>>) -> Self {
        Chunk { dir, bytes: bytes.into() }
    }
}

/// What a target is fed: chunks in order, and the `keep` its decoders are driven with (the
/// recorder's own run always keeps [`protolab::session::KEEP_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub keep: usize,
    pub chunks: Vec<Chunk>,
}

/// The first bytes of a saved input.
const MAGIC: &[u8; 6] = b"PLFZ1\n";

impl Input {
    pub fn new(chunks: Vec<Chunk>) -> Self {
        Input { keep: protolab::session::KEEP_BYTES, chunks }
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes.len()).sum()
    }

    /// The bytes of one direction, joined.
    pub fn stream(&self, dir: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for c in self.chunks.iter().filter(|c| c.dir == dir) {
            out.extend_from_slice(&c.bytes);
        }
        out
    }

    /// `PLFZ1\n`, keep (u32 LE), chunk count (u32 LE), then each chunk: its direction (one
    /// byte), its length (u32 LE), its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend((self.keep as u32).to_le_bytes());
        out.extend((self.chunks.len() as u32).to_le_bytes());
        for c in &self.chunks {
            out.push(c.dir);
            out.extend((c.bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&c.bytes);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Input, String> {
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or("not a saved fuzz input (no PLFZ1 header)")?;
        let mut at = 0;
        let u32_at = |at: &mut usize| -> Result<usize, String> {
            let b = rest.get(*at..*at + 4).ok_or("cut short")?;
            *at += 4;
            Ok(u32::from_le_bytes(b.try_into().unwrap()) as usize)
        };
        let keep = u32_at(&mut at)?;
        let n = u32_at(&mut at)?;
        let mut chunks = Vec::new();
        for _ in 0..n {
            let dir = *rest.get(at).ok_or("cut short")?;
            at += 1;
            let len = u32_at(&mut at)?;
            let b = rest.get(at..at + len).ok_or("cut short")?;
            at += len;
            chunks.push(Chunk::new(dir, b));
        }
        Ok(Input { keep, chunks })
    }

    /// The input in hex, a line a chunk (at most `max` bytes of each).
    pub fn hex(&self, max: usize) -> String {
        let mut out = format!("keep {}, {} chunk(s), {} bytes\n", self.keep, self.chunks.len(), self.len());
        for (i, c) in self.chunks.iter().enumerate() {
            let arrow = if c.dir == 0 { "client → server" } else { "server → client" };
            let shown = &c.bytes[..c.bytes.len().min(max)];
            let more =
                if c.bytes.len() > max { format!(" … ({} more bytes)", c.bytes.len() - max) } else { String::new() };
            out.push_str(&format!(
                "  [{i}] {arrow}, {} bytes: {}{more}\n",
                c.bytes.len(),
                protolab::session::hex(shown)
            ));
        }
        out
    }
}

/// One decoder under test.
pub struct Target {
    /// The name the command line takes (`ws-frame`).
    pub name: &'static str,
    /// What it covers, for the report.
    pub about: &'static str,
    /// The chunks are pieces of one byte stream per direction: splitting them anywhere must not
    /// matter to the decoders (frames and datagrams are whole messages instead).
    pub stream: bool,
    /// The direction whose bytes are mutated most (the other holds what the dialogue needs).
    pub focus: u8,
    /// Valid conversations, built by our own encoders.
    pub corpus: fn() -> Vec<Input>,
    /// Byte strings the format is made of, inserted by the mutator.
    pub tokens: &'static [&'static [u8]],
    /// Feeds the input to every entry point of the decoder; `Err` names a broken invariant.
    pub run: fn(&Input) -> Result<(), String>,
}

/// How a failure showed itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    Panic,
    Invariant,
    Hang,
}

/// The first input of a run that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    /// The panic's message and place, the invariant broken, or how long the input ran.
    pub what: String,
    pub input: Input,
    /// Input number `n` of the run.
    pub n: u64,
    /// Where the input was saved.
    pub file: Option<PathBuf>,
}

impl Failure {
    /// What to print: the failure, the file, the input in hex.
    pub fn report(&self, target: &str) -> String {
        let file = self.file.as_ref().map_or("(not saved)".to_string(), |f| f.display().to_string());
        format!(
            "{target}: {:?} on input #{}: {}\nsaved to {file}\n{}\
             replay: cargo bench --profile fuzz --bench fuzz -- --replay {file}",
            self.kind,
            self.n,
            self.what,
            self.input.hex(512)
        )
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub target: &'static str,
    /// Inputs that ran to their end without a failure.
    pub inputs: u64,
    pub secs: f64,
    pub failure: Option<Failure>,
}

impl Outcome {
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 { self.inputs as f64 / self.secs } else { 0.0 }
    }
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub inputs: u64,
    pub threads: usize,
    pub seed: u64,
    /// Print how far the run is, every few seconds, to stderr.
    pub progress: bool,
}

thread_local! {
    /// Set while a target runs: the panic hook keeps the panic's text here instead of printing it.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs, once, a panic hook that stays quiet about panics inside a target (they are
/// reported with their input) and leaves every other panic to the hook before it.
fn quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let inside = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        // With RUST_BACKTRACE=1, where in the decoder it panicked.
                        let trace = std::backtrace::Backtrace::capture();
                        *slot = Some(match trace.status() {
                            std::backtrace::BacktraceStatus::Captured => format!("{info}\n{trace}"),
                            _ => info.to_string(),
                        });
                        true
                    }
                    None => false,
                }
            });
            if !inside {
                previous(info);
            }
        }));
    });
}

/// Runs one input, catching a panic: `Err((kind, what))` on a failure.
pub fn run_one(target: &Target, input: &Input) -> Result<(), (FailureKind, String)> {
    quiet_hook();
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let text = CAUGHT.with(|c| c.borrow_mut().take().flatten());
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(what)) => Err((FailureKind::Invariant, what)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err((FailureKind::Panic, text.unwrap_or(message)))
        }
    }
}

/// Where crash inputs go: `target/fuzz-crashes/` (or under `CARGO_TARGET_DIR`).
pub fn crash_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("fuzz-crashes")
}

/// Saves an input as `<decoder>-<hash>.bin`.
pub fn save(target: &str, input: &Input) -> std::io::Result<PathBuf> {
    let bytes = input.to_bytes();
    let dir = crash_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{target}-{:016x}.bin", fnv1a(&bytes)));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// Runs a saved input again.
pub fn replay(target: &Target, path: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let input = Input::from_bytes(&bytes)?;
    run_one(target, &input).map_err(|(kind, what)| format!("{kind:?}: {what}\n{}", input.hex(4096)))
}

/// A worker's place: the input it runs (n + 1, 0 when none) and since when.
#[derive(Default)]
struct Busy {
    n: AtomicU64,
    since_ms: AtomicU64,
}

/// Runs `settings.inputs` inputs against `target`, on `settings.threads` threads. Stops at the
/// first failure, which is saved and returned.
pub fn fuzz(target: &'static Target, settings: &Settings) -> Outcome {
    let corpus: Arc<Vec<Input>> = Arc::new((target.corpus)());
    for (i, input) in corpus.iter().enumerate() {
        if let Err((kind, what)) = run_one(target, input) {
            let failure =
                Failure { kind, what: format!("corpus entry {i}: {what}"), input: input.clone(), n: 0, file: None };
            return finish(target, 0, 0.0, Some(failure));
        }
    }
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failure: Arc<Mutex<Option<Failure>>> = Arc::new(Mutex::new(None));
    let threads = settings.threads.max(1);
    let busy: Arc<Vec<Busy>> = Arc::new((0..threads).map(|_| Busy::default()).collect());
    let mut handles = Vec::new();
    for t in 0..threads {
        let (corpus, next, done, stop, failure, busy) =
            (corpus.clone(), next.clone(), done.clone(), stop.clone(), failure.clone(), busy.clone());
        let (total, seed) = (settings.inputs, settings.seed);
        handles.push(std::thread::spawn(move || {
            'work: while !stop.load(Ordering::Relaxed) {
                let first = next.fetch_add(BATCH, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                for n in first..(first + BATCH).min(total) {
                    if stop.load(Ordering::Relaxed) {
                        break 'work;
                    }
                    busy[t].since_ms.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    busy[t].n.store(n + 1, Ordering::Relaxed);
                    let input = generate(target, &corpus, &mut Rng::for_input(seed, target.name, n));
                    let result = run_one(target, &input);
                    busy[t].n.store(0, Ordering::Relaxed);
                    if let Err((kind, what)) = result {
                        let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
                        if f.is_none() {
                            *f = Some(Failure { kind, what, input, n, file: None });
                        }
                        stop.store(true, Ordering::Relaxed);
                        break 'work;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Watch: progress, and an input that never ends.
    let mut last_print = Instant::now();
    loop {
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        let now_ms = start.elapsed().as_millis() as u64;
        for b in busy.iter() {
            let n = b.n.load(Ordering::Relaxed);
            let since = b.since_ms.load(Ordering::Relaxed);
            if n > 0 && now_ms.saturating_sub(since) > HANG_SECS * 1000 && b.n.load(Ordering::Relaxed) == n {
                // The stuck thread is left behind; the input is made again from its number.
                stop.store(true, Ordering::Relaxed);
                let input = generate(target, &corpus, &mut Rng::for_input(settings.seed, target.name, n - 1));
                let what = format!("input still running after {HANG_SECS} s");
                let failure = Failure { kind: FailureKind::Hang, what, input, n: n - 1, file: None };
                return finish(target, done.load(Ordering::Relaxed), start.elapsed().as_secs_f64(), Some(failure));
            }
        }
        if settings.progress && last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            let d = done.load(Ordering::Relaxed);
            let secs = start.elapsed().as_secs_f64();
            eprintln!("  {}: {d} of {} inputs, {:.0} s, {:.0}/s", target.name, settings.inputs, secs, d as f64 / secs);
        }
    }
    for h in handles {
        let _ = h.join();
    }
    let failure = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
    finish(target, done.load(Ordering::Relaxed), start.elapsed().as_secs_f64(), failure)
}

fn finish(target: &'static Target, inputs: u64, secs: f64, mut failure: Option<Failure>) -> Outcome {
    if let Some(f) = failure.as_mut() {
        f.file = save(target.name, &f.input).ok();
    }
    Outcome { target: target.name, inputs, secs, failure }
}

/// Bytes worth writing over a byte.
const BYTES: [u8; 14] = [0x00, 0xff, 0x7f, 0x80, 0x7e, 0x01, 0x20, b'\r', b'\n', b'.', b':', b'-', b'<', b'>'];
/// Numbers worth writing over a length field, big-endian or little, in 2, 4 or 8 bytes.
const NUMBERS: [u64; 20] = [
    0,
    1,
    0x7d,
    0x7e,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xfffe,
    0xffff,
    0x1_0000,
    0xfff0,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];
/// Values of `keep` worth driving the decoders with.
const KEEPS: [usize; 12] = [1, 2, 3, 7, 14, 64, 128, 511, 512, 513, 4096, protolab::session::KEEP_BYTES];

/// Makes an input: a corpus entry with a few mutations stacked, or (rarely) random bytes.
pub fn generate(target: &Target, corpus: &[Input], rng: &mut Rng) -> Input {
    if rng.one_in(32) {
        let chunks = (0..1 + rng.below(4))
            .map(|_| {
                let dir = if rng.one_in(3) { 1 - target.focus } else { target.focus };
                Chunk::new(dir, (0..rng.small_len(10)).map(|_| rng.next() as u8).collect::<Vec<_>>())
            })
            .collect();
        return Input { keep: *rng.pick(&KEEPS), chunks };
    }
    // Entries past 16 KiB (a frame longer than the bytes a step keeps) are slow to mutate and
    // feed: one pick in eight.
    let mut entry = rng.pick(corpus);
    for _ in 0..8 {
        if entry.len() <= BIG || rng.one_in(8) {
            break;
        }
        entry = rng.pick(corpus);
    }
    let mut input = entry.clone();
    for _ in 0..1 << rng.below(4) {
        mutate(target, corpus, &mut input, rng);
    }
    if target.stream && rng.one_in(2) {
        resplit(&mut input, rng);
    }
    // Bound the input's size: drop bytes from the end.
    let mut room = MAX_INPUT;
    for c in &mut input.chunks {
        c.bytes.truncate(room);
        room -= c.bytes.len();
    }
    input
}

/// Which chunk to mutate: most often one of the focus direction.
fn choose(target: &Target, input: &mut Input, rng: &mut Rng) -> usize {
    if input.chunks.is_empty() {
        input.chunks.push(Chunk::new(target.focus, Vec::new()));
    }
    if !rng.one_in(4) {
        let focused: Vec<usize> = (0..input.chunks.len()).filter(|&i| input.chunks[i].dir == target.focus).collect();
        if !focused.is_empty() {
            return *rng.pick(&focused);
        }
    }
    rng.below(input.chunks.len())
}

/// One mutation.
fn mutate(target: &Target, corpus: &[Input], input: &mut Input, rng: &mut Rng) {
    let i = choose(target, input, rng);
    let b = &mut input.chunks[i].bytes;
    let len = b.len();
    match rng.below(20) {
        // Flip a bit or a few.
        0 | 1 if len > 0 => {
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(len);
                b[at] ^= 1 << rng.below(8);
            }
        }
        // A byte set to one worth trying.
        2 | 3 if len > 0 => {
            let at = rng.below(len);
            b[at] = *rng.pick(&BYTES);
        }
        // A random byte, or one nudged up or down.
        4 if len > 0 => {
            let at = rng.below(len);
            b[at] =
                if rng.one_in(2) { rng.next() as u8 } else { b[at].wrapping_add(rng.below(70) as u8).wrapping_sub(35) };
        }
        // A length field set large (or small): 2, 4 or 8 bytes, big- or little-endian.
        5 | 6 if len > 0 => {
            let width = *rng.pick(&[1usize, 2, 4, 8]);
            let value = *rng.pick(&NUMBERS);
            let bytes = if rng.one_in(4) { value.to_le_bytes() } else { value.to_be_bytes() };
            let bytes: &[u8] = if rng.one_in(4) { &bytes[..width] } else { &bytes[8 - width..] };
            let at = rng.below(len);
            let n = bytes.len().min(len - at);
            b[at..at + n].copy_from_slice(&bytes[..n]);
        }
        // Cut short.
        7 => b.truncate(rng.below(len + 1)),
        // Bytes inserted: random, a token, or a run of one byte.
        8 | 9 => {
            let at = rng.below(len + 1);
            let new: Vec<u8> = match rng.below(3) {
                0 => (0..rng.small_len(5)).map(|_| rng.next() as u8).collect(),
                1 if !target.tokens.is_empty() => rng.pick(target.tokens).to_vec(),
                _ => vec![*rng.pick(&BYTES); rng.small_len(11)],
            };
            b.splice(at..at, new);
        }
        // A token written over bytes.
        10 if !target.tokens.is_empty() => {
            let token = rng.pick(target.tokens);
            let at = rng.below(len + 1);
            let end = (at + token.len()).min(len);
            b.splice(at..end, token.iter().copied());
        }
        // Bytes deleted.
        11 if len > 0 => {
            let at = rng.below(len);
            let n = rng.small_len(8).min(len - at);
            b.drain(at..at + n);
        }
        // A piece copied elsewhere: inserted (duplicated) or written over.
        12 | 13 if len > 0 => {
            let from = rng.below(len);
            let n = rng.small_len(10).min(len - from);
            let piece = b[from..from + n].to_vec();
            let to = rng.below(len + 1);
            if rng.one_in(2) {
                b.splice(to..to, piece);
            } else {
                let end = (to + n).min(len);
                b.splice(to..end, piece);
            }
        }
        // Spliced with a chunk of another input: this one's start, the other's end.
        14 => {
            let other = rng.pick(corpus);
            if !other.chunks.is_empty() {
                let o = &rng.pick(&other.chunks).bytes;
                let at = rng.below(len + 1);
                let from = rng.below(o.len() + 1);
                b.truncate(at);
                b.extend_from_slice(&o[from..]);
            }
        }
        // A chunk split in two: a socket delivers a stream in pieces.
        15 if len > 1 => {
            let at = 1 + rng.below(len - 1);
            let tail = b.split_off(at);
            let dir = input.chunks[i].dir;
            input.chunks.insert(i + 1, Chunk::new(dir, tail));
        }
        // A chunk repeated, or dropped.
        16 => {
            if rng.one_in(2) || input.chunks.len() == 1 {
                let c = input.chunks[i].clone();
                let to = rng.below(input.chunks.len() + 1);
                input.chunks.insert(to, c);
            } else {
                input.chunks.remove(i);
            }
        }
        // Two chunks swapped, or one sent the other way.
        17 => {
            let j = rng.below(input.chunks.len());
            if rng.one_in(2) {
                input.chunks.swap(i, j);
            } else {
                input.chunks[i].dir ^= 1;
            }
        }
        // A chunk of another input inserted.
        18 => {
            let other = rng.pick(corpus);
            if !other.chunks.is_empty() {
                let c = rng.pick(&other.chunks).clone();
                let to = rng.below(input.chunks.len() + 1);
                input.chunks.insert(to, c);
            }
        }
        // Another keep.
        _ => input.keep = if rng.one_in(2) { *rng.pick(&KEEPS) } else { 1 + rng.below(70_000) },
    }
}

/// Splits chunks at random points, as a socket would deliver them: sometimes byte by byte.
fn resplit(input: &mut Input, rng: &mut Rng) {
    let mut out = Vec::with_capacity(input.chunks.len() * 2);
    for c in input.chunks.drain(..) {
        if c.bytes.len() < 2 || rng.one_in(2) {
            out.push(c);
            continue;
        }
        // Byte by byte now and then, for messages of a few KiB at most.
        let max_log2 = if c.bytes.len() <= 4096 && rng.one_in(8) { 0 } else { 12 };
        let mut rest = &c.bytes[..];
        while !rest.is_empty() {
            let n = rng.small_len(max_log2).min(rest.len());
            out.push(Chunk::new(c.dir, &rest[..n]));
            rest = &rest[n..];
        }
    }
    input.chunks = out;
}
