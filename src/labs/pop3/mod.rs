//! The POP3 lab (RFC 1939, RFC 2449): bob downloads and deletes the mail the SMTP lab delivered.
//!
//! - [`wire`]: command lines, status lines, multi-line responses and dot-stuffing;
//! - [`decoder`]: bytes into steps, one per command and one per response;
//! - [`server`]: the session's state machine (AUTHORIZATION, TRANSACTION, UPDATE) over the
//!   SMTP lab's mailbox, and its socket loop;
//! - [`client`]: the dialogue the client runs, against our server or a real one.

pub mod client;
pub mod decoder;
pub mod server;
pub mod wire;

use super::smtp::Mailbox;
use super::smtp::mailbox::ACCOUNTS;
use super::{ClientCtx, Lab, LabFuture, LabInfo};
use crate::net::Stream;
use crate::wire::Decoder;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// POP3 over TLS from the first byte (`--tls`): port 995.
static POP3S: LabInfo = LabInfo {
    port: 995,
    rfcs: "RFC 1939, RFC 2449, RFC 8314, RFC 8446",
    about: "POP3 over TLS from the first byte: the handshake, then USER/PASS, STAT, RETR, DELE, QUIT",
    ..INFO
};

static INFO: LabInfo = LabInfo {
    name: "pop3",
    title: "POP3",
    port: 110,
    rfcs: "RFC 1939, RFC 2449",
    wires: &[crate::net::Wire::Host, crate::net::Wire::Sim],
    conn: None,
    about: "download and delete: USER/PASS, STAT, LIST, UIDL, TOP, RETR, DELE, QUIT",
    network: crate::net::sim::Topology::pair,
};

/// The POP3 lab: its server reads the mailbox the SMTP lab's server fills.
#[derive(Debug, Clone)]
pub struct Pop3 {
    mailbox: Mailbox,
    idle_timeout: Duration,
    /// In the clear (STLS offered), STLS before the login, or TLS from the first byte (995).
    tls: crate::tls::Mode,
    /// The client trusts the CA certificates in this file (a real server), not the lab CA.
    cafile: Option<std::path::PathBuf>,
    /// The server offers APOP: a timestamp in its greeting.
    apop: bool,
}

impl Pop3 {
    /// A lab whose server reads `mailbox` (the SMTP lab's, in the registry).
    pub fn new(mailbox: Mailbox) -> Self {
        let (tls, cafile) = crate::tls::story();
        Pop3 { mailbox, idle_timeout: server::IDLE_TIMEOUT, tls, cafile, apop: false }
    }

    /// The server offers APOP (a timestamp in its greeting), and so the client logs in with it.
    pub fn with_apop(mut self) -> Self {
        self.apop = true;
        self
    }

    /// The TLS story: STLS before the login (`Mode::StartTls`), or TLS from the first byte
    /// (`Mode::Implicit`, port 995); the client trusts `cafile`'s CAs, else the lab CA.
    pub fn with_tls(mut self, tls: crate::tls::Mode, cafile: Option<std::path::PathBuf>) -> Self {
        self.tls = tls;
        self.cafile = cafile;
        self
    }

    /// How long the server waits for a command (tests shorten it).
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }
}

impl Lab for Pop3 {
    fn info(&self) -> &'static LabInfo {
        if self.tls == crate::tls::Mode::Implicit { &POP3S } else { &INFO }
    }

    crate::labs::narration!("pop3", "tls");

    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        decoder::decoders(self.tls == crate::tls::Mode::Implicit)
    }

    fn serve(&self, io: Stream, _peer: SocketAddr) -> LabFuture {
        self.mailbox.welcome(ACCOUNTS[0], SystemTime::now());
        Box::pin(server::serve(io, self.mailbox.clone(), self.idle_timeout, self.tls, self.apop))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        let tls = ctx.tls(self.tls, self.cafile.clone());
        let login = match ctx.account {
            Some((user, password)) => client::Login { user, password },
            None => client::Login::lab(),
        };
        Box::pin(client::run(io, login, tls))
    }

    fn busy(&self) -> Option<Vec<u8>> {
        // On a TLS port an answer in the clear would be garbage to the client: just close.
        if self.tls == crate::tls::Mode::Implicit {
            return None;
        }
        Some(server::busy())
    }
}
