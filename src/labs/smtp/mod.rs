//! SMTP lab (RFC 5321, RFC 5322): a client hands one message to the lab's mail server.
//!
//! - [`wire`]: command lines and replies on the wire (parse, emit, limits);
//! - [`message`]: the message text: header fields, dates, dot-stuffing;
//! - [`decoder`]: bytes into steps, one per command, reply, or message text;
//! - [`server`]: the server's session state machine and its socket loop;
//! - [`client`]: the dialogue the client runs, against our server or a real one;
//! - [`mailbox`]: where accepted mail is kept, for the POP3 and IMAP labs to read.

pub mod client;
pub mod decoder;
pub mod mailbox;
pub mod message;
pub mod server;
pub mod wire;

pub use mailbox::{Mail, Mailbox};
pub use server::Config;

use super::{ClientCtx, Lab, LabFuture, LabInfo};
use crate::net::Stream;
use crate::wire::Decoder;
use std::net::SocketAddr;
use std::sync::Arc;

static INFO: LabInfo = LabInfo {
    name: "smtp",
    title: "SMTP",
    port: 25,
    rfcs: "RFC 5321, RFC 5322",
    wires: &[crate::net::Wire::Host, crate::net::Wire::Sim],
    conn: None,
    about: "the SMTP dialogue: greeting, EHLO, MAIL, RCPT, DATA, QUIT",
    network: crate::net::sim::Topology::pair,
};

/// The SMTP lab: its server's settings and the mailbox its server delivers to.
#[derive(Debug, Clone, Default)]
pub struct Smtp {
    /// The server's name and limits, shared by every connection.
    config: Arc<Config>,
    /// Accepted mail; clones of the lab share it.
    mailbox: Mailbox,
}

impl Smtp {
    /// A lab whose server uses `config` (tests shorten the idle timeout this way).
    pub fn with_config(config: Config) -> Self {
        Smtp { config: Arc::new(config), mailbox: Mailbox::default() }
    }

    /// A lab whose server delivers into `mailbox` (shared with another lab, say POP3).
    pub fn with_mailbox(mut self, mailbox: Mailbox) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// The mail the embedded server accepted, newest last.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Lab for Smtp {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("smtp");

    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        decoder::decoders()
    }

    fn serve(&self, io: Stream, peer: SocketAddr) -> LabFuture {
        Box::pin(server::serve(io, peer, self.config.clone(), self.mailbox.clone()))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        Box::pin(async move { client::run(io, &ctx.target, !ctx.remote).await })
    }

    fn busy(&self) -> Option<Vec<u8>> {
        let text = format!("{} too many connections: try again later", self.config.hostname);
        Some(wire::Reply::new(wire::ReplyCode::SERVICE_NOT_AVAILABLE, text).emit())
    }
}
