//! The POP3 lab end to end over real sockets: the message the SMTP lab sends is the one RETR
//! returns; Python's poplib and curl against `serve pop3`; bad input and silent clients.

use protolab::labs::Lab;
use protolab::labs::pop3::Pop3;
use protolab::labs::run::{RunOptions, exchange, serve};
use protolab::labs::smtp::{Mailbox, Smtp};
use protolab::net::Wire;
use protolab::session::{Step, StepSink};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod dovecot;

const LIMIT: Duration = Duration::from_secs(30);

/// Runs one exchange of `lab` on `wire` and returns its result and steps.
async fn run(lab: Arc<dyn Lab>, wire: Wire) -> (color_eyre::Result<()>, Vec<Step>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let name = lab.info().name;
    let result = tokio::time::timeout(LIMIT, exchange(lab, RunOptions::free(wire), StepSink::new(name, tx)))
        .await
        .expect("the exchange finished in time");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    (result, steps)
}

fn pop3_kinds(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.kind.as_str()).filter(|k| k.starts_with("pop3.")).collect()
}

fn find<'a>(steps: &'a [Step], kind: &str) -> &'a Step {
    steps.iter().find(|s| s.kind == kind).unwrap_or_else(|| panic!("no {kind} in {:?}", pop3_kinds(steps)))
}

#[tokio::test]
async fn the_message_smtp_sent_is_the_one_retr_returns_and_quit_deletes_it() {
    for wire in [Wire::Host, Wire::Sim] {
        let mailbox = Mailbox::default();
        let smtp = Arc::new(Smtp::default().with_mailbox(mailbox.clone()));
        let pop3 = Arc::new(Pop3::new(mailbox.clone()));
        // An earlier message, so the one SMTP sends is the newest of two.
        mailbox.welcome(protolab::labs::smtp::mailbox::ACCOUNTS[0], std::time::SystemTime::now());
        let (result, sent) = run(smtp, wire).await;
        result.expect("SMTP delivered");
        let id = find(&sent, "smtp.data").value("SMTP.header.Message-ID").expect("the sent Message-ID");
        assert_eq!(mailbox.len(), 2);

        let (result, steps) = run(pop3, wire).await;
        result.unwrap_or_else(|e| panic!("{wire:?}: {e:#}"));
        assert_eq!(
            pop3_kinds(&steps),
            [
                "pop3.greeting",
                "pop3.command.CAPA",
                "pop3.ok.CAPA",
                "pop3.command.USER",
                "pop3.ok.USER",
                "pop3.command.PASS",
                "pop3.err.PASS",
                "pop3.command.USER",
                "pop3.ok.USER",
                "pop3.command.PASS",
                "pop3.ok.PASS",
                "pop3.command.STAT",
                "pop3.ok.STAT",
                "pop3.command.LIST",
                "pop3.ok.LIST",
                "pop3.command.UIDL",
                "pop3.ok.UIDL",
                "pop3.command.TOP",
                "pop3.ok.TOP",
                "pop3.command.RETR",
                "pop3.ok.RETR",
                "pop3.command.DELE",
                "pop3.ok.DELE",
                "pop3.command.QUIT",
                "pop3.ok.QUIT.update",
            ],
            "{wire:?}"
        );
        // The very message: same Message-ID, fetched as message 2 of 2.
        let retr = find(&steps, "pop3.ok.RETR");
        assert_eq!(retr.value("POP3.header.Message-ID"), Some(id.clone()), "{wire:?}");
        assert_eq!(find(&steps, "pop3.command.RETR").number("POP3.message"), Some(2));
        assert_eq!(find(&steps, "pop3.ok.STAT").value("POP3.text").unwrap().split(' ').next(), Some("2"));
        assert!(retr.notes.iter().any(|n| n.contains("dot-stuffing")), "{:?}", retr.notes);
        let wrong = find(&steps, "pop3.err.PASS");
        assert!(wrong.value("POP3.text").unwrap().starts_with("[AUTH]"));
        assert_eq!(wrong.value("POP3.state").as_deref(), Some("AUTHORIZATION"));
        assert_eq!(find(&steps, "pop3.ok.PASS").value("POP3.state").as_deref(), Some("TRANSACTION"));
        assert_eq!(find(&steps, "pop3.ok.QUIT.update").value("POP3.state").as_deref(), Some("UPDATE"));
        let pass = steps.iter().rfind(|s| s.kind == "pop3.command.PASS").unwrap();
        assert_eq!(pass.value("POP3.password").as_deref(), Some("lab"));
        // Deleted at UPDATE: the welcome message is left, the sent one is gone.
        let left = mailbox.messages();
        assert_eq!(left.len(), 1, "{wire:?}");
        assert_ne!(left[0].header("Message-ID"), Some(id));
    }
}

