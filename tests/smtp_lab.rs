//! The SMTP lab end to end over real loopback sockets: our client, our server, the steps between.

use protolab::labs::Lab;
use protolab::labs::run::{RunOptions, exchange};
use protolab::labs::smtp::Smtp;
use protolab::net::{Gate, GateEvent, Wire};
use protolab::session::{Step, StepSink};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Runs one exchange (with a time limit) and returns its result and steps.
async fn run(smtp: &Arc<Smtp>, connect: Option<String>) -> (color_eyre::Result<()>, Vec<Step>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let lab: Arc<dyn Lab> = smtp.clone();
    let opts = RunOptions { connect, ..RunOptions::free(Wire::Host) };
    let result = tokio::time::timeout(Duration::from_secs(30), exchange(lab, opts, StepSink::new("smtp", tx)))
        .await
        .expect("the exchange finished in time");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    (result, steps)
}

fn kinds(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.kind.as_str()).collect()
}

fn find<'a>(steps: &'a [Step], kind: &str) -> &'a Step {
    steps.iter().find(|s| s.kind == kind).unwrap_or_else(|| panic!("no {kind} step in {:?}", kinds(steps)))
}

#[tokio::test]
async fn one_message_from_greeting_to_fin() {
    let smtp = Arc::new(Smtp::default());
    let (result, steps) = run(&smtp, None).await;
    result.expect("the exchange completed");
    assert_eq!(
        kinds(&steps),
        [
            "socket.connect",
            "smtp.reply.220",
            "smtp.command.EHLO",
            "smtp.reply.250.EHLO",
            "smtp.command.MAIL",
            "smtp.reply.250.MAIL",
            "smtp.command.RCPT",
            "smtp.reply.550.RCPT",
            "smtp.command.RCPT",
            "smtp.reply.250.RCPT",
            "smtp.command.DATA",
            "smtp.reply.354.DATA",
            "smtp.data",
            "smtp.reply.250.text",
            "smtp.command.QUIT",
            "smtp.reply.221.QUIT",
            "socket.close.first",
            "socket.close.second",
        ]
    );
    assert!(steps.iter().all(|s| s.malformed.is_none()), "{steps:#?}");
    let dir = |s: &Step| (s.from.clone(), s.to.clone());
    assert_eq!(dir(&steps[0]), ("client".into(), "server".into()), "the connect comes first");
    let steps = &steps[1..];
    assert_eq!(dir(&steps[0]), ("server".into(), "client".into()));
    assert_eq!(dir(&steps[1]), ("client".into(), "server".into()));
    assert_eq!((steps[15].from.as_str(), steps[16].from.as_str()), ("server", "client"));

    assert_eq!(steps[0].summary, "220 protolab.test ESMTP protolab lab server");
    assert_eq!(steps[0].value("SMTP.reply_code").as_deref(), Some("220"));
    assert_eq!(steps[0].field("SMTP.reply_code").unwrap().value, serde_json::json!(220));

    let ehlo = &steps[1];
    assert_eq!(ehlo.summary, "EHLO client.lab");
    assert_eq!(ehlo.value("SMTP.command").as_deref(), Some("EHLO"));
    assert_eq!(ehlo.value("SMTP.domain").as_deref(), Some("client.lab"));
    let f = ehlo.field("SMTP.domain").unwrap();
    assert_eq!(&ehlo.bytes[f.range[0]..f.range[1]], b"client.lab");

    let ehlo_reply = &steps[2];
    assert!(ehlo_reply.summary.starts_with("250 protolab.test greets client.lab (+5 lines)"), "{}", ehlo_reply.summary);
    let extensions: Vec<String> =
        ehlo_reply.fields.iter().filter(|f| f.path == "SMTP.extension").map(|f| f.display_value()).collect();
    assert_eq!(extensions, ["SIZE 10485760", "8BITMIME", "PIPELINING", "STARTTLS", "HELP"]);

    let mail = &steps[3];
    assert!(mail.summary.starts_with("MAIL FROM:<alice@client.lab>"), "{}", mail.summary);
    assert_eq!(mail.value("SMTP.mail_from").as_deref(), Some("alice@client.lab"));
    // A recipient elsewhere first: refused (no relaying), and the transaction goes on.
    assert_eq!(steps[5].value("SMTP.rcpt_to").as_deref(), Some("carol@elsewhere.invalid"));
    assert_eq!(steps[6].value("SMTP.reply_code").as_deref(), Some("550"));
    assert!(steps[6].summary.contains("relay denied"), "{}", steps[6].summary);
    assert_eq!(steps[7].value("SMTP.rcpt_to").as_deref(), Some("bob@protolab.test"));
    assert_eq!(steps[10].value("SMTP.reply_code").as_deref(), Some("354"));

    let data = &steps[11];
    assert_eq!(data.summary, format!("message text, {} bytes, Subject: Hello from protolab", data.len));
    assert!(data.bytes.ends_with(b"\r\n.\r\n"));
    assert!(data.bytes.windows(4).any(|w| w == b"\n..T"), "the leading dot went out doubled");
    let message_id = data.value("SMTP.header.Message-ID").expect("a Message-ID field");
    assert!(message_id.starts_with('<') && message_id.ends_with("@client.lab>"), "{message_id}");
    assert!(data.value("SMTP.header.Date").unwrap().ends_with(" +0000"));

    let queued = &steps[12];
    assert!(queued.summary.starts_with("250 OK queued as "), "{}", queued.summary);
    assert_eq!(steps[14].summary, "221 protolab.test closing connection");

    // The server's mailbox holds the message, dot-stuffing undone.
    let mail = smtp.mailbox().latest().expect("the message was delivered");
    assert_eq!(mail.reverse_path, "alice@client.lab");
    assert_eq!(mail.forward_paths, ["bob@protolab.test"]);
    assert_eq!(mail.client_domain, "client.lab");
    assert_eq!(mail.header("Message-ID"), Some(message_id));
    assert!(mail.content.starts_with(b"Received: from client.lab ([127.0.0.1])"));
    assert!(mail.content.windows(6).any(|w| w == b"\r\n.Thi"));
    assert!(!mail.content.windows(6).any(|w| w == b"\r\n..Th"));
    assert!(queued.summary.ends_with(&mail.id));
}

