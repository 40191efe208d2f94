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

#[derive(Debug, Default)]
struct State {
    /// What the presses granted so far do to their messages, oldest first.
    releases: std::collections::VecDeque<Release>,
    /// What the press that let the latest message go asked for.
    released: Release,
    /// The last moment a message was held at the gate (while one is held: now).
    last_hold: Option<Instant>,
    /// Always open: nobody waits.
    free: bool,
    /// Presses granted and not yet used by a sender.
    credits: u32,
    /// Endpoints waiting now, oldest first.
    waiting: Vec<String>,
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

    /// Waits until `who` may send its next message.
    pub async fn pass(self: Arc<Self>, who: String) {
        let mut announced = false;
        loop {
            let notified = self.pressed.notified();
            {
                let mut s = self.lock();
                if s.free {
                    return;
                }
                if s.credits > 0 {
                    s.credits -= 1;
                    let release = s.releases.pop_front().unwrap_or_default();
                    s.released = release;
                    s.last_hold = Some(Instant::now());
                    if let Some(i) = s.waiting.iter().position(|w| *w == who) {
                        s.waiting.remove(i);
                    }
                    return;
                }
                if !announced {
                    announced = true;
                    s.waiting.push(who.clone());
                    if let Some(tx) = &self.events {
                        let _ = tx.send(GateEvent::Waiting { from: who.clone() });
                    }
                }
            }
            notified.await;
        }
    }

    /// Lets one waiting message go. Returns false when nobody was waiting (nothing happens).
    pub fn open_one(&self) -> bool {
        self.release_one(Release::Send)
    }

    /// Lets one waiting message go, with a fault for the cable to apply.
    pub fn release_one(&self, release: Release) -> bool {
        let mut s = self.lock();
        if s.waiting.is_empty() || s.credits as usize >= s.waiting.len() {
            return false;
        }
        s.credits += 1;
        s.releases.push_back(release);
        drop(s);
        self.pressed.notify_waiters();
        true
    }

    /// Until when the exchange was paused at the gate: now while a message waits, else the
    /// moment the last held message went. `None` if nothing was ever held.
    pub fn held_until(&self) -> Option<Instant> {
        let s = self.lock();
        if s.waiting.len() > s.credits as usize { Some(Instant::now()) } else { s.last_hold }
    }

    /// What the press that let the latest message through asked for (the sim driver reads it
    /// right after `pass`).
    pub fn released(&self) -> Release {
        self.lock().released
    }

    /// Never holds anything.
    pub fn is_free(&self) -> bool {
        self.lock().free
    }

    /// The endpoint whose message waits now, if any.
    pub fn waiting(&self) -> Option<String> {
        let s = self.lock();
        s.waiting.get(s.credits as usize).cloned()
    }

    /// Opens the gate for good (or closes it again).
    pub fn set_free(&self, free: bool) {
        self.lock().free = free;
        self.pressed.notify_waiters();
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
    async fn free_gate_never_waits() {
        let gate = Gate::free();
        tokio::time::timeout(Duration::from_secs(1), gate.pass("x".into())).await.unwrap();
    }
}