#[tokio::test]
async fn an_empty_mailbox_gets_a_welcome_message() {
    let mailbox = Mailbox::default();
    let (result, steps) = run(Arc::new(Pop3::new(mailbox.clone())), Wire::Host).await;
    result.expect("the exchange completed");
    let retr = find(&steps, "pop3.ok.RETR");
    assert_eq!(retr.value("POP3.header.Subject").as_deref(), Some("Welcome to your lab mailbox"));
    assert!(mailbox.is_empty(), "fetched and deleted");
}

/// Starts `serve pop3` for `sessions` sessions; its address, its task and its steps.
async fn serve_pop3(
    pop3: Pop3,
    sessions: u32,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<color_eyre::Result<()>>, tokio::sync::mpsc::UnboundedReceiver<Step>)
{
    let listener = Wire::Host.listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let lab: Arc<dyn Lab> = Arc::new(pop3);
    (addr, tokio::spawn(serve(lab, listener, Some(sessions), StepSink::new("pop3", tx))), rx)
}

#[tokio::test]
async fn poplib_and_curl_against_serve() {
    let mailbox = Mailbox::default();
    let (addr, server, mut rx) = serve_pop3(Pop3::new(mailbox.clone()), 3).await;

    // Session 1: Python's poplib reads and deletes the welcome message.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/pop3_fetch.py");
    let out = tokio::process::Command::new("python3")
        .args([script, &addr.ip().to_string(), &addr.port().to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LIMIT, out).await.expect("poplib finished in time").expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "poplib failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.trim().ends_with(".welcome@protolab.test>"), "{stdout}");
    assert!(mailbox.is_empty(), "poplib's DELE took effect at QUIT");

    // Sessions 2 and 3: curl lists the maildrop (a new welcome message), then retrieves it.
    let url = format!("pop3://{addr}/");
    for (path, want) in [("", "1 "), ("1", "Subject: Welcome to your lab mailbox")] {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "-u", "bob:lab", &format!("{url}{path}")])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(LIMIT, out).await.expect("curl finished in time").expect("curl runs");
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {path:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(body.contains(want), "curl {path:?} printed {body:?}");
    }
    tokio::time::timeout(LIMIT, server).await.expect("serve ends after three sessions").unwrap().unwrap();
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    // Every command of every client was decoded, none malformed.
    assert!(
        steps.iter().all(|s| s.malformed.is_none()),
        "{:?}",
        steps.iter().filter_map(|s| s.malformed.as_ref()).collect::<Vec<_>>()
    );
    let kinds = pop3_kinds(&steps);
    for kind in ["pop3.command.CAPA", "pop3.err.PASS", "pop3.ok.TOP", "pop3.ok.RETR", "pop3.ok.QUIT.update"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert_eq!(mailbox.len(), 1, "curl only read");
}

/// Reads one line (status line) off a raw socket.
async fn line(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 2);
            return line;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(LIMIT, s.read(&mut chunk)).await.expect("an answer in time").unwrap();
        assert!(n > 0, "the server closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn bad_lines_wrong_states_and_a_silent_client_leave_serve_running() {
    let mailbox = Mailbox::default();
    let pop3 = Pop3::new(mailbox.clone()).with_idle_timeout(Duration::from_millis(500));
    let (addr, server, mut rx) = serve_pop3(pop3, 3).await;

    // Session 1: a client that connects and says nothing is logged out, without a word.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    assert!(line(&mut silent, &mut buf).await.starts_with("+OK"));
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, silent.read_to_end(&mut rest)).await.expect("closed on idle").unwrap();
    assert!(rest.is_empty(), "RFC 1939 §3: no response at autologout: {rest:?}");

    // Session 2: over-long lines, unknown commands, commands in the wrong state; then it goes on.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    assert!(line(&mut s, &mut buf).await.starts_with("+OK"));
    let mut say = async |bytes: &[u8]| {
        s.write_all(bytes).await.unwrap();
        line(&mut s, &mut buf).await
    };
    let long = format!("USER {}\r\n", "b".repeat(5000));
    assert_eq!(say(long.as_bytes()).await, "-ERR command line of 5007 octets, over POP3's 255 (RFC 2449)");
    assert_eq!(say(b"RETR 1\r\n").await, "-ERR RETR only after logging in (USER, then PASS)");
    assert_eq!(say(b"PASS lab\r\n").await, "-ERR PASS goes after USER");
    assert_eq!(say(b"HELO x\r\n").await, "-ERR no POP3 command HELO");
    assert_eq!(say(b"STAT\n").await, "-ERR a command line ends with CR LF, not a bare LF");
    assert!(say(b"USER bob\r\n").await.starts_with("+OK"));
    assert!(say(b"PASS lab\r\n").await.starts_with("+OK"));
    assert_eq!(say(b"RETR 99\r\n").await, "-ERR no message 99 (the maildrop has 1)");
    assert_eq!(say(b"USER bob\r\n").await, "-ERR already logged in");
    assert!(say(b"DELE 1\r\n").await.starts_with("+OK"));
    // The connection breaks before QUIT: nothing is deleted.
    drop(s);

    // Session 3: the server still answers, and the message is still there.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    assert!(line(&mut s, &mut buf).await.starts_with("+OK"));
    s.write_all(b"USER bob\r\nPASS lab\r\nSTAT\r\nQUIT\r\n").await.unwrap();
    for _ in 0..2 {
        line(&mut s, &mut buf).await;
    }
    assert!(line(&mut s, &mut buf).await.starts_with("+OK 1 "), "one message, still there");
    assert_eq!(line(&mut s, &mut buf).await, "+OK 0 messages deleted, 1 left: signing off");
    drop(s);

    tokio::time::timeout(LIMIT, server).await.expect("serve ends after three sessions").unwrap().unwrap();
    assert_eq!(mailbox.len(), 1);
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    let bad: Vec<_> = steps.iter().filter_map(|s| s.malformed.as_deref()).collect();
    assert!(bad.iter().any(|r| r.contains("over POP3's 255")), "{bad:?}");
    assert!(bad.contains(&"no POP3 command HELO"), "{bad:?}");
}

