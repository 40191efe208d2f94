//! The real binary's TUI in a pseudo-terminal: however it ends (`q`, or SIGTERM, SIGINT, SIGHUP,
//! SIGQUIT sent from outside, while a frame waits at the gate or right at startup), the terminal
//! modes are those it had before, the output ends by leaving the alternate screen, turning mouse
//! reporting off and showing the cursor after its last drawing, and a signal's end is that
//! signal's (a shell reports 128 + its number).
//!
//! The pty is `openpty(3)`; the child is a session leader with the pty's slave as its controlling
//! terminal and stdin, stdout and stderr, as under a terminal emulator; a thread reads the master.

#![cfg(unix)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous, for a debug build on a loaded machine; a passing run takes a fraction of it.
const LIMIT: Duration = Duration::from_secs(15);
/// Shown in the status line once the TCP lab's first frame waits at the gate.
const AT_THE_GATE: &str = "waits at the gate";

/// The terminal modes `stty -g` would show.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Modes {
    iflag: u64,
    oflag: u64,
    cflag: u64,
    lflag: u64,
    cc: Vec<u8>,
    ispeed: u64,
    ospeed: u64,
}

fn modes(fd: RawFd) -> Modes {
    // SAFETY: tcgetattr fills the zeroed struct; the speeds are read from it.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0, "tcgetattr: {}", std::io::Error::last_os_error());
        Modes {
            iflag: t.c_iflag as u64,
            oflag: t.c_oflag as u64,
            cflag: t.c_cflag as u64,
            lflag: t.c_lflag as u64,
            cc: t.c_cc.to_vec(),
            ispeed: libc::cfgetispeed(&t) as u64,
            ospeed: libc::cfgetospeed(&t) as u64,
        }
    }
}

/// A running `protolab tui` on its own pty; killed and reaped if the test fails early.
struct Tui {
    child: Child,
    master: Arc<OwnedFd>,
    slave: OwnedFd,
    before: Modes,
    out: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// The child's working directory, where a core would be dumped.
    _dir: tempfile::TempDir,
}

