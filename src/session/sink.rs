//! Where recorders hand finished steps: numbers them in order and timestamps them.

use super::{Layer, Step};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

/// Numbers and sends the steps of one lab run. Cheap to clone; one per peer session.
#[derive(Clone, Debug)]
pub struct StepSink {
    shared: Arc<Shared>,
    /// Which peer session this sink's steps belong to.
    session: u32,
    /// Which connection, where a lab has more than one.
    conn: Option<String>,
}

#[derive(Debug)]
struct Shared {
    lab: String,
    /// When the lab started: `t_us` counts from here.
    start: Instant,
    /// The next `seq`; the lock also keeps channel order equal to `seq` order.
    next: Mutex<u64>,
    tx: mpsc::UnboundedSender<Step>,
}

/// A step before the sink numbers it.
#[derive(Debug, Clone)]
pub struct Draft {
    pub layer: Layer,
    pub proto: String,
    pub from: String,
    pub to: String,
    pub summary: String,
    pub len: usize,
    pub bytes: Vec<u8>,
    pub truncated: bool,
    pub fields: Vec<super::Field>,
    pub malformed: Option<String>,
    pub kind: String,
    pub notes: Vec<String>,
}

impl StepSink {
    pub fn new(lab: &str, tx: mpsc::UnboundedSender<Step>) -> Self {
        StepSink {
            shared: Arc::new(Shared { lab: lab.into(), start: Instant::now(), next: Mutex::new(1), tx }),
            session: 1,
            conn: None,
        }
    }

    /// The same run's sink for another peer session.
    pub fn for_session(&self, session: u32) -> Self {
        StepSink { session, ..self.clone() }
    }

    pub fn emit(&self, d: Draft) {
        let mut next = self.shared.next.lock().unwrap_or_else(|e| e.into_inner());
        let step = Step {
            seq: *next,
            t_us: self.shared.start.elapsed().as_micros() as u64,
            lab: self.shared.lab.clone(),
            session: self.session,
            conn: self.conn.clone(),
            layer: d.layer,
            proto: d.proto,
            from: d.from,
            to: d.to,
            summary: d.summary,
            len: d.len,
            bytes: d.bytes,
            truncated: d.truncated,
            fields: d.fields,
            carried_by: Vec::new(),
            malformed: d.malformed,
            kind: d.kind,
            notes: d.notes,
        };
        if self.shared.tx.send(step).is_ok() {
            *next += 1;
        }
    }
}
