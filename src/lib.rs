//! protolab: see network protocols work, one real message at a time.
//!
//! A tour, following the bytes:
//! - [`labs`]: one folder per protocol. `labs/smtp/` holds the SMTP server (a state machine
//!   you can read), the client, and the decoder; `labs/ws/` the WebSocket upgrade and frames;
//!   `labs/tcp/` the handshake lab; `labs/dhcp/` the lease pool, server, client state machine
//!   and the DORA story. [`labs::registry`] lists them; [`labs::run`] runs one exchange or
//!   serves outside clients.
//! - [`net`]: the wires. [`net::host`], kernel sockets as a run uses them (the connect waits at
//!   the gate; what the socket API shows becomes steps), and [`net::sim`], the lab network: two
//!   smoltcp hosts and a cable where every frame is a step. [`net::TapStream`] records a
//!   connection's messages; the [`net::Gate`] holds each message (or frame) until the presenter
//!   lets it go; [`net::capture`] adds the kernel's own segments where the process may capture,
//!   and puts each message after the segments that carried it.
//! - [`wire`]: sans-IO wire formats shared by labs (HTTP heads, DHCP messages, Ethernet frames
//!   down to every field's bytes) and the [`wire::Decoder`] trait.
//! - [`session`]: the step (the JSONL contract), the bounded, ordered log of steps, and pcap;
//!   [`session::moment`] names the moment of its conversation each step is (the handshake's
//!   ACK, the last ACK; DORA's ACK, a renewal's), from the steps before it.
//! - [`narration`]: what each step means at its moment, from `assets/narration/`.
//! - [`lesson`]: guided lessons from `assets/lessons/`: text, and questions graded by the real
//!   step they ask about.
//! - [`tui`]: the terminal lab: tabs, the ladder, details, hex, narration, the lease timeline.
//! - [`cli`]: the command line: `labs`, `run`, `serve`, `tui`, `lesson`.

pub mod cli;
pub mod config;
pub mod labs;
pub mod lesson;
pub mod locale;
pub mod narration;
pub mod net;
pub mod session;
pub mod tls;
pub mod tui;
pub mod wire;
