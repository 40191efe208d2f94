//! The journey of one message from alice@a.lab to bob@b.lab, and a forgery that does not get
//! through, on one lab network (192.0.2.0/24):
//!
//! 1. alice's MUA submits to `mail.a.lab` on 587 (the MSA): STARTTLS, AUTH PLAIN, the message;
//! 2. `mail.a.lab`, now the MTA, signs it with DKIM (a.lab's key, fresh each run, its public
//!    half in a.lab's zone), asks `dns` for b.lab's MX and the exchanger's address, and relays
//!    it on 25 to `mail.b.lab`;
//! 3. `mail.b.lab` (MTA) asks `dns` what SPF, DKIM and DMARC need, checks (mail-auth), adds
//!    `Authentication-Results:` and, as the MDA, stores it in bob's INBOX;
//! 4. bob's MUA reads it by IMAP (143);
//! 5. `mallory`, at an address a.lab does not list, sends `From: alice@a.lab` straight to
//!    `mail.b.lab`: SPF fails, there is no DKIM signature, and a.lab's DMARC policy says
//!    `p=reject`: `550 5.7.1`, and bob's INBOX still holds one message.
//!
//! Every byte is real: each connection is tapped at both ends, each DNS query is a datagram on
//! the lab network, the TLS records are opened with our endpoints' secrets.

use super::auth::{self, DkimKey, Lookup, Verdict};
use crate::labs::dns::resolver::SimResolver;
use crate::labs::dns::zone::{self, MAIL_A_IP, MAIL_B_IP};
use crate::labs::smtp::client::{self as smtp_client, Envelope, Letter, Options, Refused};
use crate::labs::smtp::mailbox::ACCOUNTS;
use crate::labs::smtp::server::{Checks, Config, Judgement};
use crate::labs::smtp::wire::{Reply, ReplyCode};
use crate::labs::smtp::{Mailbox, decoder as smtp_decoder, server as smtp_server};
use crate::locale::en;
use crate::net::sim::{HostSpec, SimNet, Topology};
use crate::wire::dns::{Rdata, rtype};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The hosts, in the order of the ladder.
pub const ALICE: usize = 0;
pub const MAIL_A: usize = 1;
pub const DNS: usize = 2;
pub const MAIL_B: usize = 3;
pub const BOB: usize = 4;
pub const MALLORY: usize = 5;

pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
pub const MALLORY_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// The DKIM selector a.lab signs with: its key is at `lab._domainkey.a.lab`.
pub const SELECTOR: &str = "lab";
/// The envelope and the addresses of the story.
pub const ALICE_ADDRESS: &str = "alice@a.lab";
pub const BOB_ADDRESS: &str = "bob@b.lab";

/// How long a server waits for a client that says nothing.
const IDLE: Duration = Duration::from_secs(60);

/// How bob's MUA reads his mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reader {
    /// IMAP (143): the message stays on the server, read.
    #[default]
    Imap,
    /// POP3 (110): download and delete.
    Pop3,
}

/// The lab network: the five parties of the picture and mallory, on one switched LAN (the
/// internet, as far as this story is concerned).
pub fn network() -> Topology {
    let host = |name, role, ip| HostSpec { name, role, ip: Some(ip), prefix: 24, gateway: None };
    Topology {
        hosts: vec![
            host("alice", Some("MUA"), Ipv4Addr::new(192, 0, 2, 11)),
            host("mail.a.lab", Some("MSA, MTA"), MAIL_A_IP),
            host("dns", None, DNS_IP),
            host("mail.b.lab", Some("MTA, MDA"), MAIL_B_IP),
            host("bob", Some("MUA"), Ipv4Addr::new(192, 0, 2, 12)),
            host("mallory", None, MALLORY_IP),
        ],
        routers: Vec::new(),
        cables: vec![(0..6).map(crate::net::sim::End::Host).collect()],
    }
}

