//! The mail journey, the course's four-party picture: alice's MUA → `mail.a.lab` (MSA, then
//! MTA) → DNS (b.lab's MX) → `mail.b.lab` (MTA, then MDA) → bob's MUA, with SPF, DKIM and
//! DMARC checked for real, and mallory's forgery refused.
//!
//! - [`auth`]: DKIM signing and the SPF, DKIM and DMARC checks (mail-auth, ring), fed by the
//!   receiving server's own DNS lookups;
//! - [`story`]: the parties on the lab network, and what each does in turn.

pub mod auth;
pub mod story;

use super::{Lab, LabFuture, LabInfo};
use crate::net::Wire;
use crate::net::sim::SimNet;
use std::sync::atomic::{AtomicBool, Ordering};

static INFO: LabInfo = LabInfo {
    name: "mail",
    title: "Mail",
    port: 25,
    rfcs: "RFC 5321, RFC 6409, RFC 3207, RFC 4954, RFC 7208, RFC 6376, RFC 8463, RFC 7489, RFC 8601, RFC 9051, RFC 1939",
    about: "alice@a.lab → mail.a.lab (MSA: STARTTLS, AUTH; MTA: DKIM, DNS MX) → mail.b.lab (MTA: SPF, DKIM, DMARC; MDA) → bob's IMAP (or POP3); mallory's forgery gets 550 5.7.1",
    wires: &[Wire::Sim],
    conn: None,
    network: story::network,
};

/// bob reads by POP3 instead of IMAP (`--pop3`).
static POP3: AtomicBool = AtomicBool::new(false);

/// `--pop3`: bob reads by POP3 (download and delete) instead of IMAP, for the runs from now on.
pub fn set_pop3(on: bool) {
    POP3.store(on, Ordering::Relaxed);
}

/// How bob reads his mail in the runs from now on.
pub fn reader() -> story::Reader {
    if POP3.load(Ordering::Relaxed) { story::Reader::Pop3 } else { story::Reader::Imap }
}

/// The mail lab.
pub struct Mail;

impl Lab for Mail {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("mail", "smtp", "imap", "pop3", "dns", "tls");

    fn packets(&self, net: &SimNet) -> Option<LabFuture> {
        Some(Box::pin(story::run(net.clone(), reader())))
    }
}
