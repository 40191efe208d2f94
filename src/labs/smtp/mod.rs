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

/// The submission story (`--starttls`): port 587.
static SUBMISSION: LabInfo = LabInfo {
    port: 587,
    rfcs: "RFC 6409, RFC 3207, RFC 4954, RFC 8446",
    about: "mail submission: EHLO, STARTTLS, the TLS handshake, EHLO again, AUTH, MAIL, RCPT, DATA",
    ..INFO
};

/// Submission over TLS from the first byte (`--tls`): port 465.
static SUBMISSIONS: LabInfo = LabInfo {
    port: 465,
    rfcs: "RFC 8314, RFC 4954, RFC 8446",
    about: "mail submission over TLS from the first byte: the handshake, then EHLO, AUTH, MAIL, RCPT, DATA",
    ..INFO
};

/// The SMTP lab the registry holds: the story the command line chose.
pub fn configured() -> Smtp {
    let (mode, cafile) = crate::tls::story();
    Smtp::default().with_tls(mode, cafile)
}

/// The SMTP lab: its server's settings and the mailbox its server delivers to.
#[derive(Debug, Clone, Default)]
pub struct Smtp {
    /// The server's name and limits, shared by every connection.
    config: Arc<Config>,
    /// Accepted mail; clones of the lab share it.
    mailbox: Mailbox,
    /// In the clear (port 25), STARTTLS and AUTH (submission, 587), or TLS at once (465).
    tls: crate::tls::Mode,
    /// The client trusts the CA certificates in this file (a real server), not the lab CA.
    cafile: Option<std::path::PathBuf>,
}

impl Smtp {
    /// A lab whose server uses `config` (tests shorten the idle timeout this way).
    pub fn with_config(config: Config) -> Self {
        Smtp { config: Arc::new(config), ..Smtp::default() }
    }

    /// The submission story: STARTTLS (`Mode::StartTls`, port 587) or TLS from the first byte
    /// (`Mode::Implicit`, port 465), then AUTH; the server takes mail only from a client that
    /// logged in. The client trusts `cafile`'s CAs, else the lab CA.
    pub fn with_tls(mut self, mode: crate::tls::Mode, cafile: Option<std::path::PathBuf>) -> Self {
        let mut config = (*self.config).clone();
        config.submission = mode != crate::tls::Mode::Plain;
        config.implicit_tls = mode == crate::tls::Mode::Implicit;
        config.starttls = mode != crate::tls::Mode::Implicit;
        self.config = Arc::new(config);
        self.tls = mode;
        self.cafile = cafile;
        self
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
        match self.tls {
            crate::tls::Mode::Plain => &INFO,
            crate::tls::Mode::StartTls => &SUBMISSION,
            crate::tls::Mode::Implicit => &SUBMISSIONS,
        }
    }

    crate::labs::narration!("smtp", "tls");

    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        decoder::decoders(self.config.implicit_tls)
    }

    fn serve(&self, io: Stream, peer: SocketAddr) -> LabFuture {
        Box::pin(server::serve(io, peer, self.config.clone(), self.mailbox.clone()))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        let account = match (&ctx.account, ctx.remote, self.tls) {
            (Some(account), _, _) => Some(account.clone()),
            (None, false, crate::tls::Mode::StartTls | crate::tls::Mode::Implicit) => {
                let alice = mailbox::ACCOUNTS[1];
                Some((alice.user.to_string(), alice.password.to_string()))
            }
            _ => None,
        };
        let tls = ctx.tls(self.tls, self.cafile.clone());
        let options = client::Options { tls, account };
        Box::pin(client::run(io, options))
    }

    fn busy(&self) -> Option<Vec<u8>> {
        // On a TLS port an answer in the clear would be garbage to the client: just close.
        if self.tls == crate::tls::Mode::Implicit {
            return None;
        }
        let text = format!("{} too many connections: try again later", self.config.hostname);
        Some(wire::Reply::new(wire::ReplyCode::SERVICE_NOT_AVAILABLE, text).emit())
    }
}
