//! The IMAP lab end to end over real sockets: the message the SMTP lab sends is the one FETCH
//! reads, and it stays; Python's imaplib, curl and Dovecot; two clients in sync through IDLE;
//! bad input and silent clients.

use protolab::labs::Lab;
use protolab::labs::imap::Imap;
use protolab::labs::run::{RunOptions, exchange, serve};
use protolab::labs::smtp::mailbox::{ACCOUNTS, flag};
use protolab::labs::smtp::{Mailbox, Smtp};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod dovecot;

const LIMIT: Duration = Duration::from_secs(30);

async fn run(lab: Arc<dyn Lab>, opts: RunOptions) -> (color_eyre::Result<()>, Vec<Step>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let name = lab.info().name;
    let result = tokio::time::timeout(LIMIT, exchange(lab, opts, StepSink::new(name, tx))).await.expect("in time");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    (result, steps)
}

fn imap_kinds(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.kind.as_str()).filter(|k| k.starts_with("imap.")).collect()
}

fn find<'a>(steps: &'a [Step], kind: &str, has: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.kind == kind && s.summary.contains(has))
        .unwrap_or_else(|| panic!("no {kind} with {has:?} in {:?}", imap_kinds(steps)))
}

#[tokio::test]
async fn the_message_smtp_sent_is_read_flagged_filed_and_stays() {
    {
        let wire = Wire::Host;
        let mailbox = Mailbox::default();
        let smtp = Arc::new(Smtp::default().with_mailbox(mailbox.clone()));
        let (result, sent) = run(smtp, RunOptions::free(wire)).await;
        result.expect("SMTP delivered");
        let id = sent.iter().find(|s| s.kind == "smtp.data").unwrap().value("SMTP.header.Message-ID").unwrap();

        let (result, steps) = run(Arc::new(Imap::new(mailbox.clone())), RunOptions::free(wire)).await;
        result.unwrap_or_else(|e| panic!("{wire:?}: {e:#}"));
        let kinds = imap_kinds(&steps);
        for kind in [
            "imap.greeting",
            "imap.command.LOGIN",
            "imap.tagged.OK.LOGIN",
            "imap.untagged.EXISTS",
            "imap.untagged.OK.UIDVALIDITY",
            "imap.tagged.OK.SELECT",
            "imap.command.FETCH",
            "imap.untagged.FETCH",
            "imap.command.STORE",
            "imap.untagged.SEARCH",
            "imap.tagged.OK.CREATE",
            "imap.tagged.OK.COPY",
            "imap.untagged.BYE",
            "imap.tagged.OK.LOGOUT",
        ] {
            assert!(kinds.contains(&kind), "{wire:?}: no {kind} in {kinds:?}");
        }
        assert!(steps.iter().all(|s| s.malformed.is_none()), "{wire:?}");
        let login = find(&steps, "imap.command.LOGIN", "");
        assert_eq!(login.value("IMAP.password").as_deref(), Some("lab"));
        // The header, peeked: the very message SMTP sent.
        let header = find(&steps, "imap.untagged.FETCH", "BODY[HEADER]");
        assert_eq!(header.value("IMAP.header.Message-ID"), Some(id.clone()), "{wire:?}");
        // The partial fetch: 100 octets of the text, which set \Seen.
        let partial = find(&steps, "imap.untagged.FETCH", "BODY[TEXT]<0>");
        assert_eq!(partial.number("IMAP.octets"), Some(100));
        assert_eq!(partial.value("IMAP.flags").as_deref(), Some("(\\Seen)"));
        // The mail stays: in INBOX, seen and flagged, and a copy in Archive; after it, the
        // message the laptop sent while the phone listened, unseen.
        let inbox = mailbox.view("INBOX", ACCOUNTS[0].address).unwrap();
        assert_eq!(inbox.messages.iter().map(|k| k.flags).collect::<Vec<_>>(), [flag::SEEN | flag::FLAGGED, 0]);
        let archive = mailbox.view("Archive", ACCOUNTS[0].address).unwrap();
        let filed = mailbox.get("Archive", archive.messages[0].uid).unwrap();
        assert_eq!(filed.mail.header("Message-ID"), Some(id));
        // A second run finds Archive and does not make it again.
        let (result, steps) = run(Arc::new(Imap::new(mailbox.clone())), RunOptions::free(wire)).await;
        result.unwrap();
        assert!(!imap_kinds(&steps).contains(&"imap.command.CREATE"));
        assert_eq!(mailbox.view("Archive", "").unwrap().messages.len(), 2);
    }
}

