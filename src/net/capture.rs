//! Packet capture on the host wire (Linux, CAP_NET_RAW): the kernel's own TCP segments of a
//! lab's loopback connections, as steps beside the application messages. One capture socket
//! serves the whole process; it is opened once, after which the capability is dropped, and each
//! run takes the frames of its own server port. Without the capability, [`Capture::open`] says
//! in one line what is missing and how to grant it, and nothing else changes.

use crate::session::{Step, StepSink};
use std::sync::OnceLock;
use tokio::sync::broadcast;

/// How to grant the capability, for the one-line hint.
pub const HINT: &str =
    "packet capture is off: it needs CAP_NET_RAW (run as root, or once: sudo setcap cap_net_raw+ep $(which protolab))";

/// Frames from the loopback interface, for every run of this process.
static FRAMES: OnceLock<Result<broadcast::Sender<Vec<u8>>, String>> = OnceLock::new();

/// Frames the capture lost so far, in this process: dropped by the kernel's packet socket, or
/// by a run that could not keep up.
static LOST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many captured frames were lost so far (shown on screen when not 0).
pub fn lost() -> u64 {
    LOST.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether this process can capture (opening the capture if it was not open yet); `Err` is the
/// one-line reason it cannot.
pub fn available() -> Result<(), String> {
    FRAMES.get_or_init(start).as_ref().map(|_| ()).map_err(Clone::clone)
}

/// A run's view of the capture: the segments of its own connections become its steps.
pub struct Capture {
    task: tokio::task::JoinHandle<()>,
    /// Segments recorded so far, and a bell for each.
    seen: std::sync::Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Capture {
    /// Starts recording the loopback segments to or from `port` into `sink`. `Err` is the
    /// one-line reason there is no capture.
    pub fn open(sink: StepSink, port: u16) -> Result<Capture, String> {
        let frames = FRAMES.get_or_init(start).clone()?;
        let mut rx = frames.subscribe();
        let seen = std::sync::Arc::new((std::sync::atomic::AtomicUsize::new(0), tokio::sync::Notify::new()));
        let bell = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(frame) => {
                        if let Some(step) = segment_step(&frame, port) {
                            sink.emit(step);
                            bell.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            bell.1.notify_waiters();
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        LOST.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Capture { task, seen })
    }

    /// Waits until at least `count` segments were recorded and none came for `quiet`, or
    /// `limit` passed: the capture runs a little behind the sockets, and this lets it catch
    /// up (the handshake before the first message; the last FIN and ACK before the end).
    pub async fn catch_up(&self, count: usize, quiet: std::time::Duration, limit: std::time::Duration) {
        let wait = async {
            loop {
                let rung = self.seen.1.notified();
                if self.seen.0.load(std::sync::atomic::Ordering::Relaxed) >= count
                    && tokio::time::timeout(quiet, rung).await.is_err()
                {
                    return;
                }
                if self.seen.0.load(std::sync::atomic::Ordering::Relaxed) < count {
                    self.seen.1.notified().await;
                }
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

/// A captured frame as a step, if it is a TCP segment of a connection to `port`.
fn segment_step(frame: &[u8], port: u16) -> Option<Step> {
    let msg = crate::wire::frame::decode_captured(frame);
    if msg.proto != "TCP" {
        return None;
    }
    let num = |path: &str| msg.fields.iter().find(|f| f.path == path).and_then(|f| f.value.as_u64());
    let (src, dst) = (num("TCP.src_port")?, num("TCP.dst_port")?);
    let (from, to) = match (src == u64::from(port), dst == u64::from(port)) {
        (true, _) => ("server", "client"),
        (_, true) => ("client", "server"),
        _ => return None,
    };
    Some(Step { frame: true, ..msg.into_step(from, to, frame.to_vec(), frame.len()) })
}

#[cfg(target_os = "linux")]
fn start() -> Result<broadcast::Sender<Vec<u8>>, String> {
    let socket = super::raw::RawSocket::open("lo").map_err(|_| HINT.to_string())?;
    drop_net_raw();
    let (tx, _) = broadcast::channel(1024);
    let sender = tx.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_600];
        while let Ok(n) = socket.recv(&mut buf).await {
            // Nobody listening right now is fine: frames of no run are not kept.
            let _ = sender.send(buf[..n].to_vec());
        }
    });
    Ok(tx)
}

#[cfg(not(target_os = "linux"))]
fn start() -> Result<broadcast::Sender<Vec<u8>>, String> {
    Err("packet capture is Linux-only; use --wire sim to see every segment".into())
}

/// Gives up CAP_NET_RAW once the capture socket is open: the process needs it no more.
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
