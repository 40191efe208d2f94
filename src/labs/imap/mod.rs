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
}

impl Imap {
    /// A lab whose server reads `mailbox` (the SMTP lab's, in the registry).
    pub fn new(mailbox: Mailbox) -> Self {
        Imap { mailbox, idle_timeout: server::IDLE_TIMEOUT }
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
        &INFO
    }

    crate::labs::narration!("imap", "smtp");

    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        decoder::decoders()
    }

    fn serve(&self, io: Stream, _peer: SocketAddr) -> LabFuture {
        self.mailbox.welcome(ACCOUNTS[0], SystemTime::now());
        Box::pin(server::serve(io, self.mailbox.clone(), self.idle_timeout))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        let (user, password) = ctx.account.unwrap_or((ACCOUNTS[0].user.into(), ACCOUNTS[0].password.into()));
        Box::pin(async move { client::run(io, &user, &password, !ctx.remote).await })
    }

    fn busy(&self) -> Option<Vec<u8>> {
        Some(server::busy())
    }

    fn packets(&self, net: &crate::net::sim::SimNet) -> Option<LabFuture> {
        Some(Box::pin(story::run(net.clone(), self.mailbox.clone(), self.idle_timeout)))
    }
}