/// On the lab network and on kernel sockets: the phone waits in IDLE and hears, without asking,
/// the \\Seen and \\Flagged the laptop sets and the message the laptop then sends over SMTP;
/// three lifelines, three connections.
#[tokio::test]
async fn the_phone_in_idle_hears_the_laptop_and_new_mail_on_both_wires() {
    for wire in [Wire::Sim, Wire::Host] {
        the_phone_hears(wire).await;
    }
}

async fn the_phone_hears(wire: Wire) {
    let mailbox = Mailbox::default();
    let (result, steps) = run(Arc::new(Imap::new(mailbox.clone())), RunOptions::free(wire)).await;
    result.unwrap_or_else(|e| panic!("{wire:?}: the story: {e:#}"));
    let ends: std::collections::BTreeSet<&str> = steps.iter().flat_map(|s| [s.from.as_str(), s.to.as_str()]).collect();
    assert_eq!(ends.into_iter().collect::<Vec<_>>(), ["laptop", "phone", "server"]);
    let conns: std::collections::BTreeSet<&str> = steps.iter().filter_map(|s| s.conn.as_deref()).collect();
    assert_eq!(conns.into_iter().collect::<Vec<_>>(), ["laptop", "phone", "smtp"]);
    let news: Vec<&Step> = steps.iter().filter(|s| s.kind.starts_with("imap.update.")).collect();
    let said: Vec<&str> = news.iter().map(|s| s.summary.as_str()).collect();
    assert!(news.iter().all(|s| s.from == "server" && s.to == "phone"), "{said:?}");
    // Each change as it happened (two that came together may be told as one).
    assert_eq!(said.last(), Some(&"* 2 EXISTS"), "{said:?}");
    assert_eq!(said[said.len() - 2], "* 1 FETCH (UID 1 FLAGS (\\Seen \\Flagged))", "{said:?}");
    // The EXISTS comes after the SMTP server took the message, and before the phone's DONE.
    let at = |kind: &str| steps.iter().position(|s| s.kind == kind).unwrap();
    assert!(at("smtp.data") < at("imap.update.EXISTS") && at("imap.update.EXISTS") < at("imap.done"));
    assert!(steps.iter().all(|s| s.malformed.is_none()));
    // Mail stays: the welcome message (seen, flagged) and the new one, unseen; a copy filed.
    let inbox = mailbox.view("INBOX", ACCOUNTS[0].address).unwrap();
    assert_eq!(inbox.messages.iter().map(|k| k.flags).collect::<Vec<_>>(), [flag::SEEN | flag::FLAGGED, 0]);
    assert_eq!(mailbox.view("Archive", "").unwrap().messages.len(), 1);
}

async fn serve_imap(
    lab: Imap,
    sessions: u32,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<color_eyre::Result<()>>, tokio::sync::mpsc::UnboundedReceiver<Step>)
{
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let lab: Arc<dyn Lab> = Arc::new(lab);
    (addr, tokio::spawn(serve(lab, listener, Some(sessions), StepSink::new("imap", tx))), rx)
}