/// DNS as a mail server asks it: its resolver (`dns`), over the lab network.
struct Asking {
    resolver: SimResolver,
}

impl Asking {
    fn new(net: &SimNet, host: usize) -> Result<Self> {
        Ok(Asking { resolver: SimResolver::new(net, host)? })
    }

    async fn records(&mut self, name: &str, qtype: u16) -> Result<Vec<Rdata>> {
        let name = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
        let reply = self.resolver.ask(DNS_IP, &name, qtype, true).await?;
        Ok(reply.answers.into_iter().filter(|r| r.rtype == qtype).map(|r| r.data).collect())
    }
}

impl Lookup for Asking {
    async fn txt(&mut self, name: &str) -> Result<Vec<String>> {
        let records = self.records(name, rtype::TXT).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                // A TXT record's strings are one text (RFC 7208 §3.3).
                Rdata::Txt(strings) => Some(String::from_utf8_lossy(&strings.concat()).into_owned()),
                _ => None,
            })
            .collect())
    }

    async fn mx(&mut self, name: &str) -> Result<Vec<(u16, String)>> {
        let records = self.records(name, rtype::MX).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                Rdata::Mx(preference, host) => Some((preference, host.trim_end_matches('.').to_string())),
                _ => None,
            })
            .collect())
    }

    async fn a(&mut self, name: &str) -> Result<Vec<Ipv4Addr>> {
        let records = self.records(name, rtype::A).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                Rdata::A(ip) => Some(ip),
                _ => None,
            })
            .collect())
    }
}

/// mail.b.lab's checks on each message it is handed: the lookups over the lab network, then
/// SPF, DKIM and DMARC; a DMARC failure under `p=reject` is refused with 550 5.7.1.
fn checks(net: SimNet, verdicts: tokio::sync::mpsc::Sender<Verdict>) -> Checks {
    Arc::new(move |finished| {
        let (net, verdicts) = (net.clone(), verdicts.clone());
        Box::pin(async move {
            net.set_state(MAIL_B, en("MTA: checks SPF, DKIM and DMARC", &[]));
            let SocketAddr::V4(peer) = finished.peer else {
                return Judgement::Refuse(Reply::new(ReplyCode::TRANSACTION_FAILED, "5.7.1 IPv4 only here"));
            };
            let checked = async {
                let mut asking = Asking::new(&net, MAIL_B)?;
                auth::check(
                    &mut asking,
                    "mail.b.lab",
                    *peer.ip(),
                    &finished.client_domain,
                    &finished.reverse_path,
                    &finished.text,
                )
                .await
            };
            let verdict = match checked.await {
                Ok(verdict) => verdict,
                Err(e) => {
                    // The lookups failed: a temporary failure, the sender tries again later.
                    net.set_state(MAIL_B, en("the checks failed: {error}", &[("error", &e)]));
                    return Judgement::Refuse(Reply::new(
                        ReplyCode::LOCAL_ERROR,
                        "4.7.0 cannot check the sender now, try again later",
                    ));
                }
            };
            let summary = verdict.summary();
            let judgement = if verdict.rejects() {
                net.set_state(
                    MAIL_B,
                    en(
                        "refuses: {summary}, {domain} asks p=reject",
                        &[("summary", &summary), ("domain", &verdict.from_domain)],
                    ),
                );
                Judgement::Refuse(Reply::new(
                    ReplyCode::MAILBOX_UNAVAILABLE,
                    format!("5.7.1 rejected: DMARC policy of {} (p=reject): {summary}", verdict.from_domain),
                ))
            } else {
                net.set_state(MAIL_B, en("MDA: stores it in bob's INBOX ({summary})", &[("summary", &summary)]));
                Judgement::Accept { header: verdict.header.clone() }
            };
            let _ = verdicts.try_send(verdict);
            judgement
        })
    })
}

