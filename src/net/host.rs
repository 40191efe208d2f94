//! The host wire as a lab run uses it: kernel sockets. The client's connect waits at the gate
//! like a message (no SYN leaves before the presenter's key press). Where the run does not
//! capture the kernel's segments, what the socket API shows of them becomes a step of its own,
//! with no bytes: connect() returned (the handshake happened), or the connection was refused
//! (a reset answered the SYN).

use super::capture::Capture;
use super::{CONNECT_TIMEOUT, Conn, Gate, timeout};
use crate::session::{Field, Layer, Step, StepSink};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// Kernel sockets, with what one run needs of them (none for `serve`'s listener).
#[derive(Clone, Default)]
pub struct HostNet {
    run: Option<Arc<Run>>,
}

struct Run {
    sink: StepSink,
    gate: Arc<Gate>,
    /// The capture of the run's connections, once its server listens (where the process may
    /// capture).
    capture: Mutex<Option<Arc<Capture>>>,
    /// Names of connections by server port, for labs with more than one.
    conns: Mutex<HashMap<u16, String>>,
}

impl HostNet {
    /// Kernel sockets for one run: its steps go to `sink`, its connects wait at `gate`.
    pub fn for_run(sink: StepSink, gate: Arc<Gate>) -> Self {
        let run = Run { sink, gate, capture: Mutex::default(), conns: Mutex::default() };
        HostNet { run: Some(Arc::new(run)) }
    }

    /// The run's segments are captured from now on: connects add their ports to the capture
    /// and make no socket steps.
    pub fn set_capture(&self, capture: Arc<Capture>) {
        if let Some(run) = &self.run {
            *run.capture.lock().unwrap_or_else(|e| e.into_inner()) = Some(capture);
        }
    }

    /// Names the connections to `port` (`closed-port`): their steps carry the name as `conn`.
    pub fn name_connection(&self, port: u16, name: &str) {
        if let Some(run) = &self.run {
            run.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(port, name.to_string());
            if let Some(capture) = run.capture() {
                capture.name(port, name.to_string());
            }
        }
    }

    /// Connects to `addr` once the gate lets the client go.
    pub async fn connect(&self, addr: &str) -> io::Result<Conn> {
        let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        let capture = match &self.run {
            Some(run) => {
                let _ = run.gate.clone().pass("client".into()).await;
                let capture = run.capture();
                if let (Some(capture), Some(port)) = (&capture, port) {
                    capture.watch(port, run.conn(port));
                }
                capture
            }
            None => None,
        };
        let timed_out =
            || io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {addr} in {CONNECT_TIMEOUT:?}"));
        let result = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await.map_err(|_| timed_out()).and_then(|r| r);
        if let Some(run) = self.run.as_ref().filter(|_| capture.is_none()) {
            match &result {
                Ok(s) => run.socket_step("socket.connect", s.local_addr().ok().map(|a| a.port()), port, addr, None),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    run.socket_step("socket.refused", None, port, addr, Some(e))
                }
                Err(_) => {}
            }
        }
        let s = result?;
        s.set_nodelay(true)?;
        Ok(Conn { io: Box::new(s), carriers: None })
    }
}

impl Run {
    fn capture(&self) -> Option<Arc<Capture>> {
        self.capture.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn conn(&self, port: u16) -> Option<String> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).get(&port).cloned()
    }

    /// A step for what the socket API reported of a connect to `addr`: no bytes of its own.
    fn socket_step(&self, kind: &str, local: Option<u16>, port: Option<u16>, addr: &str, error: Option<&io::Error>) {
        let summary = match error {
            None => format!("connect() to {addr}: open (the kernels did the handshake)"),
            Some(e) => format!("connect() to {addr}: {e}"),
        };
        let mut fields = Vec::new();
        if let Some(local) = local {
            fields.push(Field::new("TCP.src_port", local, 0..0));
        }
        if let Some(port) = port {
            fields.push(Field::new("TCP.dst_port", port, 0..0));
        }
        let step = Step {
            layer: Layer::Transport,
            proto: "TCP".into(),
            from: "client".into(),
            to: "server".into(),
            summary,
            fields,
            kind: kind.into(),
            conn: port.and_then(|p| self.conn(p)),
            ..Step::default()
        };
        self.sink.emit(step);
    }
}