#[tokio::test]
async fn imaplib_and_curl_against_serve() {
    let mailbox = Mailbox::default();
    let (addr, server, mut rx) = serve_imap(Imap::new(mailbox.clone()), 3).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/imap_read.py");
    let out = tokio::process::Command::new("python3")
        .args([script, &addr.ip().to_string(), &addr.port().to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LIMIT, out).await.expect("imaplib in time").expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "imaplib failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.trim().ends_with(".welcome@protolab.test>"), "{stdout}");
    // curl: the folders, then message 1 by UID.
    for (path, want) in [("", "INBOX"), ("INBOX;UID=1", "Subject: Welcome to your lab mailbox")] {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "-u", "bob:lab", &format!("imap://{addr}/{path}")])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(LIMIT, out).await.expect("curl in time").expect("curl runs");
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {path:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(body.contains(want), "curl {path:?} printed {body:?}");
    }
    tokio::time::timeout(LIMIT, server).await.expect("serve ends").unwrap().unwrap();
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    let bad: Vec<_> = steps.iter().filter(|s| s.malformed.is_some()).map(|s| (&s.summary, &s.malformed)).collect();
    assert!(bad.is_empty(), "{bad:?}");
    let kinds = imap_kinds(&steps);
    for kind in ["imap.tagged.NO.LOGIN", "imap.untagged.EXPUNGE", "imap.tagged.OK.EXPUNGE", "imap.untagged.STATUS"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    // Mail stays on the server: still one message in INBOX, seen and flagged by imaplib.
    let inbox = mailbox.view("INBOX", ACCOUNTS[0].address).unwrap();
    assert_eq!(inbox.messages.len(), 1);
    assert_eq!(inbox.messages[0].flags & (flag::SEEN | flag::FLAGGED), flag::SEEN | flag::FLAGGED);
}

/// Reads until `want` has come (or fails after the time limit); returns all read.
async fn until(s: &mut TcpStream, buf: &mut Vec<u8>, want: &str) -> String {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(at) = String::from_utf8_lossy(buf).find(want) {
            let end = at + want.len();
            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end);
            return text;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no {want:?} in {:?}", String::from_utf8_lossy(buf)))
            .unwrap();
        assert!(n > 0, "closed before {want:?}: {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Two clients of one mailbox: the second waits in IDLE and hears, as they happen, the \Seen
/// the first sets and a message that arrives by a real SMTP exchange.
#[tokio::test]
async fn a_client_in_idle_hears_the_other_client_and_new_mail() {
    let mailbox = Mailbox::default();
    mailbox.welcome(ACCOUNTS[0], std::time::SystemTime::now());
    let (addr, server, _rx) = serve_imap(Imap::new(mailbox.clone()), 2).await;
    let mut phone = TcpStream::connect(addr).await.unwrap();
    let mut laptop = TcpStream::connect(addr).await.unwrap();
    let (mut pb, mut lb) = (Vec::new(), Vec::new());
    for (s, b) in [(&mut phone, &mut pb), (&mut laptop, &mut lb)] {
        until(s, b, "ready").await;
        s.write_all(b"a LOGIN bob lab\r\nb SELECT INBOX\r\n").await.unwrap();
        until(s, b, "b OK").await;
    }
    phone.write_all(b"i IDLE\r\n").await.unwrap();
    until(&mut phone, &mut pb, "+ idling\r\n").await;
    laptop.write_all(b"c FETCH 1 BODY[TEXT]\r\n").await.unwrap();
    until(&mut laptop, &mut lb, "c OK").await;
    assert_eq!(until(&mut phone, &mut pb, "\r\n").await, "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n");
    let smtp = Arc::new(Smtp::default().with_mailbox(mailbox.clone()));
    let (tx, _srx) = tokio::sync::mpsc::unbounded_channel();
    exchange(smtp, RunOptions::free(Wire::Host), StepSink::new("smtp", tx)).await.expect("SMTP delivered");
    assert_eq!(until(&mut phone, &mut pb, "\r\n").await, "* 2 EXISTS\r\n");
    phone.write_all(b"DONE\r\nz LOGOUT\r\n").await.unwrap();
    until(&mut phone, &mut pb, "i OK IDLE terminated\r\n").await;
    until(&mut phone, &mut pb, "z OK").await;
    laptop.write_all(b"z LOGOUT\r\n").await.unwrap();
    until(&mut laptop, &mut lb, "z OK").await;
    tokio::time::timeout(LIMIT, server).await.expect("serve ends").unwrap().unwrap();
}

#[tokio::test]
async fn huge_literals_long_lines_wrong_states_and_silence_leave_serve_running() {
    let mailbox = Mailbox::default();
    let (addr, server, mut rx) = serve_imap(Imap::new(mailbox).with_idle_timeout(Duration::from_millis(500)), 3).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut b = Vec::new();
    until(&mut s, &mut b, "ready (accounts: bob / lab)\r\n").await;
    // A literal of 4 GiB: refused before it is sent (no +), and the connection goes on.
    s.write_all(b"a LOGIN {4294967295}\r\n").await.unwrap();
    let said = until(&mut s, &mut b, "\r\n").await;
    assert_eq!(said, "a BAD a literal of 4294967295 octets, over the 65536 this server takes\r\n");
    let long = format!("b NOOP {}\r\n", "x".repeat(10_000));
    s.write_all(long.as_bytes()).await.unwrap();
    assert_eq!(until(&mut s, &mut b, "\r\n").await, "b BAD command line over 8192 octets\r\n");
    s.write_all(b"c FETCH 1 FLAGS\r\nd FROB\r\n\r\n").await.unwrap();
    assert_eq!(until(&mut s, &mut b, "\r\n").await, "c BAD FETCH only after logging in (LOGIN or AUTHENTICATE)\r\n");
    assert_eq!(until(&mut s, &mut b, "\r\n").await, "d BAD no IMAP command FROB\r\n");
    assert!(until(&mut s, &mut b, "\r\n").await.starts_with("* BAD"));
    // A synchronizing literal within the cap gets its + and works.
    s.write_all(b"e LOGIN {3}\r\n").await.unwrap();
    assert_eq!(until(&mut s, &mut b, "\r\n").await, "+ go ahead\r\n");
    s.write_all(b"bob {3}\r\n").await.unwrap();
    assert_eq!(until(&mut s, &mut b, "\r\n").await, "+ go ahead\r\n");
    s.write_all(b"lab\r\n").await.unwrap();
    assert!(until(&mut s, &mut b, "\r\n").await.starts_with("e OK"));
    // A non-synchronizing literal over the cap is on its way: BYE, and the connection ends.
    s.write_all(b"f LOGIN {100000+}\r\n").await.unwrap();
    assert!(until(&mut s, &mut b, "\r\n").await.starts_with("* BYE"));
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut rest)).await.expect("closed").ok();

    // A client that says nothing is logged out.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut b = Vec::new();
    until(&mut silent, &mut b, "ready (accounts: bob / lab)\r\n").await;
    assert!(until(&mut silent, &mut b, "\r\n").await.contains("* BYE autologout"));

    // And the server still serves.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut b = Vec::new();
    until(&mut s, &mut b, "ready").await;
    s.write_all(b"a LOGOUT\r\n").await.unwrap();
    until(&mut s, &mut b, "a OK").await;
    tokio::time::timeout(LIMIT, server).await.expect("serve ends").unwrap().unwrap();
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    let bad: Vec<_> = steps.iter().filter_map(|s| s.malformed.as_deref()).collect();
    assert!(bad.iter().any(|r| r.contains("4294967295")), "{bad:?}");
}

/// Our client against Dovecot (tests/dovecot): it only looks (EXAMINE), so nothing changes.
#[tokio::test]
async fn our_client_against_dovecot() {
    let message = "From: Alice <alice@a.lab>\r\nTo: bob@b.lab\r\nSubject: from dovecot\r\nMessage-ID: <dv2@a.lab>\r\n\r\n\
                   the text, long enough to be cut at 100 octets by a partial fetch: 0123456789 0123456789 0123456789\r\n";
    let Some(dovecot) = dovecot::Dovecot::start(message).await else { return };
    let opts = RunOptions {
        connect: Some(dovecot.imap.to_string()),
        account: Some(("bob".into(), dovecot::PASSWORD.into())),
        ..RunOptions::free(Wire::Host)
    };
    let (result, steps) = run(Arc::new(Imap::new(Mailbox::default())), opts).await;
    let log = dovecot.log();
    dovecot.stop().await;
    result.unwrap_or_else(|e| panic!("{e:#}\ndovecot's log:\n{log}"));
    let kinds = imap_kinds(&steps);
    for kind in [
        "imap.greeting",
        "imap.tagged.OK.LOGIN",
        "imap.untagged.EXISTS",
        "imap.tagged.OK.EXAMINE",
        "imap.tagged.OK.LOGOUT",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert!(!kinds.contains(&"imap.command.STORE") && !kinds.contains(&"imap.command.COPY"), "{kinds:?}");
    let bad: Vec<_> = steps.iter().filter(|s| s.malformed.is_some()).map(|s| (&s.summary, &s.malformed)).collect();
    assert!(bad.is_empty(), "{bad:?}");
    let header = find(&steps, "imap.untagged.FETCH", "BODY[HEADER]");
    assert_eq!(header.value("IMAP.header.Message-ID").as_deref(), Some("<dv2@a.lab>"));
    assert_eq!(find(&steps, "imap.untagged.FETCH", "BODY[TEXT]<0>").number("IMAP.octets"), Some(100));
}
