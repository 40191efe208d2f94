//! The cable between the two virtual hosts: frames queue here in order, and the lab's faults
//! happen here (drop, delay, duplicate, corrupt the Nth frame), before a frame reaches the
//! other host.

pub use crate::session::Fate;
use smoltcp::time::{Duration, Instant};
use std::collections::VecDeque;

/// What the cable does to which frame; frames are counted from 1 as they enter the cable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Frames lost on the cable.
    pub drop: Vec<u64>,
    /// Frames held back this long (others may overtake them).
    pub delay: Vec<(u64, u64)>,
    /// Frames delivered twice.
    pub duplicate: Vec<u64>,
    /// Frames with one byte flipped (the receiver's checksum check throws them away).
    pub corrupt: Vec<u64>,
}

impl Faults {
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.delay.is_empty() && self.duplicate.is_empty() && self.corrupt.is_empty()
    }

    /// The longest hold on the cable: a run waits that much more for its last frames.
    pub fn longest_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.delay.iter().map(|&(_, ms)| ms).max().unwrap_or(0))
    }
}

/// One frame on the cable.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its number on the cable, from 1.
    pub number: u64,
    /// Index of the sending host.
    pub from: usize,
    /// The node it goes to, and the interface of that node it arrives on.
    pub to: usize,
    pub port: usize,
    /// A router forwarded it: its TTL and header checksum as the router took it in.
    pub forwarded: Option<super::router::Forwarded>,
    pub bytes: Vec<u8>,
    pub fate: Fate,
    /// The sender's state as it sent the frame (of the frame's TCP connection, or what the
    /// lab says of the host), if there was one to read.
    pub state: Option<String>,
    /// When it may leave the cable (later than its arrival only when delayed).
    due: Instant,
}

/// The frames in flight between the hosts.
#[derive(Debug, Default)]
pub struct Cable {
    faults: Faults,
    /// Frames that entered the cable so far.
    count: u64,
    queue: VecDeque<Frame>,
}

impl Cable {
    pub fn new(faults: Faults) -> Self {
        Cable { faults, count: 0, queue: VecDeque::new() }
    }

    /// The faults the cable applies.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A host put a frame on the cable, in `state`.
    pub fn enqueue(
        &mut self,
        from: usize,
        (to, port): (usize, usize),
        mut bytes: Vec<u8>,
        now: Instant,
        state: Option<String>,
    ) {
        self.count += 1;
        let number = self.count;
        let mut fate = Fate::Delivered;
        let mut due = now;
        if self.faults.drop.contains(&number) {
            fate = Fate::Dropped;
        } else if self.faults.corrupt.contains(&number) && !bytes.is_empty() {
            flip(&mut bytes);
            fate = Fate::Corrupted;
        } else if let Some(&(_, ms)) = self.faults.delay.iter().find(|(n, _)| *n == number) {
            due = now + Duration::from_millis(ms);
            fate = Fate::Delayed(ms);
        }
        let duplicate = self.faults.duplicate.contains(&number) && fate == Fate::Delivered;
        let frame = Frame { number, from, to, port, forwarded: None, bytes, fate, state, due };
        if duplicate {
            let copy = Frame { fate: Fate::Duplicate, ..frame.clone() };
            self.queue.push_back(frame);
            self.queue.push_back(copy);
        } else {
            self.queue.push_back(frame);
        }
    }

    /// Applies a fault chosen at the gate to a frame about to leave the cable.
    /// Marks the frames of the newest number (a copy included) as forwarded by a router.
    pub fn forwarded(&mut self, forwarded: super::router::Forwarded) {
        let number = self.count;
        // The newest frames are at the back (a copy right behind its original).
        for frame in self.queue.iter_mut().rev().take_while(|f| f.number == number) {
            frame.forwarded = Some(forwarded);
        }
    }

    pub fn strike(&mut self, frame: &mut Frame, release: crate::net::Release) {
        use crate::net::Release;
        match release {
            Release::Send => {}
            Release::Drop => frame.fate = Fate::Dropped,
            Release::Corrupt => {
                flip(&mut frame.bytes);
                frame.fate = Fate::Corrupted;
            }
            Release::Duplicate => {
                let copy = Frame { fate: Fate::Duplicate, ..frame.clone() };
                self.queue.push_front(copy);
            }
        }
    }

    /// The next frame that may leave the cable now, in order, skipping delayed ones not yet due.
    pub fn next(&mut self, now: Instant) -> Option<Frame> {
        let i = self.queue.iter().position(|f| f.due <= now)?;
        self.queue.remove(i)
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many frames have entered the cable so far: later frames are numbered above it.
    pub fn entered(&self) -> u64 {
        self.count
    }

    /// The first frame from `host` still on the cable that entered it after frame `after`.
    pub fn first_from(&self, host: usize, after: u64) -> Option<&Frame> {
        self.queue.iter().find(|f| f.from == host && f.number > after)
    }

    /// When the earliest held-back frame is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.iter().map(|f| f.due).min()
    }
}

/// Flips the frame's last byte, as noise in the data would: the headers stay readable (the
/// step still shows which segment it was), and the checksum that covers the data no longer
/// matches.
fn flip(bytes: &mut [u8]) {
    if let Some(last) = bytes.last_mut() {
        *last ^= 0xff;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn faults_apply_to_the_numbered_frame() {
        let faults = Faults { drop: vec![2], duplicate: vec![3], corrupt: vec![4], delay: vec![(1, 50)] };
        let mut cable = Cable::new(faults);
        for i in 0..5u8 {
            cable.enqueue(0, (1, 0), vec![i; 8], t(0), None);
        }
        let fates: Vec<_> = std::iter::from_fn(|| cable.next(t(0))).map(|f| (f.number, f.fate)).collect();
        assert_eq!(
            fates,
            [
                (2, Fate::Dropped),
                (3, Fate::Delivered),
                (3, Fate::Duplicate),
                (4, Fate::Corrupted),
                (5, Fate::Delivered)
            ]
        );
        assert_eq!(cable.next_due(), Some(t(50)));
        assert!(cable.next(t(49)).is_none());
        assert_eq!(cable.next(t(50)).map(|f| f.fate), Some(Fate::Delayed(50)));
    }

    #[test]
    fn corruption_changes_exactly_one_byte() {
        let mut cable = Cable::new(Faults { corrupt: vec![1], ..Faults::default() });
        cable.enqueue(0, (1, 0), vec![0u8; 60], t(0), None);
        let f = cable.next(t(0)).unwrap();
        assert_eq!(f.bytes.iter().filter(|&&b| b != 0).count(), 1);
    }
}
