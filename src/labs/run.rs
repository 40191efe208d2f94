//! Running a lab: one exchange between our client and our embedded server (or a real remote
//! server), or the embedded server for outside clients. Both tap every connection.

use super::{ClientCtx, Lab};
use crate::locale::{en, term};
use crate::net::capture::Capture;
use crate::net::limits::{Limited, Limits};
use crate::net::sim::Faults;
use crate::net::{Conn, Dir, Gate, Listener, Net, Recorder, Stream, TapStream, Wire, with_gate};
use crate::session::StepSink;
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

/// How long the embedded server may take to finish after the client is done.
const SERVER_GRACE: Duration = Duration::from_secs(5);
/// Outside clients served at once by `serve`.
pub const MAX_CONNECTIONS: usize = 32;

/// How to run one exchange.
#[derive(Clone)]
pub struct RunOptions {
    pub wire: Wire,
    /// Talk to this real server instead of the embedded one (host wire only).
    pub connect: Option<String>,
    /// Lockstep with a presenter, or [`Gate::free`]. On the sim wire it holds each frame.
    pub gate: Arc<Gate>,
    /// What the sim wire's cable does to which frame.
    pub faults: Faults,
    /// On the host wire, also record the kernel's own segments of the embedded server's
    /// connections, where the process may capture (CAP_NET_RAW).
    pub capture: bool,
    /// Where to tell what the run learns besides its steps (the embedded server's real address).
    pub events: Option<mpsc::UnboundedSender<RunEvent>>,
    /// The account to log in with on a real server (`--user NAME:PASSWORD`).
    pub account: Option<(String, String)>,
}

/// What a run tells whoever started it, besides its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// The embedded server listens here (on the host wire, an ephemeral loopback port).
    Listening(std::net::SocketAddr),
}

impl RunOptions {
    /// Headless: no gate, no faults.
    pub fn free(wire: Wire) -> Self {
        RunOptions {
            wire,
            connect: None,
            gate: Gate::free(),
            faults: Faults::default(),
            capture: false,
            events: None,
            account: None,
        }
    }
}

