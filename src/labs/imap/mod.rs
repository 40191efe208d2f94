//! The IMAP lab (RFC 9051): mail kept on the server, in folders, with flags. bob's client reads
//! the mail the SMTP lab delivered without taking it away.
//!
//! - [`wire`]: where commands and responses end (lines and literals), their values, the commands;
//! - [`decoder`]: bytes into steps, one per command and one per response line;
//! - [`server`]: the session's state machine over the SMTP lab's mailbox, and its socket loop;
//! - [`client`]: the tour the client takes, against our server or a real one;
//! - [`story`]: on the lab network, two clients in sync (laptop and phone) and new mail by SMTP.

pub mod client;
pub mod decoder;
pub mod server;
pub mod story;
pub mod wire;

use super::smtp::Mailbox;
use super::smtp::mailbox::ACCOUNTS;
use super::{ClientCtx, Lab, LabFuture, LabInfo};
use crate::net::Stream;
use crate::wire::Decoder;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// IMAP over TLS from the first byte (`--tls`): port 993, one client's tour on either wire.
static IMAPS: LabInfo = LabInfo {
    port: 993,
    rfcs: "RFC 9051, RFC 8314, RFC 8446",
    about: "IMAP over TLS from the first byte: the handshake, then LOGIN, SELECT, FETCH, flags, folders",
    network: crate::net::sim::Topology::pair,
    ..INFO
};

/// IMAP with STARTTLS before the login (`--starttls`): one client's tour on either wire.
static IMAP_STARTTLS: LabInfo = LabInfo {
    rfcs: "RFC 9051, RFC 8446",
    about: "IMAP with STARTTLS: LOGINDISABLED in the clear, the handshake, then the tour",
    network: crate::net::sim::Topology::pair,
    ..INFO
};

static INFO: LabInfo = LabInfo {
    name: "imap",
    title: "IMAP",
    port: 143,
    rfcs: "RFC 9051",
    wires: &[crate::net::Wire::Sim, crate::net::Wire::Host],
    conn: None,
    about: "mail kept on the server: LOGIN, SELECT, FETCH (partial), flags, SEARCH, folders",
    network: story::network,
};

/// The IMAP lab: its server reads the mailbox the SMTP lab's server fills.
#[derive(Debug, Clone)]
pub struct Imap {
    mailbox: Mailbox,
    idle_timeout: Duration,
    /// In the clear (STARTTLS offered), STARTTLS before the login, or TLS at once (993).
    tls: crate::tls::Mode,
    /// The client trusts the CA certificates in this file (a real server), not the lab CA.
    cafile: Option<std::path::PathBuf>,
}

impl Imap {
    /// A lab whose server reads `mailbox` (the SMTP lab's, in the registry).
    pub fn new(mailbox: Mailbox) -> Self {
        let (tls, cafile) = crate::tls::story();
        Imap { mailbox, idle_timeout: server::IDLE_TIMEOUT, tls, cafile }
    }

    /// The TLS story: STARTTLS before the login (`Mode::StartTls`), or TLS from the first byte
    /// (`Mode::Implicit`, port 993): one client's tour, on either wire. The client trusts
    /// `cafile`'s CAs, else the lab CA.
    pub fn with_tls(mut self, tls: crate::tls::Mode, cafile: Option<std::path::PathBuf>) -> Self {
        self.tls = tls;
        self.cafile = cafile;
        self
    }

    /// How long the server waits for a client that says nothing (tests shorten it).
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }
}

impl Lab for Imap {
    fn info(&self) -> &'static LabInfo {
        match self.tls {
            crate::tls::Mode::Plain => &INFO,
            crate::tls::Mode::StartTls => &IMAP_STARTTLS,
            crate::tls::Mode::Implicit => &IMAPS,
        }
    }

    crate::labs::narration!("imap", "smtp", "tls");

    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        decoder::decoders(self.tls == crate::tls::Mode::Implicit)
    }

    fn serve(&self, io: Stream, _peer: SocketAddr) -> LabFuture {
        self.mailbox.welcome(ACCOUNTS[0], SystemTime::now());
        Box::pin(server::serve(io, self.mailbox.clone(), self.idle_timeout, self.tls))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        let tls = ctx.tls(self.tls, self.cafile.clone());
        let (user, password) = ctx.account.unwrap_or((ACCOUNTS[0].user.into(), ACCOUNTS[0].password.into()));
        Box::pin(async move { client::run(io, &user, &password, tls).await })
    }

    fn busy(&self) -> Option<Vec<u8>> {
        // On a TLS port an answer in the clear would be garbage to the client: just close.
        if self.tls == crate::tls::Mode::Implicit {
            return None;
        }
        Some(server::busy())
    }

    fn host_lifelines(&self) -> Vec<&'static str> {
        match self.tls {
            crate::tls::Mode::Plain => vec!["laptop", "server", "phone"],
            _ => vec!["client", "server"],
        }
    }

    /// On kernel sockets too, the two-device story (in the clear; with --connect, one client).
    fn host_datagrams(
        &self,
        target: Option<&str>,
        sink: crate::session::StepSink,
        gate: std::sync::Arc<crate::net::Gate>,
    ) -> Option<LabFuture> {
        if target.is_some() || self.tls != crate::tls::Mode::Plain {
            return None;
        }
        Some(Box::pin(story::run_host(sink, gate, self.mailbox.clone(), self.idle_timeout)))
    }

    fn packets(&self, net: &crate::net::sim::SimNet) -> Option<LabFuture> {
        // The two-device story is told in the clear; with TLS, one client takes the tour.
        if self.tls != crate::tls::Mode::Plain {
            return None;
        }
        Some(Box::pin(story::run(net.clone(), self.mailbox.clone(), self.idle_timeout)))
    }
}
