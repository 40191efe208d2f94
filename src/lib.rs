//! protolab: see network protocols work, one real message at a time.
//!
//! A tour, following the bytes:
//! - [`labs`]: one folder per protocol. `labs/smtp/` holds the SMTP server (a state machine
//!   you can read), the client, and the decoder; `labs/ws/` the WebSocket upgrade and frames.
//!   [`labs::registry`] lists them; [`labs::run`] runs one exchange or serves outside clients.
//! - [`net`]: the wires. [`net::TapStream`] records every byte a socket moves and holds each
//!   message at the [`net::Gate`] until the presenter lets it go.
//! - [`wire`]: sans-IO wire formats shared by labs (HTTP heads) and the [`wire::Decoder`] trait.
//! - [`session`]: the step (the JSONL contract) and the bounded, ordered log of steps.
//! - [`narration`]: what each step means, from `assets/narration/`.
//! - [`tui`]: the terminal lab: tabs, the ladder, details, hex, narration.
//! - [`cli`]: the command line: `labs`, `run`, `serve`, `tui`.

pub mod cli;
pub mod labs;
pub mod narration;
pub mod net;
pub mod session;
pub mod tui;
pub mod wire;