#[tokio::test]
async fn in_lockstep_each_press_sends_exactly_one_message() {
    let smtp: Arc<dyn Lab> = Arc::new(Smtp::default());
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let gate = Gate::stepping(events_tx);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = RunOptions { gate: gate.clone(), ..RunOptions::free(Wire::Host) };
    let run = tokio::spawn(exchange(smtp, opts, StepSink::new("smtp", tx)));
    let mut steps = Vec::new();
    let mut presses = 0;
    while let Ok(Some(GateEvent::Waiting { .. })) = tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        // Nothing crosses the wire while the message waits.
        tokio::time::sleep(Duration::from_millis(5)).await;
        while let Ok(step) = rx.try_recv() {
            steps.push(step);
        }
        assert_eq!(steps.len(), presses, "one step per press: {:?}", kinds(&steps));
        assert!(gate.open_one());
        presses += 1;
        // The connect, then seventeen messages.
        if presses == 18 {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(10), run).await.expect("the run ended").unwrap().unwrap();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    assert_eq!((presses, steps.len()), (18, 18), "{:?}", kinds(&steps));
    assert_eq!(steps[0].kind, "socket.connect", "nothing crosses before the first press, not even the SYN");
}

#[tokio::test]
async fn every_run_sends_a_new_message_id() {
    let smtp = Arc::new(Smtp::default());
    let (a, first) = run(&smtp, None).await;
    let (b, second) = run(&smtp, None).await;
    a.unwrap();
    b.unwrap();
    let id = |steps: &[Step]| find(steps, "smtp.data").value("SMTP.header.Message-ID").unwrap();
    assert_ne!(id(&first), id(&second));
    assert_eq!(smtp.mailbox().len(), 2);
    let ids: Vec<_> = smtp.mailbox().messages().iter().map(|m| m.header("Message-ID").unwrap()).collect();
    assert_eq!(ids, [id(&first), id(&second)]);
}

/// A server that wants AUTH before MAIL, as submission servers do.
async fn fake_server_wanting_auth() -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut heard = Vec::new();
        w.write_all(b"220 fake.example ESMTP\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            heard.push(line.clone());
            let reply: &[u8] = match line.split(' ').next().unwrap_or("").to_ascii_uppercase().as_str() {
                "EHLO" => b"250-fake.example\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n",
                "MAIL" => b"530 5.7.0 Authentication required\r\n",
                "QUIT" => b"221 2.0.0 bye\r\n",
                _ => b"503 5.5.1 no\r\n",
            };
            w.write_all(reply).await.unwrap();
            if line.eq_ignore_ascii_case("QUIT") {
                w.shutdown().await.unwrap();
            }
        }
        heard
    });
    (addr, task)
}

