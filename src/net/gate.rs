//! The gate: a message waits here until the presenter says "send it now".
//!
//! Every tapped endpoint we own asks the gate before the first byte of each message goes out.
//! In free mode (headless `run`, remote peers) the gate is always open.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

tokio::task_local! {
    /// The gate of the run the current lab task belongs to (see [`timeout`]).
    static GATE: Arc<Gate>;
}

/// Runs a lab task with its run's gate, so its timeouts know when the exchange is paused.
pub async fn with_gate<F: Future>(gate: Arc<Gate>, fut: F) -> F::Output {
    GATE.scope(gate, fut).await
}

/// A timeout ran out: the peer was silent for the whole limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Elapsed {}

/// Like `tokio::time::timeout`, but the clock stops while a message of this run waits at
/// the gate: a presenter who talks about one step for ten minutes does not make the peer idle.
pub async fn timeout<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let gate = GATE.try_with(Arc::clone).ok();
    tokio::pin!(fut);
    let mut deadline = Instant::now() + limit;
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            () = tokio::time::sleep_until(deadline) => {
                match gate.as_ref().and_then(|g| g.held_until()) {
                    Some(held) if held + limit > deadline => deadline = held + limit,
                    _ => return Err(Elapsed),
                }
            }
        }
    }
}

/// What the gate tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateEvent {
    /// An endpoint has a message ready and waits for a press.
    Waiting { from: String },
}

/// What happens to the message that a press lets go. Faults apply on the sim wire's cable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Release {
    /// It goes, as sent.
    #[default]
    Send,
    /// The cable loses it.
    Drop,
    /// The cable delivers it twice.
    Duplicate,
    /// The cable flips one of its bytes.
    Corrupt,
}

/// One sender waiting at the gate.
#[derive(Debug)]
struct Waiter {
    /// Which wait this is, so a press goes to exactly this one.
    id: u64,
    /// The endpoint, as the UI names it.
    who: String,
    /// The press that lets it go, once given.
    granted: Option<Release>,
}

#[derive(Debug, Default)]
struct State {
    /// The last moment a message was held at the gate (while one is held: now).
    last_hold: Option<Instant>,
    /// Always open: nobody waits.
    free: bool,
    /// Senders waiting now, oldest first; a press goes to the oldest not yet let go.
    waiting: Vec<Waiter>,
    /// The next wait's id.
    next_id: u64,
}

/// Lockstep between the real exchange and the animation.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
    /// Wakes waiting senders when a press arrives.
    pressed: Notify,
    /// Tells the UI that someone is waiting.
    events: Option<mpsc::UnboundedSender<GateEvent>>,
}

/// Takes a wait off the gate if it is dropped before its press is used (its stream closed).
struct Leave<'a> {
    gate: &'a Gate,
    id: u64,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.gate.lock().waiting.retain(|w| w.id != self.id);
    }
}

impl Gate {
    /// A gate that holds every message until [`Gate::open_one`].
    pub fn stepping(events: mpsc::UnboundedSender<GateEvent>) -> Arc<Gate> {
        Arc::new(Gate { state: Mutex::default(), pressed: Notify::new(), events: Some(events) })
    }

    /// A gate that never holds anything.
    pub fn free() -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::new(State { free: true, ..State::default() }),
            pressed: Notify::new(),
            events: None,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `who` may send its next message; says what the press asked the cable to do.
    pub async fn pass(self: Arc<Self>, who: String) -> Release {
        let id = {
            let mut s = self.lock();
            if s.free {
                return Release::Send;
            }
            let id = s.next_id;
            s.next_id += 1;
            s.waiting.push(Waiter { id, who: who.clone(), granted: None });
            id
        };
        let _leave = Leave { gate: &self, id };
        if let Some(tx) = &self.events {
            let _ = tx.send(GateEvent::Waiting { from: who });
        }
        loop {
            let notified = self.pressed.notified();
            {
                let mut s = self.lock();
                if s.free {
                    return Release::Send;
                }
                if let Some(release) = s.waiting.iter().find(|w| w.id == id).and_then(|w| w.granted) {
                    s.last_hold = Some(Instant::now());
                    return release;
                }
            }
            notified.await;
        }
    }

