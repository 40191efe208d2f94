//! The bounded queue between a run's steps and whoever prints or shows them. A lab never waits
//! for its reader: when the reader falls behind (a stdout nobody reads, a flood of clients), the
//! queue holds at most [`Bounds`] and drops the newest steps past them, counting each. The
//! `seq` numbers of dropped steps are never reused, so the gap shows in the output too.

use super::Step;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How much a queue holds before it drops.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub steps: usize,
    /// Bytes held by the queued steps (their bytes and text, roughly).
    pub bytes: usize,
}

impl Default for Bounds {
    /// Enough for any lab's exchange; a cap on what a flood can hold.
    fn default() -> Self {
        Bounds { steps: 16_384, bytes: 32 * 1024 * 1024 }
    }
}

/// What a blocking read of the queue found.
#[derive(Debug, PartialEq)]
pub enum Polled {
    Step(Box<Step>),
    /// Nothing came in the time given.
    Empty,
    /// Closed, and nothing is left.
    Closed,
}

/// Steps on their way to a reader.
#[derive(Debug)]
pub struct StepQueue {
    state: Mutex<State>,
    bounds: Bounds,
    /// Wakes a blocking reader (the printer's thread).
    ready: Condvar,
    /// Wakes an async reader (the TUI's forwarder).
    notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    steps: VecDeque<Step>,
    bytes: usize,
    /// Steps dropped since the queue began.
    dropped: u64,
    /// Every sender is gone: nothing more will come.
    closed: bool,
}

/// Roughly what a step holds in memory.
fn weight(step: &Step) -> usize {
    std::mem::size_of::<Step>() + step.bytes.len() + step.summary.len() + step.fields.len() * 64
}

impl StepQueue {
    pub fn new(bounds: Bounds) -> Self {
        StepQueue { state: Mutex::default(), bounds, ready: Condvar::new(), notify: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a step, or drops it (counted) when the queue is full. Never waits.
    pub fn push(&self, step: Step) -> bool {
        let w = weight(&step);
        let mut s = self.lock();
        if s.closed || s.steps.len() >= self.bounds.steps || (s.bytes + w > self.bounds.bytes && !s.steps.is_empty()) {
            s.dropped += 1;
            return false;
        }
        s.bytes += w;
        s.steps.push_back(step);
        drop(s);
        self.ready.notify_one();
        self.notify.notify_one();
        true
    }

    /// No more steps will come: a reader gets the rest, then `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
        self.notify.notify_one();
    }

    /// How many steps were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// How many steps wait in the queue now.
    pub fn waiting(&self) -> usize {
        self.lock().steps.len()
    }

    fn pop(s: &mut State) -> Option<Step> {
        let step = s.steps.pop_front()?;
        s.bytes -= weight(&step);
        // Give memory back once a burst has gone through.
        if s.steps.is_empty() && s.steps.capacity() > 1024 {
            s.steps.shrink_to(64);
        }
        Some(step)
    }

    /// The next step, waiting for it; `None` once the queue is closed and empty.
    pub async fn next(&self) -> Option<Step> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(step) = Self::pop(&mut s) {
                    return Some(step);
                }
                if s.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next step, blocking this thread up to `wait`.
    pub fn next_blocking(&self, wait: Duration) -> Polled {
        let mut s = self.lock();
        loop {
            if let Some(step) = Self::pop(&mut s) {
                return Polled::Step(Box::new(step));
            }
            if s.closed {
                return Polled::Closed;
            }
            let (guard, timeout) = self.ready.wait_timeout(s, wait).unwrap_or_else(|e| e.into_inner());
            s = guard;
            if timeout.timed_out() && s.steps.is_empty() && !s.closed {
                return Polled::Empty;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: usize) -> Step {
        Step { bytes: vec![0; n], ..Step::default() }
    }

    #[test]
    fn past_its_bounds_it_drops_and_counts_and_never_waits() {
        let q = StepQueue::new(Bounds { steps: 3, bytes: usize::MAX });
        let kept = (0..10).filter(|_| q.push(step(1))).count();
        assert_eq!((kept, q.dropped()), (3, 7));
        assert!(matches!(q.next_blocking(Duration::ZERO), Polled::Step(_)));
        assert!(q.push(step(1)), "room again once read");
        let q = StepQueue::new(Bounds { steps: 100, bytes: 3 * weight(&step(1000)) });
        let kept = (0..10).filter(|_| q.push(step(1000))).count();
        assert_eq!(kept, 3, "bounded by bytes too");
        assert!(q.push(step(0)) || q.dropped() > 7);
    }

    #[tokio::test]
    async fn a_reader_gets_the_rest_then_the_end() {
        let q = std::sync::Arc::new(StepQueue::new(Bounds::default()));
        q.push(step(1));
        q.push(step(2));
        q.close();
        assert!(!q.push(step(3)), "nothing after the close");
        assert_eq!(q.next().await.map(|s| s.bytes.len()), Some(1));
        assert_eq!(q.next().await.map(|s| s.bytes.len()), Some(2));
        assert_eq!(q.next().await, None);
        assert_eq!(q.next_blocking(Duration::ZERO), Polled::Closed);
    }
}
