//! The session: the ordered, bounded log of steps that the TUI, the CLI and the tests read.

mod format;
pub mod moment;
mod pcap;
pub mod queue;
mod sink;
mod step;

pub use format::{Format, text_line, write_step};
pub use pcap::Pcap;
pub use queue::{Bounds, Polled, StepQueue};
pub use sink::{Clock, StepSink};
pub use step::{Fate, Field, KEEP_BYTES, Layer, Moved, SeqCell, Step, hex};

use std::collections::VecDeque;

/// Default bounds: enough for any lesson, small enough for a week-long `serve`.
const MAX_STEPS: usize = 200_000;
const MAX_BYTES: usize = 256 * 1024 * 1024;

/// The steps of one lab run, oldest first; the oldest are dropped once a bound is reached.
#[derive(Debug)]
pub struct Session {
    /// The kept steps, oldest first.
    steps: VecDeque<Step>,
    /// How many steps were dropped from the front to respect the bounds.
    dropped: usize,
    /// Bytes held by the kept steps (their `bytes`), to bound memory.
    held_bytes: usize,
    max_steps: usize,
    max_bytes: usize,
}

impl Default for Session {
    fn default() -> Self {
        Session::with_bounds(MAX_STEPS, MAX_BYTES)
    }
}

impl Session {
    pub fn with_bounds(max_steps: usize, max_bytes: usize) -> Self {
        Session { steps: VecDeque::new(), dropped: 0, held_bytes: 0, max_steps: max_steps.max(1), max_bytes }
    }

    /// Adds a step; returns how many of the oldest were dropped to stay within bounds (so
    /// whoever holds positions in the log can shift them).
    pub fn push(&mut self, step: Step) -> usize {
        self.held_bytes += footprint(&step);
        self.steps.push_back(step);
        let mut dropped = 0;
        while self.steps.len() > self.max_steps || (self.held_bytes > self.max_bytes && self.steps.len() > 1) {
            if let Some(old) = self.steps.pop_front() {
                self.held_bytes -= footprint(&old);
                dropped += 1;
            }
        }
        self.dropped += dropped;
        dropped
    }

    /// Steps kept now.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Steps dropped from the front to stay within bounds.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The step numbered `seq`, if it is still kept.
    pub fn by_seq(&self, seq: u64) -> Option<&Step> {
        let first = self.steps.front()?.seq;
        let step = self.steps.get(usize::try_from(seq.checked_sub(first)?).ok()?)?;
        (step.seq == seq).then_some(step)
    }

    /// The connection a step belongs to: its own (see [`Step::connection`]), or that of the
    /// first segment that carried it.
    pub fn connection_of(&self, step: &Step) -> Option<String> {
        step.connection().or_else(|| self.by_seq(*step.carried_by.first()?)?.connection())
    }

    pub fn get(&self, index: usize) -> Option<&Step> {
        self.steps.get(index)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Step> + ExactSizeIterator {
        self.steps.iter()
    }

    /// The steps in `range` (clamped), for drawing only what is visible.
    pub fn range(&self, range: std::ops::Range<usize>) -> impl DoubleEndedIterator<Item = &Step> {
        let end = range.end.min(self.steps.len());
        let start = range.start.min(end);
        self.steps.range(start..end)
    }

    pub fn clear(&mut self) {
        self.steps.clear();
        self.dropped = 0;
        self.held_bytes = 0;
    }
}

/// Roughly what a step holds in memory: its bytes, its text, its fields.
fn footprint(step: &Step) -> usize {
    let fields: usize = step.fields.iter().map(|f| f.path.len() + 48).sum();
    std::mem::size_of::<Step>() + step.bytes.len() + step.summary.len() + fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(seq: u64, n: usize) -> Step {
        Step { seq, len: n, bytes: vec![0; n], ..Step::default() }
    }

    #[test]
    fn drops_oldest_past_step_bound() {
        let mut s = Session::with_bounds(3, usize::MAX);
        for i in 1..=5 {
            s.push(step(i, 1));
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.get(0).unwrap().seq, 3);
    }

    #[test]
    fn drops_oldest_past_byte_bound_but_keeps_newest() {
        let one = footprint(&step(1, 6));
        let mut s = Session::with_bounds(100, one + one / 2);
        s.push(step(1, 6));
        s.push(step(2, 6));
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(0).unwrap().seq, 2);
        s.push(step(3, 50));
        assert_eq!(s.len(), 1, "a single oversized step is still kept");
    }
}
