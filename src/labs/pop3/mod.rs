//! The POP3 lab (RFC 1939, RFC 2449): so far its wire format and its decoders, sans-IO; the
//! server (a state machine over the SMTP lab's mailbox), the client and the tab come next.
//!
//! - [`wire`]: command lines, status lines, multi-line responses and dot-stuffing;
//! - [`decoder`]: bytes into steps, one per command and one per response.

pub mod decoder;
pub mod wire;
