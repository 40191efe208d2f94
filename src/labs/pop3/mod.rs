//! The POP3 lab (RFC 1939, RFC 2449): so far its wire format, its decoders and its server's
//! session, sans-IO; the socket loop, the client and the tab come next.
//!
//! - [`wire`]: command lines, status lines, multi-line responses and dot-stuffing;
//! - [`decoder`]: bytes into steps, one per command and one per response;
//! - [`server`]: the session's state machine (AUTHORIZATION, TRANSACTION, UPDATE) over the
//!   SMTP lab's mailbox.

pub mod decoder;
pub mod server;
pub mod wire;