/// A letter "from alice" to bob, with `subject` and `body`, a fresh Message-ID in a.lab.
fn from_alice(now: SystemTime, subject: &str, body: &[&str]) -> Vec<u8> {
    let mut letter = Letter::new(now);
    letter.from = format!("Alice <{ALICE_ADDRESS}>");
    letter.to = format!("Bob <{BOB_ADDRESS}>");
    letter.subject = subject.into();
    letter.message_id = format!("<{:016x}@a.lab>", rand::random::<u64>());
    letter.body = body.iter().map(|line| line.to_string()).collect();
    letter.text()
}

/// alice's letter to bob.
fn letter(now: SystemTime) -> Vec<u8> {
    let body = [
        "Hi Bob,",
        "",
        "this message went from my client to mail.a.lab, which signed it and asked",
        "DNS where b.lab takes mail, then to mail.b.lab, which checked it came from me.",
        "",
        "Alice",
    ];
    from_alice(now, "Across two domains", &body)
}

/// mallory's forgery: alice's name in From:, sent from mallory's own host.
fn forgery(now: SystemTime) -> Vec<u8> {
    let body = ["Hi Bob,", "", "please pay the invoice to the new account.", "", "Alice"];
    from_alice(now, "Urgent: new bank details", &body)
}

/// The story; `Ok` once bob read alice's message and mail.b.lab refused mallory's.
pub async fn run(net: SimNet, reader: Reader) -> Result<()> {
    let key = DkimKey::generate()?;
    let mut a_lab = zone::a_lab();
    a_lab.records.push(zone::txt(&format!("{SELECTOR}._domainkey.a.lab."), &key.record()));
    let zones = vec![zone::root(), zone::lab(), a_lab, zone::b_lab()];

    // dns: answers for every lab zone, over UDP and (for long answers) TCP.
    net.set_state(DNS, en("answers for the lab zones: a.lab, b.lab", &[]));
    let mut tasks = tokio::task::JoinSet::new();
    let _dns = crate::labs::dns::serve_on(&net, DNS, zones, &mut tasks)?;

    // mail.a.lab: submission (587) for a.lab's users; its MTA relays what they send.
    let outbox = Mailbox::default();
    let msa = Arc::new(Config {
        hostname: "mail.a.lab".into(),
        local_domain: "a.lab".into(),
        idle_timeout: IDLE,
        starttls: true,
        submission: true,
        relay: true,
        ..Config::default()
    });
    // mail.b.lab: the MTA on 25 for b.lab, which checks, and the IMAP (or POP3) server on
    // bob's INBOX.
    let inbox = Mailbox::for_domain("b.lab");
    let mx = Arc::new(Config {
        hostname: "mail.b.lab".into(),
        local_domain: "b.lab".into(),
        idle_timeout: IDLE,
        starttls: false,
        ..Config::default()
    });
    let (verdicts_tx, mut verdicts) = tokio::sync::mpsc::channel(4);
    let checks = checks(net.clone(), verdicts_tx);
    let submission = net.listen_on(MAIL_A, 587)?;
    let smtp_in = net.listen_on(MAIL_B, 25)?;
    let mailbox_port = net.listen_on(MAIL_B, if reader == Reader::Imap { 143 } else { 110 })?;
    net.set_state(MAIL_A, en("MSA on 587, MTA", &[]));
    net.set_state(
        MAIL_B,
        match reader {
            Reader::Imap => en("MTA on 25, MDA, IMAP on 143", &[]),
            Reader::Pop3 => en("MTA on 25, MDA, POP3 on 110", &[]),
        },
    );

    // 1. alice's MUA submits.
    net.set_state(ALICE, en("MUA: submits to mail.a.lab:587", &[]));
    let (io, server_io, peer) =
        net.tapped(ALICE, &submission, "submission", ["alice", "mail.a.lab"], smtp_decoder::decoders(false)).await?;
    let served = tokio::spawn(smtp_server::serve(server_io, peer, msa, outbox.clone()));
    let tls = crate::tls::ClientTls {
        mode: crate::tls::Mode::StartTls,
        cafile: None,
        ours: false,
        target: format!("mail.a.lab:{}", 587),
    };
    let account = ACCOUNTS.iter().find(|a| a.user == "alice").expect("alice's account");
    let envelope = Envelope {
        helo: "alice.a.lab".into(),
        sender: ALICE_ADDRESS.into(),
        recipient: BOB_ADDRESS.into(),
        text: letter(SystemTime::now()),
        probes: false,
    };
    let options = Options { tls, account: Some((account.user.into(), account.password.into())) };
    smtp_client::send(io, options, envelope).await.wrap_err(en("alice's submission", &[]))?;
    joined(served).await?;
    net.set_state(ALICE, en("MUA: sent", &[]));

    // 2. mail.a.lab's MTA: sign, look up b.lab's exchanger, relay.
    let queued = outbox.latest().ok_or_else(|| eyre!(en("mail.a.lab queued nothing", &[])))?;
    net.set_state(MAIL_A, en("MTA: signs with DKIM (d=a.lab s={selector})", &[("selector", &SELECTOR)]));
    let signature = key.sign("a.lab", SELECTOR, &queued.content)?;
    let mut signed = signature.into_bytes();
    signed.extend_from_slice(&queued.content);
    let domain = BOB_ADDRESS.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    net.set_state(MAIL_A, en("MTA: where does {domain} take mail?", &[("domain", &domain)]));
    let mut asking = Asking::new(&net, MAIL_A)?;
    let mut exchangers = asking.mx(domain).await?;
    exchangers.sort();
    let Some((_, exchanger)) = exchangers.first().cloned() else {
        bail!(en("{domain} has no MX record", &[("domain", &domain)]))
    };
    let Some(address) = asking.a(&exchanger).await?.first().copied() else {
        bail!(en("{host} has no address", &[("host", &exchanger)]))
    };
    drop(asking);
    if address != MAIL_B_IP {
        bail!(en(
            "{host} is at {address}, not at mail.b.lab's {expected}",
            &[("host", &exchanger), ("address", &address), ("expected", &MAIL_B_IP)]
        ));
    }
    net.set_state(
        MAIL_A,
        en("MTA: relays to {host} ({address}) on 25", &[("host", &exchanger), ("address", &address)]),
    );
    let (io, server_io, peer) =
        net.tapped(MAIL_A, &smtp_in, "relay", ["mail.a.lab", "mail.b.lab"], smtp_decoder::decoders(false)).await?;
    let served =
        tokio::spawn(smtp_server::serve_checked(server_io, peer, mx.clone(), inbox.clone(), Some(checks.clone())));
    let envelope = Envelope {
        helo: "mail.a.lab".into(),
        sender: queued.reverse_path.clone(),
        recipient: BOB_ADDRESS.into(),
        text: signed,
        probes: false,
    };
    smtp_client::send(io, Options::default(), envelope).await.wrap_err(en("mail.a.lab's relay", &[]))?;
    joined(served).await?;
    let verdict = verdicts.recv().await.ok_or_else(|| eyre!(en("mail.b.lab checked nothing", &[])))?;
    if verdict.rejects() {
        bail!(en("mail.b.lab refused alice's message: {summary}", &[("summary", &verdict.summary())]));
    }
    net.set_state(MAIL_A, en("MTA: relayed", &[]));

    // 3. bob's MUA reads it.
    match reader {
        Reader::Imap => read_by_imap(&net, &mailbox_port, &inbox).await?,
        Reader::Pop3 => read_by_pop3(&net, &mailbox_port, &inbox).await?,
    }
    net.set_state(BOB, en("MUA: read alice's message", &[]));
    let kept = inbox.len();

    // 4. mallory forges alice's address, straight to mail.b.lab.
    net.set_state(MALLORY, en("sends From: alice@a.lab from an address a.lab does not list", &[]));
    let (io, server_io, peer) =
        net.tapped(MALLORY, &smtp_in, "forged", ["mallory", "mail.b.lab"], smtp_decoder::decoders(false)).await?;
    let served = tokio::spawn(smtp_server::serve_checked(server_io, peer, mx, inbox.clone(), Some(checks)));
    let envelope = Envelope {
        helo: "mallory.example".into(),
        sender: ALICE_ADDRESS.into(),
        recipient: BOB_ADDRESS.into(),
        text: forgery(SystemTime::now()),
        probes: false,
    };
    match smtp_client::send(io, Options::default(), envelope).await {
        Ok(()) => bail!(en("mail.b.lab took mallory's forgery", &[])),
        Err(e) => match e.downcast_ref::<Refused>() {
            Some(refused) if refused.reply.code == ReplyCode::MAILBOX_UNAVAILABLE => {}
            _ => return Err(e.wrap_err(en("mallory's forgery", &[]))),
        },
    }
    joined(served).await?;
    net.set_state(MALLORY, en("refused: 550 5.7.1", &[]));
    if inbox.len() != kept {
        bail!(en("bob's INBOX holds {n} messages after the forgery", &[("n", &inbox.len())]));
    }

    net.settle().await;
    tasks.abort_all();
    Ok(())
}

