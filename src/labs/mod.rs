//! The labs: one folder per protocol (client scenario, embedded server, decoders, lesson keys),
//! and the registry below. Adding a lab is one folder and one line in [`registry`].

pub mod dhcp;
pub mod dns;
pub mod imap;
pub mod mail;
pub mod nat;
pub mod ping;
pub mod pop3;
pub mod portscan;
pub mod run;
pub mod smtp;
pub mod tcp;
pub mod traceroute;
pub mod ws;

use crate::net::sim::{SimNet, Topology};
use crate::net::{Gate, Net, Stream, Wire};
use crate::session::StepSink;
use crate::wire::{Decoder, FramesOnly};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// What `protolab labs` lists about a lab.
#[derive(Debug, Clone, Copy)]
pub struct LabInfo {
    /// The name on the command line (`ws`, `smtp`).
    pub name: &'static str,
    /// The tab title (`WebSocket`).
    pub title: &'static str,
    /// The protocol's well-known port.
    pub port: u16,
    /// The RFCs the lab follows.
    pub rfcs: &'static str,
    /// One line: what the lab shows.
    pub about: &'static str,
    /// The wires the lab runs on, the one it takes unless told otherwise first.
    pub wires: &'static [Wire],
    /// The name of the lab's main connection, for labs that open more than one (`echo`): the
    /// steps of each connection carry its name as `conn`.
    pub conn: Option<&'static str>,
    /// The lab network it runs on (most: two hosts on one cable).
    pub network: fn() -> Topology,
}

impl LabInfo {
    /// The wire the lab runs on unless told otherwise.
    pub fn default_wire(&self) -> Wire {
        self.wires[0]
    }

    /// Whether the lab can run on `wire`.
    pub fn runs_on(&self, wire: Wire) -> bool {
        self.wires.contains(&wire)
    }

    /// The wire to run on when `asked` for one: that one if the lab can, else its own.
    pub fn wire_for(&self, asked: Option<Wire>) -> Wire {
        asked.filter(|w| self.runs_on(*w)).unwrap_or(self.default_wire())
    }
}

/// What a lab's client gets besides its stream.
pub struct ClientCtx {
    /// The server it talks to (`HOST:PORT`).
    pub target: String,
    /// The network, for labs that open more connections (the TCP lab's closed port).
    pub net: Net,
    /// The server is a real one (`--connect`), not our embedded server: the client only does
    /// what a real server may be asked (the SMTP client tries no refused recipient there).
    pub remote: bool,
    /// The account to log in with (`--user NAME:PASSWORD`), for labs that log in to a real
    /// server; `None`: the lab's own account.
    pub account: Option<(String, String)>,
}

impl ClientCtx {
    /// The client's TLS for this run: `mode`, trusting `cafile`'s CAs (else the lab CA), asking
    /// for the target's name (the lab server's, when it is ours).
    pub fn tls(&self, mode: crate::tls::Mode, cafile: Option<std::path::PathBuf>) -> crate::tls::ClientTls {
        crate::tls::ClientTls { mode, cafile, ours: !self.remote, target: self.target.clone() }
    }
}

/// A lab's task: ends with `Ok` when the exchange completed, or the reason it did not.
pub type LabFuture = Pin<Box<dyn Future<Output = color_eyre::Result<()>> + Send>>;

