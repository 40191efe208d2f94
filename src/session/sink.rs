//! Where recorders hand finished steps: numbers them in order, timestamps them, and names the
//! moment of its conversation each one is (see [`super::moment`]).

use super::Step;
use super::moment::Moments;
use super::queue::{Bounds, StepQueue};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A clock a run's steps are stamped with: time since the run started.
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// Numbers and sends the steps of one lab run. Cheap to clone; one per peer session.
#[derive(Clone)]
pub struct StepSink {
    shared: Arc<Shared>,
    /// Which peer session this sink's steps belong to.
    session: u32,
    /// Which connection, where a lab has more than one.
    conn: Option<String>,
}

impl std::fmt::Debug for StepSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepSink").field("lab", &self.shared.lab).field("session", &self.session).finish()
    }
}

struct Shared {
    lab: String,
    /// When the lab started: `t_us` counts from here, unless a lab network set its own clock.
    start: Instant,
    /// The lab network's clock, which stops while a frame waits at the gate.
    clock: OnceLock<Clock>,
    /// The next `seq` and the conversations so far; the lock also keeps channel order equal to
    /// `seq` order.
    order: Mutex<Order>,
    out: Out,
}

/// Where the steps go.
enum Out {
    /// A channel the reader drains (tests, and readers that keep up by construction).
    Channel(mpsc::UnboundedSender<Step>),
    /// A bounded queue: the lab never waits, and what the reader cannot take is dropped,
    /// counted (`run`, `serve`, the TUI).
    Queue(Arc<StepQueue>),
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last sink of the run is gone: the reader gets what is queued, then the end.
        if let Out::Queue(q) = &self.out {
            q.close();
        }
    }
}

struct Order {
    next: u64,
    moments: Moments,
}

impl StepSink {
    pub fn new(lab: &str, tx: mpsc::UnboundedSender<Step>) -> Self {
        Self::with_out(lab, Out::Channel(tx))
    }

    /// A sink whose steps go to a bounded queue, for a reader that may fall behind (a printer,
    /// the screen): the queue to read them from.
    pub fn queued(lab: &str, bounds: Bounds) -> (Self, Arc<StepQueue>) {
        let queue = Arc::new(StepQueue::new(bounds));
        (Self::with_out(lab, Out::Queue(queue.clone())), queue)
    }

    fn with_out(lab: &str, out: Out) -> Self {
        let order = Order { next: 1, moments: Moments::default() };
        StepSink {
            shared: Arc::new(Shared {
                lab: lab.into(),
                start: Instant::now(),
                clock: OnceLock::new(),
                order: Mutex::new(order),
                out,
            }),
            session: 1,
            conn: None,
        }
    }

    /// The same run's sink for another peer session.
    pub fn for_session(&self, session: u32) -> Self {
        StepSink { session, ..self.clone() }
    }

    /// The same run's sink for one of several connections of a lab (`echo`, `data-1`).
    pub fn for_conn(&self, conn: impl Into<String>) -> Self {
        StepSink { conn: Some(conn.into()), ..self.clone() }
    }

    /// Stamps this run's steps with `clock` from now on (the lab network's clock, which stops
    /// at the gate). The first clock set stays.
    pub fn set_clock(&self, clock: Clock) {
        let _ = self.shared.clock.set(clock);
    }

    /// Time on the run's clock now.
    pub fn now(&self) -> Duration {
        match self.shared.clock.get() {
            Some(clock) => clock(),
            None => self.shared.start.elapsed(),
        }
    }

    /// Numbers, timestamps and sends a step; its `seq`, `t_us`, `lab` and `session` are the
    /// sink's to set, and `conn` when the sink has one. Returns the `seq` it got.
    /// The messages the step carried follow it, each naming it in `carried_by`.
    pub fn emit(&self, mut step: Step) -> u64 {
        let carried = std::mem::take(&mut step.carried);
        let mut order = self.shared.order.lock().unwrap_or_else(|e| e.into_inner());
        let seq = self.emit_locked(&mut order, step);
        for inner in carried {
            self.emit_locked(&mut order, inner);
        }
        seq
    }

    fn emit_locked(&self, order: &mut Order, mut step: Step) -> u64 {
        step.seq = order.next;
        step.t_us = self.now().as_micros() as u64;
        step.lab.clone_from(&self.shared.lab);
        step.session = self.session;
        if self.conn.is_some() {
            step.conn.clone_from(&self.conn);
        }
        for cell in std::mem::take(&mut step.carriers) {
            if let Some(&carrier) = cell.get().filter(|c| !step.carried_by.contains(c)) {
                step.carried_by.push(carrier);
            }
        }
        if let Some(cell) = &step.numbered {
            let _ = cell.set(step.seq);
        }
        order.moments.place(&mut step);
        let seq = step.seq;
        match &self.shared.out {
            Out::Channel(tx) => {
                if tx.send(step).is_ok() {
                    order.next += 1;
                }
            }
            // A dropped step keeps its number: the gap in `seq` shows the loss.
            Out::Queue(q) => {
                q.push(step);
                order.next += 1;
            }
        }
        seq
    }
}