/// bob's MUA reads by IMAP: the message stays on the server, now \Seen.
async fn read_by_imap(net: &SimNet, port: &crate::net::sim::SimListener, inbox: &Mailbox) -> Result<()> {
    net.set_state(BOB, en("MUA: reads INBOX by IMAP", &[]));
    let (io, server_io, _) =
        net.tapped(BOB, port, "imap", ["bob", "mail.b.lab"], crate::labs::imap::decoder::decoders(false)).await?;
    let served =
        tokio::spawn(crate::labs::imap::server::serve(server_io, inbox.clone(), IDLE, crate::tls::Mode::Plain));
    let bob = ACCOUNTS[0];
    let mut reader = crate::labs::imap::client::Connection::greeted(io).await?;
    reader.must(&format!("LOGIN {} {}", bob.user, bob.password)).await?;
    let selected = reader.must("SELECT INBOX").await?;
    let exists = selected.number("EXISTS").unwrap_or(0);
    if exists != 1 {
        bail!(en("bob's INBOX holds {n} messages, not alice's one", &[("n", &exists)]));
    }
    reader
        .must("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT AUTHENTICATION-RESULTS DKIM-SIGNATURE)])")
        .await?;
    reader.must("FETCH 1 (FLAGS BODY[TEXT])").await?;
    reader.logout().await?;
    joined(served).await
}