/// One protocol's lab, written against [`Stream`] so it runs on any wire.
pub trait Lab: Send + Sync + 'static {
    fn info(&self) -> &'static LabInfo;

    /// The lab's narration assets in `lang`, its own first, see [`crate::narration`].
    fn narration(&self, lang: crate::locale::Lang) -> Vec<&'static str>;

    /// Fresh decoders for one connection: (client→server, server→client). They may share
    /// state (the WebSocket response decoder checks the key the request decoder saw).
    /// `segments`: the wire shows the connection's segments as steps of their own (the lab
    /// network, or a capture), so a lab whose steps are the segments needs nothing more (the
    /// default: the frames are the steps).
    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        (Box::new(FramesOnly), Box::new(FramesOnly))
    }

    /// The embedded server's side of one connection from `peer` (labs of packets have none).
    fn serve(&self, _io: Stream, _peer: SocketAddr) -> LabFuture {
        no_stream(self.info().name)
    }

    /// The client scenario, talking to `ctx.target` over `io` (labs of packets have none).
    fn client(&self, _io: Stream, _ctx: ClientCtx) -> LabFuture {
        no_stream(self.info().name)
    }

    /// What the embedded server says to a client it has no room for (`serve` at its connection
    /// limit), in the protocol's own words, before it closes: SMTP's `421`, an HTTP `503`.
    /// `None`: the connection is just closed.
    fn busy(&self) -> Option<Vec<u8>> {
        None
    }

    /// For labs whose steps are packets rather than a stream (DHCP): the whole exchange, run
    /// on the lab network directly. Stream labs leave it `None`.
    fn packets(&self, _net: &SimNet) -> Option<LabFuture> {
        None
    }

    /// For labs that serve datagrams on a real interface named on the command line (DHCP):
    /// `protolab serve LAB --interface IF`.
    fn serve_interface(&self, _interface: &str, _sink: StepSink, _sessions: Option<u32>) -> Option<LabFuture> {
        None
    }

    /// For labs whose server is not one stream per connection (DNS answers datagrams and
    /// streams on one port): `protolab serve LAB --listen ADDR:PORT`, which says `listening on`
    /// itself once it is.
    fn serve_port(&self, _listen: &str, _sink: StepSink, _sessions: Option<u32>) -> Option<LabFuture> {
        None
    }

    /// The ladder's lifelines on kernel sockets: client and server, unless the lab tells a story
    /// of more parties there too (the IMAP lab's laptop, server and phone).
    fn host_lifelines(&self) -> Vec<&'static str> {
        vec!["client", "server"]
    }

    /// For labs whose client speaks datagrams on the host wire (ping's ICMP socket, DNS over
    /// UDP), or talks to many ports (portscan): the whole exchange with `target` (`--connect`),
    /// else with the embedded server or the kernel on loopback. Each message waits at `gate`
    /// before it is sent.
    fn host_datagrams(&self, _target: Option<&str>, _sink: StepSink, _gate: Arc<Gate>) -> Option<LabFuture> {
        None
    }

    /// For labs whose client runs on a real interface (DHCP): `protolab run LAB --wire host
    /// --interface IF`.
    fn run_interface(&self, _interface: &str, _sink: StepSink) -> Option<LabFuture> {
        None
    }
}

/// What a lab of packets says when asked for a stream (`serve ping`).
fn no_stream(lab: &'static str) -> LabFuture {
    Box::pin(async move {
        color_eyre::eyre::bail!(crate::locale::en(
            "the {lab} lab speaks in packets: it has no stream to serve or to talk over",
            &[("lab", &lab)]
        ))
    })
}

/// A lab's narration assets, `assets/narration/{en,ko}/LAB.txt`, as [`Lab::narration`]; after
/// the lab, the labs whose messages its story carries too (the IMAP lab's SMTP delivery). Each
/// file stays a file of its own, so one file's header comment never runs into another's last
/// entry.
macro_rules! narration {
    ($lab:literal $(, $also:literal)*) => {
        fn narration(&self, lang: crate::locale::Lang) -> Vec<&'static str> {
            match lang {
                crate::locale::Lang::En => vec![
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/narration/en/", $lab, ".txt")),
                    $(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/narration/en/", $also, ".txt")),)*
                ],
                crate::locale::Lang::Ko => vec![
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/narration/ko/", $lab, ".txt")),
                    $(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/narration/ko/", $also, ".txt")),)*
                ],
            }
        }
    };
}
pub(crate) use narration;

/// Every lab, in tab order.
pub fn registry() -> Vec<Arc<dyn Lab>> {
    // What the SMTP tab delivers, the POP3 tab fetches.
    let mailbox = smtp::Mailbox::default();
    vec![
        Arc::new(dhcp::Dhcp),
        Arc::new(tcp::Tcp),
        Arc::new(ws::WebSocket),
        Arc::new(smtp::configured().with_mailbox(mailbox.clone())),
        Arc::new(ping::Ping),
        Arc::new(traceroute::Traceroute),
        Arc::new(dns::Dns),
        Arc::new(nat::NatLab),
        Arc::new(portscan::PortScan),
        Arc::new(pop3::Pop3::new(mailbox.clone())),
        Arc::new(imap::Imap::new(mailbox)),
        Arc::new(mail::Mail),
    ]
}

/// The lab with this command-line name.
pub fn find(name: &str) -> Option<Arc<dyn Lab>> {
    registry().into_iter().find(|lab| lab.info().name == name)
}

/// The lab with this name telling `tls`'s story (a lesson's): the mail labs have one, with a
/// mailbox of their own; any other lab, or the story in the clear, is the registry's.
pub fn find_telling(name: &str, tls: crate::tls::Mode) -> Option<Arc<dyn Lab>> {
    if tls == crate::tls::Mode::Plain {
        return find(name);
    }
    Some(match name {
        "smtp" => Arc::new(smtp::Smtp::default().with_tls(tls, None)),
        "pop3" => Arc::new(pop3::Pop3::new(smtp::Mailbox::default()).with_tls(tls, None)),
        "imap" => Arc::new(imap::Imap::new(smtp::Mailbox::default()).with_tls(tls, None)),
        _ => return find(name),
    })
}
