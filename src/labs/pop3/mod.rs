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

use super::smtp::message::rfc5322_date;
use super::smtp::{Mail, Mailbox};
use super::{ClientCtx, Lab, LabFuture, LabInfo};
use crate::net::Stream;
use crate::wire::Decoder;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
}

impl Pop3 {
    /// A lab whose server reads `mailbox` (the SMTP lab's, in the registry).
    pub fn new(mailbox: Mailbox) -> Self {
        Pop3 { mailbox, idle_timeout: server::IDLE_TIMEOUT }
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
        &INFO
    }

    crate::labs::narration!("pop3");

    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        decoder::decoders()
    }

    fn serve(&self, io: Stream, _peer: SocketAddr) -> LabFuture {
        welcome(&self.mailbox, SystemTime::now());
        Box::pin(server::serve(io, self.mailbox.clone(), self.idle_timeout))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        let login = match ctx.account {
            Some((user, password)) => client::Login { user, password },
            None => client::Login::lab(),
        };
        Box::pin(client::run(io, login, !ctx.remote))
    }

    fn busy(&self) -> Option<Vec<u8>> {
        Some(server::busy())
    }
}

/// The sender of the welcome message.
pub const POSTMASTER: &str = "postmaster@protolab.test";

/// When bob's mailbox is empty, a first message, as a mail system leaves one in a new account:
/// so the lab has something to fetch before the SMTP tab sent anything.
pub fn welcome(mailbox: &Mailbox, now: SystemTime) {
    let address = server::ACCOUNTS[0].address;
    if !mailbox.for_recipient(address).is_empty() {
        return;
    }
    let id = mailbox.next_id();
    let date = rfc5322_date(now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    let content = format!(
        "From: protolab <{POSTMASTER}>\r\nTo: Bob <{address}>\r\nSubject: Welcome to the POP3 lab\r\n\
         Date: {date}\r\nMessage-ID: <{id}.welcome@protolab.test>\r\n\r\nHi Bob,\r\n\r\n\
         the lab left this message because your mailbox was empty.\r\n\
         Send one on the SMTP tab, then fetch it here: RETR shows its Message-ID.\r\n\
         .This line starts with a dot, so the server sends it with two (dot-stuffing).\r\n"
    );
    mailbox.deliver(Mail {
        id,
        reverse_path: POSTMASTER.into(),
        forward_paths: vec![address.into()],
        client_domain: "protolab.test".into(),
        peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        received: now,
        content: content.into_bytes(),
    });
}
