//! TapStream: an AsyncRead + AsyncWrite wrapper that records every byte each way, asks the gate
//! before each message it sends, and turns the bytes into steps with the lab's decoders.

use super::Carriers;
use super::capture::Capture;
use super::gate::Gate;
use crate::locale::en;
use crate::session::{KEEP_BYTES, Layer, StepSink};
use crate::wire::{Decoded, Decoder, Message};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes a direction may hold without a message boundary before they are called malformed.
const MAX_UNFRAMED: usize = 1024 * 1024;
/// Bytes added at a time past [`KEEP_BYTES`] while a decoder still looks for a boundary.
const MIN_PIECE: usize = 4096;

/// Which way bytes go on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

impl Dir {
    fn index(self) -> usize {
        self as usize
    }
}

/// One direction of a connection: its decoder and the bytes of the message in progress.
struct Way {
    dir: Dir,
    decoder: Box<dyn Decoder>,
    from: String,
    to: String,
    /// Bytes of the message in progress (at most a little over `KEEP_BYTES` of a long one).
    buf: Vec<u8>,
    /// Where `buf` starts in this direction's stream (bytes before it, from the first).
    base: u64,
    /// Bytes of a long message still to pass unkept.
    skip: usize,
    /// A FIN or reset was recorded: nothing more comes this way.
    closed: bool,
    /// The steps that carried the message in progress (sim wire).
    carriers: Vec<u64>,
    /// The steps that carried the latest bytes: they may hold the start of the next message.
    last: Vec<u64>,
}

/// Records both directions of one connection into steps.
pub struct Recorder {
    ways: Mutex<[Way; 2]>,
    sink: StepSink,
    /// The capture of this connection's segments: messages wait there to follow them.
    capture: std::sync::OnceLock<Arc<Capture>>,
    /// Make a step of each side's FIN: on kernel sockets, where the segments are not seen.
    close_steps: std::sync::atomic::AtomicBool,
}

