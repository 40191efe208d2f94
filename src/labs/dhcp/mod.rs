//! DHCP lab (RFC 2131, RFC 2132): a client without an address asks the lab network for one, and
//! the lab's server lends it one for a while: DISCOVER, OFFER, REQUEST, ACK ("DORA"), then
//! renewal at T1, rebinding at T2, and expiry, RELEASE, DECLINE and NAK along the way.
//!
//! Everything here is sans-IO: messages and the time go in, messages and their destinations come
//! out, and nothing reads a clock or opens a socket.
//!
//! - [`wire`] (in `src/wire/dhcp.rs`, shared with the frame decoder): the message on the wire:
//!   [`wire::describe`] turns a UDP payload into a step with every field's byte range;
//!   [`wire::encode`] and [`wire::parse`] move messages on and off it;
//! - [`lease`]: the server's address pool: offers, bindings, expiry, release and decline;
//! - [`server`]: the server's answer to each client message, and where it goes;
//! - [`client`]: the client's state machine (RFC 2131 §4.4: INIT, SELECTING, REQUESTING, BOUND,
//!   RENEWING, REBINDING, INIT-REBOOT, REBOOTING) and its timers.

pub mod client;
#[cfg(target_os = "linux")]
pub mod host;
mod lab;
pub mod lease;
pub mod server;

pub use lab::{DEFAULT_SPEEDUP, Dhcp, SPEEDUPS, set_speedup, speedup};

pub use crate::wire::dhcp as wire;
