//! Where recorders hand finished steps: numbers them in order and timestamps them.

use super::Step;
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

    /// Numbers, timestamps and sends a step; its `seq`, `t_us`, `lab`, `session` and `conn`
    /// are the sink's to set. Returns the `seq` it got.
    pub fn emit(&self, mut step: Step) -> u64 {
        let mut next = self.shared.next.lock().unwrap_or_else(|e| e.into_inner());
        step.seq = *next;
        step.t_us = self.shared.start.elapsed().as_micros() as u64;
        step.lab.clone_from(&self.shared.lab);
        step.session = self.session;
        step.conn.clone_from(&self.conn);
        let seq = step.seq;
        if self.shared.tx.send(step).is_ok() {
            *next += 1;
        }
        seq
    }
}