impl Recorder {
    /// `decoders` are (client→server, server→client).
    pub fn new(sink: StepSink, names: [&str; 2], decoders: (Box<dyn Decoder>, Box<dyn Decoder>)) -> Arc<Self> {
        let way = |dir, decoder, from: &str, to: &str| Way {
            dir,
            decoder,
            from: from.into(),
            to: to.into(),
            buf: Vec::new(),
            base: 0,
            skip: 0,
            closed: false,
            carriers: Vec::new(),
            last: Vec::new(),
        };
        Arc::new(Recorder {
            ways: Mutex::new([
                way(Dir::ClientToServer, decoders.0, names[0], names[1]),
                way(Dir::ServerToClient, decoders.1, names[1], names[0]),
            ]),
            sink,
            capture: std::sync::OnceLock::new(),
            close_steps: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Whether FIN and RST become steps of their own (not where the wire shows the segments).
    pub fn set_close_steps(&self, on: bool) {
        self.close_steps.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The connection's segments are captured: its messages follow the segments that carried
    /// them (and name them in `carried_by`), and the captured FINs replace the close steps.
    pub fn follow(&self, capture: Arc<Capture>) {
        self.set_close_steps(false);
        let _ = self.capture.set(capture);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Way; 2]> {
        self.ways.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes that crossed the socket in `dir`. Returns true when the direction is now at a
    /// message boundary (nothing half-sent).
    pub fn feed(&self, dir: Dir, data: &[u8]) -> bool {
        self.feed_locked(&mut self.lock(), dir, data, &[])
    }

    /// Writes through `inner` and records what went, holding the lock across the write: the
    /// peer cannot record its answer before our message is recorded, so steps keep cause order.
    fn write<S: AsyncWrite + Unpin>(
        &self,
        dir: Dir,
        inner: &mut S,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<(usize, bool)>> {
        let mut ways = self.lock();
        let n = ready!(Pin::new(inner).poll_write(cx, buf))?;
        Poll::Ready(Ok((n, self.feed_locked(&mut ways, dir, &buf[..n], &[]))))
    }

    /// Shuts down our side through `inner` and records the FIN, under the lock for cause order.
    fn shutdown<S: AsyncWrite + Unpin>(&self, dir: Dir, inner: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut ways = self.lock();
        let result = ready!(Pin::new(inner).poll_shutdown(cx));
        self.end_locked(&mut ways, dir, None);
        Poll::Ready(result)
    }

    /// Records bytes; `carried` are the steps that delivered them, where the wire knows.
    fn feed_locked(&self, ways: &mut [Way; 2], dir: Dir, mut data: &[u8], carried: &[u64]) -> bool {
        // What waits the other way may be readable now: a TLS record whose keys our endpoint
        // logged as it read what came before, and before it wrote this.
        let other = &mut ways[1 - dir.index()];
        if !other.buf.is_empty() && other.skip == 0 {
            self.drain(other);
        }
        let way = &mut ways[dir.index()];
        way.last = carried.to_vec();
        // The tail of a long message already told names no carriers of what comes next.
        if way.skip == 0 {
            for c in carried {
                if !way.carriers.contains(c) {
                    way.carriers.push(*c);
                }
            }
        }
        while !data.is_empty() {
            if way.skip > 0 {
                // The tail of a long message: counted, never copied.
                let n = way.skip.min(data.len());
                way.skip -= n;
                way.base += n as u64;
                data = &data[n..];
                if way.skip == 0 && !data.is_empty() {
                    // The next message starts in the bytes these steps carried.
                    way.carriers = way.last.clone();
                }
                continue;
            }
            // Copy only what a decision needs: up to the bytes kept of a message, more only in
            // small pieces while a decoder still looks for a boundary. Never past the bytes kept
            // before a decoder has seen them: a frame whole only past them would have fields
            // pointing at bytes the step does not keep.
            let room = if way.buf.len() < KEEP_BYTES { KEEP_BYTES - way.buf.len() } else { MIN_PIECE };
            let n = room.min(data.len());
            way.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.drain(way);
        }
        let done = way.buf.is_empty() && way.skip == 0;
        // What this direction said may let the other go on: bytes sent ahead of a reply that
        // decides how to read them (SMTP text after DATA, before the 354) wait there.
        let other = &mut ways[1 - dir.index()];
        if !other.buf.is_empty() && other.skip == 0 {
            self.drain(other);
        }
        done
    }

    /// Cuts every whole message off the front of the buffer.
    fn drain(&self, way: &mut Way) {
        let mut at = 0;
        while at < way.buf.len() {
            match way.decoder.decode(&way.buf[at..], KEEP_BYTES) {
                Decoded::Incomplete => {
                    let pending = way.buf.len() - at;
                    if pending > MAX_UNFRAMED {
                        let msg = Message::new(
                            Layer::Application,
                            "?",
                            "malformed",
                            format!("{pending} bytes without a message boundary"),
                        )
                        .malformed(en("no message boundary in {n} bytes", &[("n", &pending)]));
                        self.emit(way, at, &way.buf[at..], msg, pending);
                        at = way.buf.len();
                    }
                    break;
                }
                Decoded::Skip { len } => at += len.clamp(1, way.buf.len() - at),
                Decoded::Message { msg, len } => {
                    let len = len.max(1);
                    let available = way.buf.len() - at;
                    self.emit(way, at, &way.buf[at..at + len.min(available)], msg, len);
                    // What follows in the buffer came with the latest bytes.
                    way.carriers = way.last.clone();
                    if len <= available {
                        at += len;
                    } else {
                        way.skip = len - available;
                        at = way.buf.len();
                    }
                }
            }
        }
        way.buf.drain(..at);
        way.base += at as u64;
        if way.buf.is_empty() && way.skip == 0 {
            way.carriers.clear();
        }
    }

    /// Hands the sink a step for `msg`: `len` bytes on the wire from `at` in the buffer, the
    /// first of them in `bytes`. Where the segments are captured, it follows them.
    fn emit(&self, way: &Way, at: usize, bytes: &[u8], msg: Message, len: usize) {
        let kept = bytes.len().min(KEEP_BYTES);
        let mut step = msg.into_step(&way.from, &way.to, bytes[..kept].to_vec(), len);
        step.carried_by = way.carriers.clone();
        match self.capture.get() {
            Some(capture) => {
                // A frame may say it is longer than any stream (a 64-bit length near 2^64).
                let start = way.base + at as u64;
                capture.message(way.dir, start..start.saturating_add(len as u64), step);
            }
            None => {
                self.sink.emit(step);
            }
        }
    }

    /// The sender in `dir` closed its side (a FIN went out), or the reader saw it arrive.
    pub fn closed(&self, dir: Dir) {
        self.end_locked(&mut self.lock(), dir, None);
    }

    /// The connection broke in `dir` (reset, or an error reading).
    pub fn broken(&self, dir: Dir, err: &io::Error) {
        self.end_locked(&mut self.lock(), dir, Some(err));
    }

    /// Records that the side writing in `dir` ends the session at one of its limits (see
    /// [`super::limits`]); its close follows.
    pub fn limit(&self, dir: Dir, err: &io::Error) {
        let ways = self.lock();
        let way = &ways[dir.index()];
        let msg = Message::new(Layer::Transport, "TCP", "socket.limit", format!("limit: {err}"));
        self.emit(way, 0, &[], msg, 0);
    }

    fn end_locked(&self, ways: &mut [Way; 2], dir: Dir, error: Option<&io::Error>) {
        let way = &mut ways[dir.index()];
        if way.closed {
            return;
        }
        way.closed = true;
        if !way.buf.is_empty() || way.skip > 0 {
            let reason = match way.skip {
                0 => en("the connection closed in the middle of a message", &[]),
                n => en("the connection closed {n} bytes before the end of the message", &[("n", &n)]),
            };
            let len = way.buf.len();
            let msg =
                Message::new(Layer::Application, "?", "malformed", format!("{len} bytes of an unfinished message"))
                    .malformed(reason);
            self.emit(way, 0, &way.buf, msg, len);
            way.buf.clear();
            way.skip = 0;
        }
        if !self.close_steps.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        // The close is a real FIN segment, but the socket API does not show its bytes: len 0.
        let msg = match error {
            None => Message::new(
                Layer::Transport,
                "TCP",
                "socket.close",
                format!("close: {} closes its side (its kernel sends FIN)", way.from),
            ),
            Some(e) => {
                let what = if e.kind() == io::ErrorKind::ConnectionReset { "reset (RST)" } else { "error" };
                Message::new(Layer::Transport, "TCP", "socket.reset", format!("{what}: {e}")).malformed(e.to_string())
            }
        };
        self.emit(way, 0, &[], msg, 0);
    }
}

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A stream that records what crosses it. It records what its own endpoint writes (and its
/// FIN); with `record_reads`, also what the peer sends, for peers that are not ours.
pub struct TapStream<S> {
    inner: S,
    rec: Arc<Recorder>,
    /// The direction of this endpoint's writes.
    out: Dir,
    /// Record what is read too: the peer is a real outside program with no tap of its own.
    record_reads: bool,
    /// Record what is written (not on the lab network, where the reader records the
    /// reassembled stream).
    record_writes: bool,
    /// Which steps carried what is read, where the wire knows.
    carriers: Option<Box<dyn Carriers>>,
    gate: Arc<Gate>,
    /// This endpoint's name, for the gate's "who waits".
    name: String,
    /// The gate let the current message through; closes again at the next message boundary.
    open: bool,
    /// The pending wait at the gate.
    wait: Option<Wait>,
    /// Our FIN was recorded.
    shut: bool,
}

impl<S> TapStream<S> {
    pub fn new(inner: S, rec: Arc<Recorder>, out: Dir, record_reads: bool, gate: Arc<Gate>) -> Self {
        let name = {
            let ways = rec.lock();
            ways[out.index()].from.clone()
        };
        TapStream {
            inner,
            rec,
            out,
            record_reads,
            record_writes: true,
            carriers: None,
            gate,
            name,
            open: false,
            wait: None,
            shut: false,
        }
    }

    /// Records the reassembled stream as it is read, with the steps that carried it, instead
    /// of what is written: for the lab network, where segments are steps of their own.
    pub fn reading(mut self, carriers: Option<Box<dyn Carriers>>) -> Self {
        self.record_reads = true;
        self.record_writes = false;
        self.carriers = carriers;
        self
    }

    fn inbound(&self) -> Dir {
        match self.out {
            Dir::ClientToServer => Dir::ServerToClient,
            Dir::ServerToClient => Dir::ClientToServer,
        }
    }

    /// Waits at the gate unless the current message already passed it.
    fn poll_gate(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.open {
            return Poll::Ready(());
        }
        let wait = self.wait.get_or_insert_with(|| {
            // A peer's message that this one answers is recorded under the recorder's lock,
            // which its writer holds from its write until its step is out: wait for it, so
            // that whoever watches the gate has every step that caused this message first.
            drop(self.rec.lock());
            let pass = self.gate.clone().pass(self.name.clone());
            Box::pin(async move {
                pass.await;
            })
        });
        ready!(wait.as_mut().poll(cx));
        self.wait = None;
        self.open = true;
        Poll::Ready(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TapStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut this.inner).poll_read(cx, buf));
        if this.record_reads {
            match &result {
                Ok(()) if buf.filled().len() == before => this.rec.closed(this.inbound()),
                Ok(()) => {
                    let bytes = &buf.filled()[before..];
                    let carried = this.carriers.as_mut().map(|c| c.take(bytes.len())).unwrap_or_default();
                    let inbound = this.inbound();
                    this.rec.feed_locked(&mut this.rec.lock(), inbound, bytes, &carried);
                }
                Err(e) if super::limits::reached(e) => this.rec.limit(this.out, e),
                Err(e) => this.rec.broken(this.inbound(), e),
            }
        }
        Poll::Ready(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TapStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        ready!(this.poll_gate(cx));
        if !this.record_writes {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let (n, at_boundary) = match ready!(this.rec.write(this.out, &mut this.inner, cx, buf)) {
            Ok(written) => written,
            Err(e) => {
                if super::limits::reached(&e) {
                    this.rec.limit(this.out, &e);
                }
                return Poll::Ready(Err(e));
            }
        };
        if at_boundary {
            this.open = false;
        }
        Poll::Ready(Ok(n))
    }

    /// Several buffers in one write, where nobody holds the messages at the gate (a presenter
    /// steps one message, one write, at a time): what TLS writes, a record a buffer.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        if !this.gate.is_free() || !this.record_writes || !this.inner.is_write_vectored() {
            return Pin::new(this).poll_write(cx, first);
        }
        let mut ways = this.rec.lock();
        let n = match ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)) {
            Ok(n) => n,
            Err(e) => {
                drop(ways);
                if super::limits::reached(&e) {
                    this.rec.limit(this.out, &e);
                }
                return Poll::Ready(Err(e));
            }
        };
        let mut left = n;
        for b in bufs {
            let take = left.min(b.len());
            if take > 0 {
                this.rec.feed_locked(&mut ways, this.out, &b[..take], &[]);
            }
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            ready!(this.poll_gate(cx));
        }
        if this.shut {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        }
        let result = ready!(this.rec.shutdown(this.out, &mut this.inner, cx));
        this.shut = true;
        this.open = false;
        Poll::Ready(result)
    }
}

impl<S> Drop for TapStream<S> {
    fn drop(&mut self) {
        // Closing the socket sends a FIN if we had not shut down our side already.
        if !self.shut {
            self.rec.closed(self.out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::ws::frame::{self, Opcode};
    use tokio::sync::mpsc;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    /// Found by the fuzzer: a frame a little longer than the bytes kept, its start already
    /// held, was topped up by a whole piece and decoded whole, so its payload field pointed
    /// past the 64 KiB the step keeps.
    #[test]
    fn a_frame_just_past_the_bytes_kept_has_its_fields_inside_them() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let lab = crate::labs::find("ws").unwrap();
        let rec = Recorder::new(StepSink::new("ws", tx), ["client", "server"], lab.decoders(false));
        rec.feed(Dir::ClientToServer, REQUEST);
        rec.feed(Dir::ServerToClient, RESPONSE);
        let bytes = frame::emit(true, Opcode::Binary, Some([1, 2, 3, 4]), &[0x5a; KEEP_BYTES + 4]);
        rec.feed(Dir::ClientToServer, &bytes[..KEEP_BYTES - 1000]);
        rec.feed(Dir::ClientToServer, &bytes[KEEP_BYTES - 1000..]);
        let step = std::iter::from_fn(|| rx.try_recv().ok()).last().unwrap();
        assert_eq!(
            (step.kind.as_str(), step.len, step.bytes.len()),
            ("ws.frame.binary.masked", bytes.len(), KEEP_BYTES)
        );
        for f in &step.fields {
            assert!(f.range[1] <= step.bytes.len(), "{} {:?}", f.path, f.range);
        }
    }

    /// Found by the fuzzer: a frame whose 64-bit length says 2^64 - 1 bytes. Where messages
    /// follow captured segments, its place in the stream (`start + len`) overflowed: a panic in
    /// a debug build, a range that ends before it starts in a release build.
    #[tokio::test]
    async fn a_frame_longer_than_any_stream_has_a_place_in_it() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = StepSink::new("ws", tx);
        let capture = Arc::new(Capture::without_frames(sink.clone()));
        let lab = crate::labs::find("ws").unwrap();
        let rec = Recorder::new(sink, ["client", "server"], lab.decoders(false));
        rec.follow(capture.clone());
        rec.feed(Dir::ClientToServer, REQUEST);
        rec.feed(Dir::ServerToClient, RESPONSE);
        let head = [0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4];
        rec.feed(Dir::ClientToServer, &[&head[..], &[0u8; KEEP_BYTES]].concat());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        capture.settle(std::time::Duration::ZERO, std::time::Duration::from_millis(50)).await;
        let step = std::iter::from_fn(|| rx.try_recv().ok()).last().unwrap();
        assert_eq!(
            (step.kind.as_str(), step.len, step.bytes.len()),
            ("ws.frame.binary.masked", usize::MAX, KEEP_BYTES)
        );
        assert!(step.malformed.unwrap().contains("most significant bit"));
    }

    /// After a message longer than the bytes kept, whose tail came in many segments, the next
    /// message names only the segments that carried its own bytes.
    #[test]
    fn the_message_after_a_long_one_names_only_its_own_carriers() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let lab = crate::labs::find("ws").unwrap();
        let rec = Recorder::new(StepSink::new("ws", tx), ["client", "server"], lab.decoders(false));
        rec.feed(Dir::ClientToServer, REQUEST);
        rec.feed(Dir::ServerToClient, RESPONSE);
        let long = frame::emit(true, Opcode::Binary, Some([1, 2, 3, 4]), &vec![0x5a; 4 * KEEP_BYTES]);
        let short = frame::emit(true, Opcode::Text, Some([1, 2, 3, 4]), b"next");
        let mut stream = long.clone();
        stream.extend_from_slice(&short);
        // 1000-byte segments, numbered from 100: the short frame rides in the last two.
        let pieces: Vec<&[u8]> = stream.chunks(1000).collect();
        let mut ways = rec.lock();
        for (i, piece) in pieces.iter().enumerate() {
            rec.feed_locked(&mut ways, Dir::ClientToServer, piece, &[100 + i as u64]);
        }
        drop(ways);
        let steps: Vec<crate::session::Step> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let next = steps.iter().find(|s| s.kind.starts_with("ws.frame.text")).expect("the short frame");
        let first = (long.len() / 1000) as u64;
        let last = (pieces.len() - 1) as u64;
        let own: Vec<u64> = (first..=last).map(|i| 100 + i).collect();
        assert_eq!(next.carried_by, own);
    }
}
