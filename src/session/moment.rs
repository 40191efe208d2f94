//! The moment of its conversation each step is: a TCP ACK that completes the handshake is not
//! the ACK of a FIN; a DHCP ACK after DORA is not the ACK of a renewal.

use super::Step;

/// Every conversation of one run so far.
#[derive(Debug, Default)]
pub struct Moments {}

impl Moments {
    /// Refines `step.kind` by what came before it, and marks repetitions.
    pub fn place(&mut self, _step: &mut Step) {}
}