impl Tui {
    fn start() -> Tui {
        let (mut master, mut slave) = (-1, -1);
        let mut size = libc::winsize { ws_row: 30, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: openpty writes two descriptors, which are then owned here.
        let (master, slave) = unsafe {
            let r = libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null_mut::<libc::termios>() as _,
                &raw mut size as _,
            );
            assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
            for fd in [master, slave] {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            (Arc::new(OwnedFd::from_raw_fd(master)), OwnedFd::from_raw_fd(slave))
        };
        let before = modes(slave.as_raw_fd());
        let tty = || Stdio::from(slave.try_clone().unwrap());
        let mut command = Command::new(env!("CARGO_BIN_EXE_protolab"));
        let dir = tempfile::tempdir().unwrap();
        command
            .args(["tui", "--lab", "tcp"])
            .env("TERM", "xterm-256color")
            .env("PROTOLAB_CONFIG", "/nonexistent/protolab.toml")
            .env("LANG", "C.UTF-8")
            .current_dir(dir.path());
        command.stdin(tty()).stdout(tty()).stderr(tty());
        // SAFETY: setsid, ioctl, getrlimit and setrlimit are async-signal-safe; stdin is already
        // the slave here.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Cores allowed, so that a SIGQUIT that dumped one would show.
                let mut core: libc::rlimit = std::mem::zeroed();
                if libc::getrlimit(libc::RLIMIT_CORE, &mut core) == 0 {
                    core.rlim_cur = core.rlim_max;
                    libc::setrlimit(libc::RLIMIT_CORE, &core);
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("protolab starts");

        let out = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (master, out, stop) = (master.clone(), out.clone(), stop.clone());
            std::thread::spawn(move || read_until_stopped(master.as_raw_fd(), &out, &stop))
        };
        Tui { child, master, slave, before, out, stop, reader: Some(reader), _dir: dir }
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn output(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + LIMIT;
        while !contains(&self.output(), text.as_bytes()) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} on the screen within {LIMIT:?}:\n{}",
                shown(&self.output())
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_keys(&self, keys: &[u8]) {
        // SAFETY: writes from a live buffer to the master this struct owns.
        let n = unsafe { libc::write(self.master.as_raw_fd(), keys.as_ptr().cast(), keys.len()) };
        assert_eq!(n, keys.len() as isize);
    }

    fn signal(&self, signal: i32) {
        // SAFETY: the child is not reaped yet, so its pid is still its own.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Waits for the end; returns the status, the modes the pty had before and has now, and all
    /// the output.
    fn end(mut self) -> (ExitStatus, Modes, Modes, Vec<u8>) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "protolab still runs {LIMIT:?} later:\n{}", shown(&self.output()));
            std::thread::sleep(Duration::from_millis(5));
        };
        let after = modes(self.slave.as_raw_fd());
        // What the child wrote is in the pty already: the reader stops once it has read it all.
        self.stop.store(true, Ordering::SeqCst);
        self.reader.take().unwrap().join().unwrap();
        (status, self.before.clone(), after, self.output())
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Reads the master until `stop` is set and nothing more is there.
fn read_until_stopped(fd: RawFd, out: &Mutex<Vec<u8>>, stop: &AtomicBool) {
    let mut buf = [0u8; 8192];
    loop {
        let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd, then a read into a live buffer.
        let ready = unsafe { libc::poll(&mut poll, 1, 20) };
        if ready > 0 {
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            out.lock().unwrap().extend_from_slice(&buf[..n as usize]);
        } else if ready == 0 && stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The output's tail, readable, for failure messages.
fn shown(out: &[u8]) -> String {
    let tail = &out[out.len().saturating_sub(1500)..];
    String::from_utf8_lossy(tail).replace('\x1b', "␛")
}

/// The output cut into escape sequences (`Some(parameters and final byte)` for a CSI sequence)
/// and text (`None`), each with where it ends. Fails on a sequence cut short.
fn pieces(out: &[u8]) -> Vec<(usize, Option<&[u8]>)> {
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < out.len() {
        if out[i] != 0x1b {
            i += 1;
            pieces.push((i, None));
            continue;
        }
        assert!(i + 1 < out.len(), "the output ends inside an escape sequence: {}", shown(out));
        if out[i + 1] != b'[' {
            // A two-byte sequence (ESC 7, ESC 8, ESC =): not drawing.
            i += 2;
            pieces.push((i, Some(&out[i - 1..i])));
            continue;
        }
        let start = i + 2;
        let end = out[start..].iter().position(|b| (0x40..=0x7e).contains(b)).map(|p| start + p);
        let end = end.unwrap_or_else(|| panic!("the output ends inside an escape sequence: {}", shown(out)));
        i = end + 1;
        pieces.push((i, Some(&out[start..=end])));
    }
    pieces
}

/// The output ends with the terminal given back: after the last drawn character and the last
/// time each mode was set, the alternate screen is left, every mouse reporting mode crossterm
/// turns on is off again, and the cursor is shown.
fn assert_ends_restored(out: &[u8]) {
    let pieces = pieces(out);
    let last = |seq: &str| pieces.iter().rposition(|(_, p)| *p == Some(seq.as_bytes()));
    let last_text = pieces.iter().rposition(|(_, p)| p.is_none());
    for (on, off) in [
        ("?1049h", "?1049l"),
        ("?1000h", "?1000l"),
        ("?1002h", "?1002l"),
        ("?1003h", "?1003l"),
        ("?1006h", "?1006l"),
        ("?1015h", "?1015l"),
        ("?25l", "?25h"),
    ] {
        let at = last(off).unwrap_or_else(|| panic!("the output never says {off}: {}", shown(out)));
        assert!(last(on) < Some(at), "{on} after the last {off}: {}", shown(out));
        assert!(last_text < Some(at), "drawing after the last {off}: {}", shown(out));
    }
}

fn assert_killed_by(status: ExitStatus, signal: i32) {
    assert_eq!(status.signal(), Some(signal), "{status:?}: not killed by signal {signal}");
    assert!(!status.core_dumped(), "{status:?}: a core was dumped");
}

#[test]
fn q_quits_with_the_terminal_as_it_was() {
    let tui = Tui::start();
    tui.wait_for(AT_THE_GATE);
    tui.type_keys(b"q");
    let (status, before, after, out) = tui.end();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(after, before);
    assert_ends_restored(&out);
}

#[test]
fn each_signal_restores_the_terminal_then_ends_the_process_by_it() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        let tui = Tui::start();
        // The TCP lab's first frame waits at the gate: the exchange is paused mid-way.
        tui.wait_for(AT_THE_GATE);
        assert_ne!(modes(tui.slave.as_raw_fd()), tui.before, "the TUI runs in raw mode");
        tui.signal(signal);
        let (status, before, after, out) = tui.end();
        assert_killed_by(status, signal);
        assert_eq!(after, before, "signal {signal}: the terminal modes differ from before");
        assert_ends_restored(&out);
    }
}

/// A signal that comes before the first drawing: either before it is caught (the terminal was
/// never touched) or after (the terminal is given back all the same).
#[test]
fn a_signal_at_startup_leaves_the_terminal_as_it_was() {
    for delay_ms in [0, 2, 4, 6, 8, 10, 15, 20, 40, 80] {
        let tui = Tui::start();
        std::thread::sleep(Duration::from_millis(delay_ms));
        tui.signal(libc::SIGTERM);
        let (status, before, after, out) = tui.end();
        assert_killed_by(status, libc::SIGTERM);
        assert_eq!(after, before, "SIGTERM {delay_ms} ms after the start: the terminal modes differ from before");
        if contains(&out, b"\x1b[?1049h") {
            assert_ends_restored(&out);
        } else {
            assert!(
                pieces(&out).iter().all(|(_, p)| p.is_some()),
                "drawing without the alternate screen: {}",
                shown(&out)
            );
        }
    }
}
