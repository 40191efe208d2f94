//! The gate: a message waits here until the presenter says "send it now".
//!
//! Every tapped endpoint we own asks the gate before the first byte of each message goes out.
//! In free mode (headless `run`, remote peers) the gate is always open.

use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// What the gate tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateEvent {
    /// An endpoint has a message ready and waits for a press.
    Waiting { from: String },
}

#[derive(Debug, Default)]
struct State {
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
        let mut s = self.lock();
        if s.waiting.is_empty() || s.credits as usize >= s.waiting.len() {
            return false;
        }
        s.credits += 1;
        drop(s);
        self.pressed.notify_waiters();
        true
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

    #[tokio::test]
    async fn free_gate_never_waits() {
        let gate = Gate::free();
        tokio::time::timeout(Duration::from_secs(1), gate.pass("x".into())).await.unwrap();
    }
}
