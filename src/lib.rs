//! protolab: see network protocols work, one real message at a time.
//!
//! A tour, following the bytes:
//! - [`labs`]: one folder per protocol. `labs/smtp/` holds the SMTP server (a state machine
//!   you can read), the client, and the decoder; `labs/ws/` the WebSocket upgrade and frames;
//!   `labs/tcp/` the handshake lab; `labs/dhcp/` the lease pool, server, client state machine
//!   and the DORA story. [`labs::registry`] lists them; [`labs::run`] runs one exchange or
//!   serves outside clients.
//! - [`net`]: the wires. Kernel sockets, and [`net::sim`], the lab network: two smoltcp hosts
//!   and a cable where every frame is a step. [`net::TapStream`] records a connection's
//!   messages; the [`net::Gate`] holds each message (or frame) until the presenter lets it go;
//!   [`net::capture`] adds the kernel's own segments where the process may capture.
//! - [`wire`]: sans-IO wire formats shared by labs (HTTP heads, DHCP messages, Ethernet frames
//!   down to every field's bytes) and the [`wire::Decoder`] trait.
//! - [`session`]: the step (the JSONL contract), the bounded, ordered log of steps, and pcap.
//! - [`narration`]: what each step means, from `assets/narration/`.
//! - [`tui`]: the terminal lab: tabs, the ladder, details, hex, narration, the lease timeline.
//! - [`cli`]: the command line: `labs`, `run`, `serve`, `tui`.

pub mod cli;
pub mod labs;
pub mod narration;
pub mod net;
pub mod session;
pub mod tui;
pub mod wire;