/// Our client against a real server: Dovecot, started by the test (tests/dovecot). The message
/// has a line that starts with a dot; DELE is taken back with RSET, so it is still there after.
#[tokio::test]
async fn our_client_against_dovecot() {
    let message = "From: alice@a.lab\r\nTo: bob@b.lab\r\nSubject: from dovecot\r\nMessage-ID: <dv1@a.lab>\r\n\r\n\
                   .a line that starts with a dot\r\nbye\r\n";
    let Some(dovecot) = dovecot::Dovecot::start(message).await else { return };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = RunOptions {
        connect: Some(dovecot.pop3.to_string()),
        account: Some(("bob".into(), dovecot::PASSWORD.into())),
        ..RunOptions::free(Wire::Host)
    };
    let lab: Arc<dyn Lab> = Arc::new(Pop3::new(Mailbox::default()));
    let result = tokio::time::timeout(LIMIT, exchange(lab, opts, StepSink::new("pop3", tx))).await.expect("in time");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    let (log, left) = (dovecot.log(), dovecot.messages());
    dovecot.stop().await;
    result.unwrap_or_else(|e| panic!("{e:#}\ndovecot's log:\n{log}"));

    let kinds = pop3_kinds(&steps);
    assert!(!kinds.contains(&"pop3.err.PASS"), "no wrong password against a real server: {kinds:?}");
    for kind in
        ["pop3.ok.CAPA", "pop3.ok.PASS", "pop3.ok.UIDL", "pop3.ok.TOP", "pop3.ok.RSET", "pop3.ok.QUIT.update.kept"]
    {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let retr = find(&steps, "pop3.ok.RETR");
    assert_eq!(retr.value("POP3.header.Message-ID").as_deref(), Some("<dv1@a.lab>"));
    assert!(retr.notes.iter().any(|n| n.contains("dot-stuffing")), "{:?}", retr.notes);
    assert!(steps.iter().all(|s| s.malformed.is_none()));
    // RSET took the mark back: the message is still in the maildrop.
    assert_eq!(left, 1, "dovecot's log:\n{log}");
}

/// A server that offers APOP (a timestamp in its greeting): the client logs in with the digest,
/// a wrong one first; the password itself never crosses the wire.
#[tokio::test]
async fn with_apop_offered_the_password_never_crosses() {
    let pop3 = Arc::new(Pop3::new(Mailbox::default()).with_apop());
    let (result, steps) = run(pop3, Wire::Host).await;
    result.expect("the APOP session");
    let kinds = pop3_kinds(&steps);
    let apop: Vec<&str> = kinds.iter().copied().filter(|k| k.contains("APOP")).collect();
    assert_eq!(apop, ["pop3.command.APOP", "pop3.err.APOP", "pop3.command.APOP", "pop3.ok.APOP"], "{kinds:?}");
    assert!(!kinds.iter().any(|k| k.contains("PASS") || k.contains("USER")), "{kinds:?}");
    let greeting = find(&steps, "pop3.greeting");
    let text = String::from_utf8_lossy(&greeting.bytes).into_owned();
    let stamp = &text[text.find('<').unwrap()..=text.rfind('>').unwrap()];
    let ok = steps.iter().filter(|s| s.kind == "pop3.command.APOP").nth(1).unwrap();
    let digest = protolab::labs::pop3::server::apop_digest(stamp, "lab");
    assert_eq!(ok.value("POP3.digest").as_deref(), Some(digest.as_str()));
    assert!(!steps.iter().any(|s| String::from_utf8_lossy(&s.bytes).contains(" lab\r\n")), "no password on the wire");
}