/// Aborts a task when dropped, so a cancelled run leaves no server behind.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one exchange; its steps go to `sink`. `Ok` when the exchange completed.
pub async fn exchange(lab: Arc<dyn Lab>, opts: RunOptions, sink: StepSink) -> Result<()> {
    let info = lab.info();
    if opts.connect.is_some() && opts.wire != Wire::Host {
        bail!(term("--connect talks to a real server: it needs --wire host"));
    }
    if !info.runs_on(opts.wire) {
        let wire = format!("{:?}", opts.wire);
        bail!(en("the {lab} lab does not run on the {wire} wire", &[("lab", &info.name), ("wire", &wire)]));
    }
    if opts.wire == Wire::Host
        && let Some(work) = lab.host_datagrams(opts.connect.as_deref(), sink.clone(), opts.gate.clone())
    {
        return with_gate(opts.gate.clone(), work).await;
    }
    let net = opts.wire.open(&sink, &opts.gate, opts.faults.clone(), (info.network)());
    if let Net::Sim(sim) = &net
        && let Some(packets) = lab.packets(sim)
    {
        with_gate(opts.gate.clone(), packets).await?;
        with_gate(opts.gate.clone(), sim.settle()).await;
        return Ok(());
    }
    // On the lab network the gate holds frames, and FIN/RST are frames of their own.
    let on_sim = net.shows_segments();
    let app_gate = if on_sim { Gate::free() } else { opts.gate.clone() };
    let mut capture = None;
    let (target, listener) = match &opts.connect {
        Some(addr) => (addr.clone(), None),
        None => {
            let listener = net.listen(&net.server_addr(info.port)).await.wrap_err(term("cannot listen"))?;
            let local = listener.local_addr()?;
            if let Some(events) = &opts.events {
                let _ = events.send(RunEvent::Listening(local));
            }
            if let Some(name) = info.conn {
                net.name_connection(local.port(), name);
            }
            if let Net::Host(host) = &net
                && opts.capture
                && let Ok(c) = Capture::open(sink.clone(), local.port())
            {
                // The kernel's own segments become steps, and the messages follow them.
                let c = Arc::new(c);
                host.set_capture(c.clone());
                if let Some(name) = info.conn {
                    c.name(local.port(), name.to_string());
                }
                capture = Some(c);
            }
            (local.to_string(), Some(listener))
        }
    };
    let segments = on_sim || capture.is_some();
    let rec_sink = match info.conn {
        Some(name) => sink.for_conn(name),
        None => sink.clone(),
    };
    let rec = Recorder::new(rec_sink, ["client", "server"], lab.decoders(segments));
    rec.set_close_steps(!on_sim);
    if let Some(c) = &capture {
        rec.follow(c.clone());
    }
    // The server speaks only once the client's connect is recorded: the kernel completes the
    // handshake, and accept() returns, before connect() does.
    let (connected, ready) = tokio::sync::oneshot::channel::<()>();
    let server = listener.map(|listener| {
        let (lab, rec, gate) = (lab.clone(), rec.clone(), app_gate.clone());
        AbortOnDrop(tokio::spawn(with_gate(opts.gate.clone(), async move {
            let (conn, peer) = listener.accept_conn().await?;
            let _ = ready.await;
            let io = tap(conn, rec, Dir::ServerToClient, gate, on_sim);
            lab.serve(io, peer).await.wrap_err(term("server"))
        })))
    });
    // Inside the gate's scope: the connect waits there (host), and its timeout stops while the
    // first frames wait (lab network).
    let conn = with_gate(opts.gate.clone(), net.connect_conn(&target))
        .await
        .wrap_err_with(|| en("cannot connect to {target}", &[("target", &target)]))?;
    let _ = connected.send(());
    let io = if opts.connect.is_some() {
        // A real remote server has no tap of its own: ours records both ways.
        Box::new(TapStream::new(conn.io, rec, Dir::ClientToServer, true, app_gate))
    } else {
        tap(conn, rec, Dir::ClientToServer, app_gate, on_sim)
    };
    let ctx = ClientCtx { target, net: net.clone(), remote: opts.connect.is_some(), account: opts.account.clone() };
    with_gate(opts.gate.clone(), lab.client(io, ctx)).await?;
    if let Some(mut server) = server {
        match with_gate(opts.gate.clone(), crate::net::timeout(SERVER_GRACE, &mut server.0)).await {
            Ok(Ok(result)) => result?,
            Ok(Err(join)) => return Err(eyre!(en("server task failed: {error}", &[("error", &join)]))),
            Err(_) => {
                let s = SERVER_GRACE.as_secs();
                return Err(eyre!(en("the server did not finish within {s} s of the client", &[("s", &s)])));
            }
        }
    }
    if let Net::Sim(sim) = &net {
        // The last segments (the final ACK) go out after both programs are done.
        with_gate(opts.gate.clone(), sim.settle()).await;
    }
    if let Some(capture) = &capture {
        // The capture runs a little behind: the last FIN and ACK come after the last message.
        capture.settle(Duration::from_millis(20), Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Taps one end of a connection between our own two programs: on kernel sockets each end
/// records what it writes; on the lab network each records what it reads, with its carriers.
fn tap(conn: Conn, rec: Arc<Recorder>, out: Dir, gate: Arc<Gate>, segments: bool) -> Stream {
    let tapped = TapStream::new(conn.io, rec, out, false, gate);
    if segments { Box::new(tapped.reading(conn.carriers)) } else { Box::new(tapped) }
}

/// How `serve` treats outside clients.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Clients served at once; one more gets the lab's busy answer and is closed.
    pub max_connections: usize,
    /// Limits on each session: its whole length, and how long a write may wait.
    pub limits: Limits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { max_connections: MAX_CONNECTIONS, limits: Limits::default() }
    }
}

/// Clients being turned away at once; past this, a connection is closed without a word.
const MAX_REFUSING: usize = 64;
/// How long the busy answer may take to go.
const REFUSAL_WRITE: Duration = Duration::from_secs(2);

/// Serves outside clients on `listener` until `sessions` sessions have ended (or forever), with
/// the default [`ServeOptions`].
pub async fn serve(lab: Arc<dyn Lab>, listener: Listener, sessions: Option<u32>, sink: StepSink) -> Result<()> {
    serve_with(lab, listener, sessions, sink, ServeOptions::default()).await
}

/// Serves outside clients. Each connection is a session with its own number; a failing session
/// is reported on stderr and the others go on. Past `max_connections`, a client gets the lab's
/// busy answer (recorded as its session's steps) and is closed, so nobody waits unseen.
pub async fn serve_with(
    lab: Arc<dyn Lab>,
    listener: Listener,
    sessions: Option<u32>,
    sink: StepSink,
    opts: ServeOptions,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut tasks = JoinSet::new();
    let mut accepted = 0u32;
    while sessions.is_none_or(|n| accepted < n) {
        // Sessions that end are told as they end, not when the next client comes.
        let accepted_conn = loop {
            tokio::select! {
                conn = listener.accept() => break conn,
                Some(done) = tasks.join_next() => report(done),
            }
        };
        let (s, peer) = match accepted_conn {
            Ok(conn) => conn,
            Err(e) => {
                // Out of descriptors and the like: say so, and give it a moment, not a spin.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        accepted += 1;
        let session = accepted;
        let rec = Recorder::new(sink.for_session(session), ["client", "server"], lab.decoders(false));
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let io = TapStream::new(Limited::new(s, opts.limits), rec, Dir::ServerToClient, true, Gate::free());
                let lab = lab.clone();
                tasks.spawn(async move {
                    let result = lab.serve(Box::new(io), peer).await;
                    drop(permit);
                    (session, peer, result)
                });
            }
            Err(_) => {
                let Ok(turn) = refusing.clone().try_acquire_owned() else { continue };
                let busy = lab.busy();
                let limit = opts.max_connections;
                tasks.spawn(async move {
                    let mut io = TapStream::new(s, rec, Dir::ServerToClient, true, Gate::free());
                    if let Some(busy) = busy {
                        let _ = tokio::time::timeout(REFUSAL_WRITE, io.write_all(&busy)).await;
                    }
                    let _ = tokio::time::timeout(REFUSAL_WRITE, io.shutdown()).await;
                    drop(turn);
                    (session, peer, Err(eyre!("turned away: {limit} clients are served already")))
                });
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        report(done);
    }
    Ok(())
}

fn report(done: Result<(u32, std::net::SocketAddr, Result<()>), tokio::task::JoinError>) {
    match done {
        Ok((session, peer, Err(e))) => eprintln!("session {session} ({peer}) ended: {e:#}"),
        Err(e) => eprintln!("a session task failed: {e}"),
        Ok(_) => {}
    }
}