    /// Lets one waiting message go. Returns false when nobody was waiting (nothing happens).
    pub fn open_one(&self) -> bool {
        self.release_one(Release::Send)
    }

    /// Lets the oldest waiting message go, with a fault for the cable to apply.
    pub fn release_one(&self, release: Release) -> bool {
        let mut s = self.lock();
        let Some(waiter) = s.waiting.iter_mut().find(|w| w.granted.is_none()) else { return false };
        waiter.granted = Some(release);
        drop(s);
        self.pressed.notify_waiters();
        true
    }

    /// Until when the exchange was paused at the gate: now while a message waits, else the
    /// moment the last held message went. `None` if nothing was ever held.
    pub fn held_until(&self) -> Option<Instant> {
        let s = self.lock();
        if s.waiting.iter().any(|w| w.granted.is_none()) { Some(Instant::now()) } else { s.last_hold }
    }

    /// Never holds anything.
    pub fn is_free(&self) -> bool {
        self.lock().free
    }

    /// The endpoint whose message waits now (the next a press lets go), if any.
    pub fn waiting(&self) -> Option<String> {
        let s = self.lock();
        s.waiting.iter().find(|w| w.granted.is_none()).map(|w| w.who.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn holds_until_pressed() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Gate::stepping(tx);
        assert!(!gate.open_one(), "nobody waits yet");
        let task = tokio::spawn(gate.clone().pass("client".into()));
        assert_eq!(rx.recv().await, Some(GateEvent::Waiting { from: "client".into() }));
        assert_eq!(gate.waiting().as_deref(), Some("client"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished());
        assert!(gate.open_one());
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert_eq!(gate.waiting(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_stop_while_a_message_is_held() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let gate = Gate::stepping(tx);
        let held = tokio::spawn(gate.clone().pass("server".into()));
        tokio::task::yield_now().await;
        // The reply is held for 100 s; a 30 s timeout waiting for it must not fire.
        let waiting = tokio::spawn(with_gate(gate.clone(), async {
            timeout(Duration::from_secs(30), tokio::time::sleep(Duration::from_secs(120))).await
        }));
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(gate.open_one());
        held.await.unwrap();
        assert_eq!(waiting.await.unwrap(), Ok(()), "120 s of which 100 s held: the peer was silent 20 s only");
        // Without a gate it is an ordinary timeout.
        assert_eq!(timeout(Duration::from_secs(1), tokio::time::sleep(Duration::from_secs(2))).await, Err(Elapsed));
    }

    #[tokio::test]
    async fn a_press_goes_to_the_sender_shown_waiting() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Gate::stepping(tx);
        let client = tokio::spawn(gate.clone().pass("client".into()));
        rx.recv().await;
        assert!(gate.release_one(Release::Drop));
        // A latecomer asks after the press: it must not take the client's turn.
        let server = tokio::spawn(gate.clone().pass("server".into()));
        rx.recv().await;
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), client).await.unwrap().unwrap(), Release::Drop);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!server.is_finished(), "the server waits for its own press");
        assert_eq!(gate.waiting().as_deref(), Some("server"));
        server.abort();
    }

    #[tokio::test]
    async fn an_abandoned_wait_leaves_no_ghost() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Gate::stepping(tx);
        let wait = tokio::spawn(gate.clone().pass("client".into()));
        rx.recv().await;
        wait.abort();
        let _ = wait.await;
        assert_eq!(gate.waiting(), None);
        assert!(!gate.open_one(), "nobody is left to let go");
    }

    #[tokio::test]
    async fn free_gate_never_waits() {
        let gate = Gate::free();
        tokio::time::timeout(Duration::from_secs(1), gate.pass("x".into())).await.unwrap();
    }
}
