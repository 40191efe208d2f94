//! The command line (DESIGN.md): `protolab [tui|labs|run|serve]`. Exit status: 0 the exchange
//! completed; 1 it failed (the reason, in one line, on stderr); 2 the command line was wrong.

use crate::config::{Flags, Settings};
use crate::labs::{self, Lab, LabFuture, run};
use crate::locale::{Lang, en, tr};
use crate::net::Wire;
use crate::net::sim::{Faults, Link};
use crate::session::Pcap;
use crate::session::{Bounds, Format, Polled, StepQueue, StepSink, write_step};
use clap::{Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "protolab", version, about = "See network protocols work, one real message at a time.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Whether this command opens raw sockets of its own as it runs (a lab on a real
    /// interface), and so must keep CAP_NET_RAW: every other one gives it up at start.
    pub fn needs_raw_sockets(&self) -> bool {
        matches!(
            self.command,
            Some(Command::Run { interface: Some(_), .. } | Command::Serve { interface: Some(_), .. })
        )
    }

    /// Whether this command may ping on the host wire (the TUI, `run`, a lesson), and so wants
    /// a raw ICMP socket made while it may.
    pub fn may_ping(&self) -> bool {
        matches!(
            self.command,
            None | Some(Command::Tui { .. } | Command::Run { interface: None, .. } | Command::Lesson { .. })
        )
    }

    /// Whether this command may capture the kernel's segments (the TUI, or `run` on kernel
    /// sockets): the others need no capture socket.
    pub fn may_capture(&self) -> bool {
        matches!(
            self.command,
            None | Some(
                Command::Tui { .. }
                    | Command::Run { interface: None, no_capture: false, .. }
                    | Command::Lesson { name: Some(_), answers: None, reference: false, .. }
            )
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The terminal lab, every lab a tab (the default).
    Tui {
        /// Open on this lab's tab.
        #[arg(long)]
        lab: Option<String>,
        #[arg(long, value_enum)]
        wire: Option<Wire>,
        /// The language on screen and in the narration [default: from LC_ALL, LC_MESSAGES or
        /// LANG; ko_KR.UTF-8 → ko]
        #[arg(long, value_enum)]
        lang: Option<Lang>,
        /// Presenter mode, for a projector: the ladder takes the screen, the narration is a
        /// subtitle band (P switches it in the TUI)
        #[arg(long)]
        present: bool,
        /// Colours: dark, light, high-contrast (for a projector), no-color [default: dark, or
        /// no-color under NO_COLOR]
        #[arg(long, value_enum)]
        theme: Option<crate::tui::theme::Theme>,
        /// DHCP: how much faster than the network the lease clock runs.
        #[arg(long, value_name = "N", default_value_t = crate::labs::dhcp::DEFAULT_SPEEDUP, value_parser = clap::value_parser!(u32).range(1..=600))]
        lease_speedup: u32,
        /// Mail: bob reads by POP3 (download and delete) instead of IMAP.
        #[arg(long)]
        pop3: bool,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// The configuration file's settings (see `config --print`).
    Config {
        /// Print the effective configuration: each setting and where it came from.
        #[arg(long)]
        print: bool,
    },
    /// List the labs, their ports and RFCs.
    Labs {
        /// The language of the descriptions [default: from LC_ALL, LC_MESSAGES or LANG]
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
    /// Perform one exchange headless and print its steps.
    Run {
        /// The lab (`protolab labs` lists them).
        lab: String,
        /// The wire (default: the lab's own; `protolab labs` lists the wires each lab runs on).
        #[arg(long, value_enum)]
        wire: Option<Wire>,
        /// Talk to this real server instead of the embedded one (host wire); a host alone
        /// for ping.
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
        connect: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        faults: FaultArgs,
        /// Write the sim wire's frames to this pcap file (Wireshark, tshark, tcpdump -r).
        #[arg(long, value_name = "FILE")]
        pcap: Option<std::path::PathBuf>,
        /// Run the client on this real interface (labs that speak in frames: dhcp). Needs
        /// CAP_NET_RAW.
        #[arg(long, value_name = "IF")]
        interface: Option<String>,
        /// Do not capture the kernel's loopback segments on the host wire (with CAP_NET_RAW,
        /// they are shown by default).
        #[arg(long)]
        no_capture: bool,
        /// DHCP: how much faster than the network the lease clock runs (a 120 s lease takes
        /// 6 s at the default 20).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=600))]
        lease_speedup: Option<u32>,
        /// traceroute: probe with ICMP echo requests (traceroute -I) instead of UDP.
        #[arg(long)]
        icmp: bool,
        /// mail: bob reads by POP3 (download and delete) instead of IMAP.
        #[arg(long)]
        pop3: bool,
        /// pop3, imap with --connect: log in to the real server as NAME (the password after a colon, or
        /// in PROTOLAB_PASSWORD, which keeps it out of the process list).
        #[arg(long, value_name = "NAME[:PASSWORD]")]
        user: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Guided lessons: text, then questions graded by the real steps of the lab they drive.
    /// Without NAME, the lessons and your progress; with NAME, the lesson in the TUI.
    Lesson {
        /// The lesson (`protolab lesson` lists them).
        name: Option<String>,
        /// Play headless: the answers, one per question in order, comma-separated (`a,42,b`; an
        /// empty one skips), or `-` to type each on stdin as it is asked.
        #[arg(long, value_name = "A,B,...|-")]
        answers: Option<String>,
        /// Print the lesson's reference tables (the port table) and nothing else.
        #[arg(long)]
        reference: bool,
        /// The language [default: from LC_ALL, LC_MESSAGES or LANG]
        #[arg(long, value_enum)]
        lang: Option<Lang>,
        /// The port quiz's order (default: a new one each time).
        #[arg(long, value_name = "N", hide = true)]
        seed: Option<u64>,
    },
    /// Run the embedded server for outside clients and print each session's steps.
    Serve {
        /// The lab whose server to run (`protolab labs` lists them).
        lab: String,
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0", value_parser = parse_listen)]
        listen: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Exit after this many sessions.
        #[arg(long, value_name = "N")]
        sessions: Option<u32>,
        /// Serve on this real interface only (labs that speak in datagrams: dhcp). Needs
        /// CAP_NET_RAW and CAP_NET_BIND_SERVICE.
        #[arg(long, value_name = "IF")]
        interface: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Print the lab CA's certificate (PEM), which the TLS labs' servers are signed by: give it
    /// to a client to trust (`curl --cacert`, Python's `ssl`).
    Ca,
}

/// How a mail lab uses TLS, and what it tells about it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// smtp, pop3, imap: TLS after the dialogue asks for it (smtp: submission on 587,
    /// STARTTLS then AUTH; pop3: STLS; imap: STARTTLS, LOGINDISABLED before it).
    #[arg(long, conflicts_with = "tls")]
    starttls: bool,
    /// smtp, pop3, imap: TLS from the first byte (465, 995, 993).
    #[arg(long)]
    tls: bool,
    /// With --connect: trust the CA certificates in FILE (PEM) instead of the lab CA.
    #[arg(long, value_name = "FILE")]
    cafile: Option<std::path::PathBuf>,
    /// Append the TLS secrets of the run to FILE (NSS key log, as SSLKEYLOGFILE): Wireshark
    /// or tshark opens the run's --pcap with it.
    #[arg(long, value_name = "FILE")]
    keylog: Option<std::path::PathBuf>,
}

impl TlsArgs {
    fn mode(&self) -> crate::tls::Mode {
        match (self.starttls, self.tls) {
            (true, _) => crate::tls::Mode::StartTls,
            (_, true) => crate::tls::Mode::Implicit,
            _ => crate::tls::Mode::Plain,
        }
    }

    /// Checks the flags fit `lab` and sets them up: the key log, the mail labs' TLS story (for
    /// the labs made from now on); the lab as the flags make it.
    fn apply(&self, lab: Arc<dyn Lab>, connect: bool) -> Arc<dyn Lab> {
        let name = lab.info().name;
        let mail = matches!(name, "smtp" | "pop3" | "imap");
        if self.mode() != crate::tls::Mode::Plain && !mail {
            usage("--starttls and --tls choose the TLS story of the mail labs: they go with smtp, pop3 and imap");
        }
        if self.cafile.is_some() && !connect {
            usage("--cafile says which CA a real server's certificate comes from: it goes with --connect");
        }
        if let Some(path) = &self.keylog
            && let Err(e) = crate::tls::keys().write_to(path)
        {
            usage(&format!("--keylog: {e}"));
        }
        crate::tls::set_story(self.mode(), self.cafile.clone());
        if mail { crate::labs::find(name).unwrap_or(lab) } else { lab }
    }
}

/// The account `--user` names, checked: it goes with `run pop3|imap --connect`, which needs one.
fn account(lab: &str, connect: bool, user: Option<String>, tls: bool) -> Option<(String, String)> {
    let logs_in = matches!(lab, "pop3" | "imap") || (lab == "smtp" && tls);
    let Some(user) = user else {
        if logs_in && connect {
            usage("a real mail server needs an account: --user NAME:PASSWORD (or NAME, and PROTOLAB_PASSWORD)");
        }
        return None;
    };
    if !logs_in || !connect {
        usage(
            "--user logs in to a real server: it goes with `run pop3|imap --connect HOST:PORT` (smtp: with --starttls or --tls)",
        );
    }
    match user.split_once(':') {
        Some((name, password)) => Some((name.to_string(), password.to_string())),
        None => match std::env::var("PROTOLAB_PASSWORD") {
            Ok(password) => Some((user, password)),
            Err(_) => usage(&format!("--user {user}: give the password after a colon, or in PROTOLAB_PASSWORD")),
        },
    }
}

/// Faults on the sim wire's cable; frames are counted from 1 as they enter it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FaultArgs {
    /// Drop the Nth frame (repeatable; frames count from 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    drop: Vec<u64>,
    /// Hold the Nth frame back MS milliseconds, at most 10000 (repeatable).
    #[arg(long, value_name = "N:MS", value_parser = parse_delay)]
    delay: Vec<(u64, u64)>,
    /// Deliver the Nth frame twice (repeatable).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    duplicate: Vec<u64>,
    /// Flip a byte of the Nth frame (repeatable).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    corrupt: Vec<u64>,
}

impl FaultArgs {
    /// A frame has one fate on the cable: two faults named for one frame is a usage error.
    fn check(&self) {
        let mut seen = std::collections::HashSet::new();
        let all = self.drop.iter().chain(&self.duplicate).chain(&self.corrupt).chain(self.delay.iter().map(|(n, _)| n));
        for n in all {
            if !seen.insert(*n) {
                usage(&format!("frame {n} is given two faults: one frame, one fault"));
            }
        }
    }

    pub fn faults(&self) -> Faults {
        Faults {
            drop: self.drop.clone(),
            delay: self.delay.clone(),
            duplicate: self.duplicate.clone(),
            corrupt: self.corrupt.clone(),
        }
    }
}

/// The longest a frame may be held back on the cable: longer, and a run would end first.
const MAX_DELAY_MS: u64 = 10_000;

fn parse_delay(s: &str) -> Result<(u64, u64), String> {
    let (n, ms) = s.split_once(':').ok_or("expected N:MS, e.g. 3:500")?;
    let n: u64 = n.parse().map_err(|_| format!("bad frame number {n:?}"))?;
    let ms: u64 = ms.parse().map_err(|_| format!("bad delay {ms:?} (milliseconds, 1 to {MAX_DELAY_MS})"))?;
    if n == 0 {
        return Err("frames count from 1".into());
    }
    if !(1..=MAX_DELAY_MS).contains(&ms) {
        return Err(format!("a delay is 1 to {MAX_DELAY_MS} ms, not {ms}"));
    }
    Ok((n, ms))
}

/// `HOST:PORT` for `--connect`: a host (a name or an address) and a port from 1 to 65535.
fn parse_host_port(s: &str) -> Result<String, String> {
    // A host alone, for labs without ports (ping); the others ask for the port themselves.
    let Some((host, port)) = s.rsplit_once(':') else {
        return if s.is_empty() { Err("expected HOST:PORT, e.g. mail.example:25".into()) } else { Ok(s.to_string()) };
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("no host before the port".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(s.to_string()),
        _ => Err(format!("bad port {port:?} (1 to 65535)")),
    }
}

/// `ADDR:PORT` for `--listen`: an IP address and a port (0 picks a free one).
fn parse_listen(s: &str) -> Result<String, String> {
    s.parse::<std::net::SocketAddr>()
        .map(|_| s.to_string())
        .map_err(|_| format!("expected an IP address and a port, e.g. 127.0.0.1:2525, not {s:?}"))
}

/// A command line that asks for something impossible: one line, exit status 2.
/// The configuration file, or the usage error (exit 2) that names what is wrong in it.
fn load_config() -> (crate::config::File, Option<std::path::PathBuf>) {
    crate::config::load().unwrap_or_else(|why| {
        eprintln!("protolab: config {why}");
        std::process::exit(2)
    })
}

/// The TUI's settings: the command line's, over the configuration file's, over the defaults.
fn settings(flags: Flags) -> Settings {
    Settings::resolve(flags, load_config().0)
}

fn usage(why: &str) -> ! {
    clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{why}\n")).exit()
}

/// The lab with this name, or the usage error that exits with status 2.
pub fn find_lab(name: &str) -> Result<Arc<dyn Lab>, clap::Error> {
    labs::find(name).ok_or_else(|| {
        let names: Vec<_> = labs::registry().iter().map(|l| l.info().name).collect();
        clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("unknown lab '{name}' (labs: {})\n", names.join(", ")),
        )
    })
}

/// How long, once the work is over, the printer may take to write what is left: a stdout
/// nobody reads must not keep the process alive.
const PRINTER_GRACE: Duration = Duration::from_secs(10);
/// The same once interrupted (SIGINT), when the user wants the process gone.
const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// Prints a run's steps from its queue on a thread of its own, so writing to a stdout that
/// nobody reads never holds up the runtime (the labs, `serve`'s clients, the signal handler).
/// Frames also go to `pcap`. Says on stderr when steps were dropped because it fell behind,
/// and gives memory back once the output goes quiet after a burst.
struct Printer {
    done: std::sync::mpsc::Receiver<std::io::Result<()>>,
    queue: Arc<StepQueue>,
}

impl Printer {
    /// `sessions`: text lines name the peer session (`serve`, where clients' steps interleave).
    fn start(queue: Arc<StepQueue>, format: Format, sessions: bool, mut pcap: Option<Pcap>) -> Printer {
        let (done_tx, done) = std::sync::mpsc::channel();
        let printing = queue.clone();
        std::thread::spawn(move || {
            let queue = printing;
            let result = (|| {
                let stdout = std::io::stdout();
                let mut printing = true;
                let (mut told, mut said) = (0, Instant::now());
                let mut quiet = true;
                // Lines not written yet: they go out together once the queue is empty.
                let mut out = Vec::new();
                loop {
                    // Drops are told within a second, even while a slow reader keeps it busy.
                    if said.elapsed() >= TELL_EVERY {
                        told = tell_dropped(&queue, told);
                        said = Instant::now();
                    }
                    let wait = if out.is_empty() { TELL_EVERY } else { Duration::ZERO };
                    let step = match queue.next_blocking(wait) {
                        Polled::Step(step) => *step,
                        Polled::Empty if !out.is_empty() => {
                            printing = write_out(&stdout, &mut out)?;
                            continue;
                        }
                        Polled::Empty => {
                            if !std::mem::replace(&mut quiet, true) {
                                give_back_memory();
                            }
                            continue;
                        }
                        Polled::Closed => break,
                    };
                    quiet = false;
                    if let Some(p) = pcap.as_mut().filter(|_| step.frame) {
                        p.write(&step).map_err(|e| std::io::Error::other(format!("writing the pcap file: {e}")))?;
                    }
                    if printing {
                        write_step(&mut out, &step, format, sessions)?;
                        if out.len() >= OUT_BATCH {
                            printing = write_out(&stdout, &mut out)?;
                        }
                    }
                }
                write_out(&stdout, &mut out)?;
                tell_dropped(&queue, told);
                Ok(())
            })();
            let _ = done_tx.send(result);
        });
        Printer { done, queue }
    }

    /// Waits for the printer to write what is left (the queue closes when the run's last sink
    /// goes), at most `grace`.
    async fn finish(self, grace: Duration) -> Result<()> {
        let Printer { done, queue } = self;
        let waited = tokio::task::spawn_blocking(move || done.recv_timeout(grace)).await?;
        match waited {
            Ok(result) => result.wrap_err("writing steps"),
            Err(_) => {
                // The printer is stuck in a write: it cannot say what it leaves, so say it here.
                eprintln!(
                    "protolab: stdout did not take the last steps in {grace:?}: {} still queued not written, {} dropped in all",
                    queue.waiting(),
                    queue.dropped()
                );
                Ok(())
            }
        }
    }
}

/// Bytes of lines the printer writes at once, at most, while steps keep coming.
const OUT_BATCH: usize = 64 * 1024;

/// Writes the lines in `out` to stdout and empties it; `false` once the reader went away
/// (`| head`): then the printer stops printing, quietly.
fn write_out(stdout: &std::io::Stdout, out: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut lock = stdout.lock();
    let written = lock.write_all(out).and_then(|()| lock.flush());
    out.clear();
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

/// How often the printer says how many steps were dropped, if any were.
const TELL_EVERY: Duration = Duration::from_secs(1);

/// Gives the memory a burst freed back to the system, once the output has gone quiet: glibc's
/// malloc keeps what each thread freed for its reuse, and after a flood that is most of the
/// peak, held for good.
fn give_back_memory() {
    // SAFETY: malloc_trim only returns free pages; it takes the allocator's own locks.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Says on stderr how many steps were dropped since it last said (`told`); returns the count.
fn tell_dropped(queue: &StepQueue, told: u64) -> u64 {
    let dropped = queue.dropped();
    if dropped > told {
        eprintln!(
            "protolab: {} steps dropped, {dropped} in all: the output could not keep up (their seq numbers are missing)",
            dropped - told
        );
    }
    dropped
}

/// `protolab labs`
pub fn list_labs(out: &mut impl Write, lang: Lang) -> std::io::Result<()> {
    // Padded by display width: a Hangul syllable takes two columns.
    let pad = |text: &str, to: usize| format!("{text}{}", " ".repeat(to.saturating_sub(crate::tui::text::width(text))));
    let head = [tr(lang, "LAB"), tr(lang, "PROTOCOL"), tr(lang, "PORT"), "RFC", tr(lang, "WIRES")];
    let name_w = labs::registry().iter().map(|l| l.info().name.len()).max().unwrap_or(6).max(6);
    let rfc_w = labs::registry().iter().map(|l| l.info().rfcs.len()).max().unwrap_or(19).max(19);
    let port = |text: &str| format!("{}{text}", " ".repeat(5usize.saturating_sub(crate::tui::text::width(text))));
    writeln!(
        out,
        "{} {} {}  {} {} {}",
        pad(head[0], name_w),
        pad(head[1], 10),
        port(head[2]),
        pad(head[3], rfc_w),
        pad(head[4], 9),
        tr(lang, "WHAT IT SHOWS")
    )?;
    for lab in labs::registry() {
        let i = lab.info();
        let about = tr(lang, i.about);
        // ICMP has no port.
        let number = if i.port == 0 { "-".to_string() } else { i.port.to_string() };
        writeln!(out, "{:<name_w$} {:<10} {number:>5}  {:<rfc_w$} {:<9} {about}", i.name, i.title, i.rfcs, wires(i))?;
    }
    writeln!(
        out,
        "\n{}",
        tr(
            lang,
            "WIRES: sim is the lab network (every frame a step), host the kernel's sockets; the first is the default."
        )
    )?;
    writeln!(
        out,
        "{}",
        tr(
            lang,
            "TLS: smtp, pop3 and imap take --starttls (submission on 587, STLS, STARTTLS) or --tls (465, 995, 993); `protolab ca` prints the lab CA."
        )
    )?;
    writeln!(
        out,
        "\n{}",
        tr(lang, "THE LAB NETWORK OF EACH LAB (left to right as the ladder draws it; [ ] is a switched LAN):")
    )?;
    for lab in labs::registry() {
        let i = lab.info();
        writeln!(out, "{:<name_w$} {}", i.name, network_line(&(i.network)(), lang))?;
    }
    Ok(())
}

/// A lab network in one line, in the ladder's order: `client 192.0.2.1 ─ r1 ─ server 203.0.113.5`.
fn network_line(topology: &crate::net::sim::Topology, lang: Lang) -> String {
    let node = |name: &str| {
        if let Some(host) = topology.hosts.iter().find(|h| h.name == name) {
            let name = crate::locale::endpoint(lang, name);
            let name = match host.role {
                Some(role) => format!("{name} ({role})"),
                None => name,
            };
            return match host.ip {
                Some(ip) => format!("{name} {ip}"),
                None => format!("{name} ({})", tr(lang, "no address yet: DHCP")),
            };
        }
        // A router has an address on each of its links, in the ladder's order.
        let Some(router) = topology.routers.iter().find(|r| r.name == name) else { return name.to_string() };
        let addresses: Vec<String> = router.ports.iter().map(|(ip, _)| ip.to_string()).collect();
        let addresses = addresses.join(", ");
        if router.silent {
            format!("{name} ({addresses}; {})", tr(lang, "sends no ICMP errors"))
        } else {
            format!("{name} ({addresses})")
        }
    };
    if topology.routers.is_empty() && topology.cables.iter().any(|c| c.len() > 2) {
        // Hosts on a switch: no order on the wire, only on the ladder.
        let nodes: Vec<String> = topology.lifelines().iter().map(|n| node(n)).collect();
        return format!("{}: {}", tr(lang, "one switched LAN"), nodes.join(", "));
    }
    // A switched LAN among cables is bracketed: `[a · b · r1] ─ c`.
    let mut line = String::new();
    for d in topology.drawn() {
        line.push_str(match d.before {
            Link::Cable => " ─ ",
            Link::Lan => " · ",
            Link::None if line.is_empty() => "",
            Link::None => " ┄ ",
        });
        if d.opens {
            line.push('[');
        }
        line.push_str(&node(d.name));
        if d.closes {
            line.push(']');
        }
    }
    line
}

/// A reader that stopped reading (`| head`) is no error of ours.
fn quiet_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `protolab lesson`: each lesson, its lab, its questions, and the progress kept.
pub fn list_lessons(out: &mut impl Write, lang: Lang) -> std::io::Result<()> {
    let pad = |text: &str, to: usize| format!("{text}{}", " ".repeat(to.saturating_sub(crate::tui::text::width(text))));
    let progress = crate::lesson::progress::Progress::load();
    writeln!(
        out,
        "{} {} {} {}",
        pad(tr(lang, "LESSON"), 10),
        pad(tr(lang, "LAB"), 6),
        pad(tr(lang, "PROGRESS"), 22),
        tr(lang, "WHAT IT TEACHES")
    )?;
    for lesson in crate::lesson::all() {
        let done = match progress.lesson.get(&lesson.name) {
            None => tr(lang, "not started").to_string(),
            // Free answers only: nothing to score.
            Some(r) if r.best.1 == 0 => crate::locale::trf(lang, "{tries}× done", &[("tries", &r.tries)]),
            Some(r) => crate::locale::trf(
                lang,
                "{tries}× best {right}/{total}",
                &[("tries", &r.tries), ("right", &r.best.0), ("total", &r.best.1)],
            ),
        };
        let lab = lesson.lab.as_deref().unwrap_or("-");
        writeln!(out, "{} {} {} {}", pad(&lesson.name, 10), pad(lab, 6), pad(&done, 22), lesson.about.get(lang))?;
    }
    writeln!(out, "\n{}", tr(lang, "protolab lesson NAME opens a lesson in the TUI; --answers plays it headless."))
}

/// `protolab lesson NAME --reference`
fn print_reference(out: &mut impl Write, lesson: &crate::lesson::Lesson, lang: Lang) -> std::io::Result<()> {
    let tables: Vec<_> = lesson.parts.iter().filter(|p| p.kind == crate::lesson::Kind::Table).collect();
    if tables.is_empty() {
        usage(&format!("the {} lesson has no reference table", lesson.name));
    }
    for part in tables {
        writeln!(out, "{}\n", part.text(lang))?;
        for line in crate::lesson::table_lines(part.table.as_ref().map(|t| t.get(lang)).unwrap_or_default()) {
            writeln!(out, "  {line}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `protolab lesson NAME --answers …`: plays the lesson headless, keeps the score.
async fn play_lesson(lesson: crate::lesson::Lesson, lang: Lang, seed: Option<u64>, answers: &str) -> Result<()> {
    use crate::lesson::headless;
    let name = lesson.name.clone();
    let seed = seed.unwrap_or_else(rand::random);
    let started = Instant::now();
    let mut from: Box<headless::Answers<'_>> =
        if answers == "-" { Box::new(headless::from_stdin()) } else { Box::new(headless::from_list(answers)) };
    let mut out = std::io::stdout();
    let play = headless::play(lesson, lang, seed, &mut *from, &mut out).await?;
    let (right, total) = play.score();
    if let Err(e) = crate::lesson::progress::Progress::add(&name, right, total, started.elapsed()) {
        eprintln!("{e}");
    }
    Ok(())
}

/// The wires a lab runs on, its default first (`sim,host`).
fn wires(info: &labs::LabInfo) -> String {
    let name = |w: &Wire| match w {
        Wire::Sim => "sim",
        Wire::Host => "host",
    };
    info.wires.iter().map(name).collect::<Vec<_>>().join(",")
}

/// A lab that cannot run on the wire asked for: the usage error that says what to do instead.
fn refuse_wire(info: &labs::LabInfo, wire: Wire) {
    if info.runs_on(wire) {
        return;
    }
    let said = |w: Wire| match w {
        Wire::Sim => "--wire sim (the lab network)",
        Wire::Host => "--wire host (kernel sockets)",
    };
    let instead = match info.name {
        "dhcp" => ", or --wire host --interface IF for a real interface",
        _ => "",
    };
    usage(&format!(
        "the {} lab does not run on {}: use {}{instead}",
        info.name,
        said(wire).trim_start_matches("--wire "),
        said(info.default_wire())
    ));
}

/// `protolab run LAB`
pub async fn run_lab(lab: Arc<dyn Lab>, opts: run::RunOptions, format: Format, pcap: Option<&Path>) -> Result<()> {
    if pcap.is_some() && opts.wire != Wire::Sim {
        usage("--pcap writes the sim wire's frames: add --wire sim");
    }
    if !opts.faults.is_empty() && opts.wire != Wire::Sim {
        usage("faults happen on the sim wire's cable: add --wire sim");
    }
    if opts.connect.is_some() && opts.wire != Wire::Host {
        usage("--connect talks to a real server: it needs --wire host");
    }
    let pcap = match pcap {
        Some(path) => Some(Pcap::create(path).wrap_err_with(|| format!("cannot write {}", path.display()))?),
        None => None,
    };
    let name = lab.info().name;
    drive(name, format, pcap, move |sink| Ok(Box::pin(run::exchange(lab, opts, sink)))).await
}

/// Runs `work`, printing its steps as they happen (and writing their frames to `pcap`). `work`
/// may refuse at once (a lab without what was asked of it), before anything is printed.
async fn drive(
    name: &str,
    format: Format,
    pcap: Option<Pcap>,
    work: impl FnOnce(StepSink) -> Result<LabFuture>,
) -> Result<()> {
    let (sink, queue) = StepSink::queued(name, Bounds::default());
    let work = work(sink)?;
    let printer = Printer::start(queue, format, false, pcap);
    let result = work.await;
    // Every step of the run is queued once its last sink is gone; let them be written.
    printer.finish(PRINTER_GRACE).await?;
    result
}

/// `protolab serve LAB`
pub async fn serve_lab(lab: Arc<dyn Lab>, listen: &str, format: Format, sessions: Option<u32>) -> Result<()> {
    let (sink, queue) = StepSink::queued(lab.info().name, Bounds::default());
    let work = match lab.serve_port(listen, sink.clone(), sessions) {
        Some(work) => work,
        None if lab.info().name == "ping" => usage(
            "serve ping: there is nothing to serve, every host's kernel answers echo requests itself (protolab run ping --wire host)",
        ),
        None if !lab.info().runs_on(Wire::Host) => usage(&match lab.info().name {
            // DHCP serves a real interface instead.
            "dhcp" => "serve dhcp answers on a real interface: add --interface IF (its lab runs on the lab network: protolab run dhcp)".to_string(),
            name => format!("serve {name}: its lab runs on the lab network only, with nothing to serve outside it (protolab run {name})"),
        }),
        None => {
            let listener = Wire::Host.listen(listen).await.wrap_err_with(|| format!("cannot listen on {listen}"))?;
            eprintln!("listening on {}", listener.local_addr()?);
            Box::pin(run::serve(lab, listener, sessions, sink.clone()))
        }
    };
    drop(sink);
    let printer = Printer::start(queue, format, true, None);
    let interrupted = tokio::select! {
        result = work => {
            result?;
            false
        }
        // Ends soon, whatever the reader of stdout does: the sessions are dropped, and what
        // they said is written if stdout takes it within a second, else counted on stderr.
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        eprintln!("interrupted");
    }
    printer.finish(if interrupted { INTERRUPT_GRACE } else { PRINTER_GRACE }).await
}

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        None => crate::tui::run(settings(Flags::default())).await,
        Some(Command::Tui { lab, wire, lang, present, theme, lease_speedup, pop3, tls }) => {
            crate::labs::dhcp::set_speedup(lease_speedup);
            crate::labs::mail::set_pop3(pop3);
            if let Some(smtp) = crate::labs::find("smtp") {
                tls.apply(smtp, false);
            }
            if let Some(name) = &lab {
                find_lab(name).unwrap_or_else(|e| e.exit());
            }
            crate::tui::run(settings(Flags { lang, theme, wire, lab, present })).await
        }
        Some(Command::Ca) => {
            let ca = crate::tls::lab_ca()?;
            eprintln!(
                "{}",
                en("the lab CA, kept in {dir}: trust it for the lab servers only", &[("dir", &ca.dir.display())])
            );
            print!("{}", ca.cert_pem);
            Ok(())
        }
        Some(Command::Config { print }) => {
            if !print {
                usage("config --print prints the effective configuration");
            }
            let (file, path) = load_config();
            print!("{}", Settings::resolve(Flags::default(), file).print(path.as_deref()));
            Ok(())
        }
        Some(Command::Lesson { name: None, answers, reference, lang, .. }) => {
            if answers.is_some() || reference {
                usage("--answers and --reference go with a lesson's name: protolab lesson NAME");
            }
            Ok(quiet_pipe(list_lessons(&mut std::io::stdout(), lang.unwrap_or_else(Lang::from_env)))?)
        }
        Some(Command::Lesson { name: Some(name), answers, reference, lang, seed }) => {
            let lesson = crate::lesson::find(&name).unwrap_or_else(|| {
                usage(&format!("no lesson named {name}; the lessons: {}", crate::lesson::names().join(", ")))
            });
            // Its lab tells the lesson's TLS story (the TLS lesson: SMTP submission).
            crate::tls::set_story(lesson.tls_mode(), None);
            // A lesson without a lab (the port table) is a quiz in the terminal, line by line.
            let answers = answers.or_else(|| lesson.lab.is_none().then(|| "-".to_string()));
            let Some(answers) = answers.filter(|_| !reference) else {
                if reference {
                    let lang = lang.unwrap_or_else(Lang::from_env);
                    return Ok(quiet_pipe(print_reference(&mut std::io::stdout(), &lesson, lang))?);
                }
                // In the TUI, as the TUI: the configuration file's language unless --lang.
                let settings = settings(Flags { lang, lab: lesson.lab.clone(), ..Flags::default() });
                return crate::tui::run_lesson(settings, lesson).await;
            };
            play_lesson(lesson, lang.unwrap_or_else(Lang::from_env), seed, &answers).await
        }
        Some(Command::Labs { lang }) => Ok(list_labs(&mut std::io::stdout(), lang.unwrap_or_else(Lang::from_env))?),
        Some(Command::Run { lab, wire, connect, format, faults, pcap, interface: Some(interface), .. }) => {
            let lab = find_lab(&lab).unwrap_or_else(|e| e.exit());
            if wire.is_some_and(|w| w != Wire::Host)
                || connect.is_some()
                || pcap.is_some()
                || !faults.faults().is_empty()
            {
                usage("--interface runs the client on a real interface: it goes with --wire host only");
            }
            let name = lab.info().name;
            drive(name, format, None, move |sink| {
                lab.run_interface(&interface, sink)
                    // Nothing has started yet: a usage error, exit 2.
                    .map(Ok)
                    .unwrap_or_else(|| {
                        usage(&format!("the {name} lab has no client for a real interface: drop --interface"))
                    })
            })
            .await
        }
        Some(Command::Run {
            lab,
            wire,
            connect,
            format,
            faults,
            pcap,
            interface: None,
            no_capture,
            lease_speedup,
            icmp,
            pop3,
            user,
            tls,
        }) => {
            let lab = tls.apply(find_lab(&lab).unwrap_or_else(|e| e.exit()), connect.is_some());
            faults.check();
            let account = account(lab.info().name, connect.is_some(), user, tls.mode() != crate::tls::Mode::Plain);
            if let Some(times) = lease_speedup {
                if lab.info().name != "dhcp" {
                    usage("--lease-speedup sets the DHCP lab's lease clock: it goes with `run dhcp`");
                }
                crate::labs::dhcp::set_speedup(times);
            }
            if let Some(target) = &connect
                && lab.info().port != 0
                && !target.contains(':')
            {
                usage(&format!("--connect {target}: the {} lab needs HOST:PORT", lab.info().name));
            }
            if lab.info().name == "portscan"
                && let Err(why) = crate::labs::portscan::host::target(connect.as_deref())
            {
                usage(&why);
            }
            if icmp {
                if lab.info().name != "traceroute" {
                    usage("--icmp chooses traceroute's probes: it goes with `run traceroute`");
                }
                crate::labs::traceroute::set_icmp(true);
            }
            if pop3 {
                if lab.info().name != "mail" {
                    usage("--pop3 chooses how bob reads in the mail lab: it goes with `run mail`");
                }
                crate::labs::mail::set_pop3(true);
            }
            let wire = wire.unwrap_or(if connect.is_some() { Wire::Host } else { lab.info().default_wire() });
            refuse_wire(lab.info(), wire);
            let capture = wire == Wire::Host && connect.is_none() && !no_capture;
            if capture && let Err(hint) = crate::net::capture::available() {
                eprintln!("{hint}");
            }
            let opts =
                run::RunOptions { connect, faults: faults.faults(), capture, account, ..run::RunOptions::free(wire) };
            run_lab(lab, opts, format, pcap.as_deref()).await
        }
        Some(Command::Serve { lab, format, sessions, interface: Some(interface), .. }) => {
            let lab = find_lab(&lab).unwrap_or_else(|e| e.exit());
            let name = lab.info().name;
            drive(name, format, None, move |sink| {
                lab.serve_interface(&interface, sink, sessions).map(Ok).unwrap_or_else(|| {
                    usage(&format!("the {name} lab serves on sockets, not on an interface: drop --interface"))
                })
            })
            .await
        }
        Some(Command::Serve { lab, listen, format, sessions, interface: None, tls }) => {
            let lab = tls.apply(find_lab(&lab).unwrap_or_else(|e| e.exit()), false);
            serve_lab(lab, &listen, format, sessions).await
        }
    }
}