/// bob's MUA reads by POP3: downloads the message, and deletes it from the server.
async fn read_by_pop3(net: &SimNet, port: &crate::net::sim::SimListener, inbox: &Mailbox) -> Result<()> {
    use crate::labs::pop3::client::{Login, Tour, take};
    net.set_state(BOB, en("MUA: downloads by POP3", &[]));
    if inbox.len() != 1 {
        bail!(en("bob's INBOX holds {n} messages, not alice's one", &[("n", &inbox.len())]));
    }
    let (io, server_io, _) =
        net.tapped(BOB, port, "pop3", ["bob", "mail.b.lab"], crate::labs::pop3::decoder::decoders(false)).await?;
    let plain = crate::tls::Mode::Plain;
    let served = tokio::spawn(crate::labs::pop3::server::serve(server_io, inbox.clone(), IDLE, plain, false));
    let tour = Tour { wrong_password: false, delete: true };
    take(io, Login::lab(), crate::tls::ClientTls::default(), tour).await?;
    joined(served).await?;
    if !inbox.is_empty() {
        bail!(en("the message is still on the server after POP3's QUIT", &[]));
    }
    Ok(())
}

/// A server task's end: its own error, or that it failed.
async fn joined(task: tokio::task::JoinHandle<Result<()>>) -> Result<()> {
    task.await.map_err(|e| eyre!(en("server task failed: {error}", &[("error", &e)])))?
}