#[tokio::test]
async fn a_refusing_real_server_ends_the_run_with_its_reason() {
    let (addr, server) = fake_server_wanting_auth().await;
    let smtp = Arc::new(Smtp::default());
    let (result, steps) = run(&smtp, Some(addr)).await;
    let err = result.expect_err("the server refused MAIL").to_string();
    assert!(err.contains("530") && err.contains("MAIL FROM"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
    let heard = tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
    assert_eq!(heard.len(), 3, "{heard:?}");
    assert_eq!(heard[0], "EHLO client.lab");
    assert!(heard[1].starts_with("MAIL FROM:<alice@client.lab>"));
    assert_eq!(heard[2], "QUIT");
    // With a remote server, what it says is recorded too.
    let k = kinds(&steps);
    assert_eq!(
        &k[..8],
        [
            "socket.connect",
            "smtp.reply.220",
            "smtp.command.EHLO",
            "smtp.reply.250.EHLO",
            "smtp.command.MAIL",
            "smtp.reply.530.MAIL",
            "smtp.command.QUIT",
            "smtp.reply.221.QUIT"
        ]
    );
    assert!(k.contains(&"socket.close.first"));
    // The client did not send SIZE: the server did not advertise it.
    assert_eq!(find(&steps, "smtp.command.MAIL").summary, "MAIL FROM:<alice@client.lab>");
    assert!(smtp.mailbox().is_empty());
}

#[test]
fn narration_covers_the_dialogue() {
    let smtp = Smtp::default();
    let n = protolab::narration::Narration::parse(smtp.narration(protolab::locale::Lang::En)[0]);
    for kind in [
        "smtp.command.EHLO",
        "smtp.command.MAIL",
        "smtp.command.RCPT",
        "smtp.command.DATA",
        "smtp.command.QUIT",
        "smtp.reply.220",
        "smtp.reply.250",
        "smtp.reply.354",
        "smtp.reply.221",
        "smtp.reply.500",
        "smtp.reply.503",
        "smtp.reply.550",
        "smtp.data",
        "smtp",
    ] {
        assert!(n.all_keys().any(|k| k == kind), "no narration for [{kind}]");
    }
    let unknown = protolab::session::Step { kind: "smtp.reply.599".into(), ..Default::default() };
    assert!(n.explain(&unknown, protolab::net::Wire::Host).contains("three-digit"));
}

/// The state a step shows is read from the dialogue; it must be the state the lab's real server
/// is in once it has sent each reply, refusals and commands out of order included.
#[test]
fn the_state_each_reply_shows_is_the_servers() {
    use protolab::labs::smtp::server::Session;
    use protolab::net::{Dir, Recorder};
    let smtp = Smtp::default();
    let mut session = Session::new(Arc::new(Default::default()), Default::default(), "127.0.0.1:9".parse().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rec = Recorder::new(StepSink::new("smtp", tx), ["client", "server"], smtp.decoders(false));
    rec.feed(Dir::ServerToClient, &session.greeting().emit());
    let mut expected = vec![session.state().to_string()];
    let lines = [
        "MAIL FROM:<a@b.c>",
        "EHLO client.lab",
        "DATA",
        "MAIL FROM:<alice@client.lab>",
        "RCPT TO:<x@elsewhere.example>",
        "RCPT TO:<bob@protolab.test>",
        "RSET",
        "MAIL FROM:<alice@client.lab>",
        "RCPT TO:<bob@protolab.test>",
        "DATA",
        "Subject: hi",
        "",
        "body",
        ".",
        "NOOP",
        "QUIT",
    ];
    for line in lines {
        let bytes = format!("{line}\r\n");
        rec.feed(Dir::ClientToServer, bytes.as_bytes());
        if let Some(reply) = session.input(bytes.as_bytes(), std::time::SystemTime::now()) {
            rec.feed(Dir::ServerToClient, &reply.emit());
            expected.push(session.state().to_string());
        }
    }
    drop(rec);
    let mut shown = Vec::new();
    while let Ok(s) = rx.try_recv() {
        if s.kind.starts_with("smtp.reply") {
            assert_eq!(s.state("client"), s.state("server"), "one session state: {s:?}");
            shown.push(s.state("server").unwrap().to_string());
        }
    }
    assert_eq!(shown, expected);
}
