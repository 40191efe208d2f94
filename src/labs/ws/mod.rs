//! WebSocket lab (RFC 6455): the HTTP upgrade with a fresh Sec-WebSocket-Key, an echo of a text
//! and a binary message, ping and pong, and the closing handshake, over real sockets.
//!
//! The server answers the upgrade itself (so a student can read how the accept value is made:
//! [`frame::accept_key`]) and then hands the socket to tungstenite for frames; the client is
//! tokio-tungstenite's. Every frame is decoded again from the raw bytes by [`decoder`].

pub mod decoder;
pub mod frame;

use super::{ClientCtx, Lab, LabFuture, LabInfo};
use crate::locale::{en, term};
use crate::net::Stream;
use crate::wire::Decoder;
use crate::wire::http::{self, Head as HttpHead};
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

static INFO: LabInfo = LabInfo {
    name: "ws",
    title: "WebSocket",
    port: 80,
    rfcs: "RFC 6455",
    wires: &[crate::net::Wire::Host, crate::net::Wire::Sim],
    conn: None,
    about: "the HTTP upgrade, Sec-WebSocket-Accept, text/binary echo, ping/pong, the closing handshake",
    network: crate::net::sim::Topology::pair,
};

/// How long either side waits for the other before giving up.
const IDLE: Duration = Duration::from_secs(300);
/// How long the server waits for the client's FIN after its own.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Largest message the embedded server accepts.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// What the client sends; the server echoes each.
const TEXT: &str = "hello from protolab";
const PING: &[u8] = b"are you there?";
/// 300 bytes: long enough to need the 16-bit length form.
const BINARY_LEN: usize = 300;

pub struct WebSocket;

impl Lab for WebSocket {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("ws");

    fn decoders(&self, _segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        let (c, s) = decoder::WsDecoder::pair();
        (Box::new(c), Box::new(s))
    }

    fn serve(&self, io: Stream, _peer: SocketAddr) -> LabFuture {
        Box::pin(serve(io))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        Box::pin(client(io, ctx.target))
    }

    fn busy(&self) -> Option<Vec<u8>> {
        let body = "too many connections: try again later\n";
        Some(
            format!(
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE))
}

/// Reads the upgrade request's head, line by line, at most [`http::MAX_HEAD`] bytes.
async fn read_head(io: &mut BufReader<Stream>) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        // At most what a head may hold: a line without end cannot fill memory.
        let room = (http::MAX_HEAD + 1).saturating_sub(head.len()) as u64;
        let mut limited = (&mut *io).take(room);
        let n = crate::net::timeout(IDLE, limited.read_until(b'\n', &mut head))
            .await
            .map_err(|_| eyre!(term("client idle")))??;
        if head.len() > http::MAX_HEAD {
            return Ok(head);
        }
        if n == 0 {
            bail!(term("the client closed the connection before its request ended"));
        }
        match HttpHead::parse(&head) {
            Err(http::Error::Incomplete) => continue,
            _ => return Ok(head),
        }
    }
}

/// Checks an upgrade request (RFC 6455 §4.2.1); the key, or why the request is refused.
fn check_upgrade(head: &HttpHead) -> std::result::Result<String, String> {
    let [(method, _), _, (version, _)] = &head.start;
    if *method != "GET" || *version != "HTTP/1.1" {
        return Err(en(
            "expected GET ... HTTP/1.1, got {method} ... {version}",
            &[("method", method), ("version", version)],
        ));
    }
    if !head.header("Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Err(term("missing `Upgrade: websocket`").into());
    }
    if !head.header("Connection").is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))) {
        return Err(term("missing `Connection: Upgrade`").into());
    }
    if head.header("Sec-WebSocket-Version") != Some("13") {
        return Err(term("Sec-WebSocket-Version must be 13").into());
    }
    let key = head.header("Sec-WebSocket-Key").ok_or(term("missing Sec-WebSocket-Key"))?;
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(key.to_string()),
        _ => Err(term("Sec-WebSocket-Key must be 16 bytes in base64").into()),
    }
}

/// The embedded server: answers the upgrade, echoes text and binary, answers pings, and
/// closes when the client asks; a frame that breaks the rules gets close 1002.
async fn serve(io: Stream) -> Result<()> {
    let mut io = BufReader::new(io);
    let raw = read_head(&mut io).await?;
    let checked = match HttpHead::parse(&raw) {
        Ok(head) => check_upgrade(&head),
        Err(http::Error::Invalid(reason, _)) => Err(reason),
        Err(http::Error::Incomplete) => Err(term("incomplete request").into()),
    };
    let key = match checked {
        Ok(key) => key,
        Err(reason) => {
            let body = format!("not a WebSocket upgrade: {reason}\n");
            // RFC 6455 §4.4: a refused version names the version(s) this server speaks.
            let version = if reason.contains("Version") { "Sec-WebSocket-Version: 13\r\n" } else { "" };
            let refusal = format!(
                "HTTP/1.1 400 Bad Request\r\n{version}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            io.write_all(refusal.as_bytes()).await?;
            io.shutdown().await?;
            bail!(en("refused the upgrade: {reason}", &[("reason", &reason)]));
        }
    };
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        frame::accept_key(&key)
    );
    io.write_all(answer.as_bytes()).await?;
    io.flush().await?;
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
    loop {
        let next = crate::net::timeout(IDLE, ws.next()).await.map_err(|_| eyre!(term("client idle")))?;
        match next {
            Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => ws.send(msg).await?,
            // tungstenite answers pings itself; flush so the pong goes now.
            Some(Ok(Message::Ping(_))) => ws.flush().await?,
            Some(Ok(_)) => {}
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => break,
            Some(Err(WsError::Protocol(e))) => return protocol_error(ws, 1002, &e.to_string()).await,
            Some(Err(WsError::Utf8(e))) => return protocol_error(ws, 1007, &e.to_string()).await,
            Some(Err(WsError::Capacity(e))) => return protocol_error(ws, 1009, &e.to_string()).await,
            Some(Err(WsError::Io(e))) => return Err(eyre!(en("the client vanished: {error}", &[("error", &e)]))),
            Some(Err(e)) => return Err(e.into()),
        }
    }
    // The server closes the TCP connection first (RFC 6455 §7.1.1), then waits a moment for
    // the client's FIN, so that it is seen too.
    let io = ws.get_mut();
    io.shutdown().await.wrap_err(term("closing the connection"))?;
    let mut rest = [0u8; 256];
    let eof = async { while io.read(&mut rest).await.is_ok_and(|n| n > 0) {} };
    let _ = crate::net::timeout(CLOSE_GRACE, eof).await;
    Ok(())
}

/// Sends a close frame with `code` and closes the connection: the peer broke the protocol.
async fn protocol_error(mut ws: WebSocketStream<BufReader<Stream>>, code: u16, reason: &str) -> Result<()> {
    let mut text = reason.to_string();
    text.truncate(120);
    let close = frame::emit(true, frame::Opcode::Close, None, &[&code.to_be_bytes()[..], text.as_bytes()].concat());
    let io = ws.get_mut();
    io.write_all(&close).await?;
    io.shutdown().await?;
    bail!(en("closed with {code}: {reason}", &[("code", &code), ("reason", &reason)]))
}

/// Waits for the next message from the server, skipping nothing: the lab expects `what`.
async fn expect(ws: &mut WebSocketStream<Stream>, what: &str) -> Result<Message> {
    match crate::net::timeout(IDLE, ws.next()).await {
        Err(_) => bail!(en("no {what} from the server", &[("what", &what)])),
        Ok(None) => {
            bail!(en("the server closed the connection while the client waited for {what}", &[("what", &what)]))
        }
        Ok(Some(Err(e))) => bail!(en("while waiting for {what}: {error}", &[("what", &what), ("error", &e)])),
        Ok(Some(Ok(msg))) => Ok(msg),
    }
}

/// The client scenario.
async fn client(io: Stream, target: String) -> Result<()> {
    let url = format!("ws://{target}/lab");
    let (mut ws, _response) =
        client_async_with_config(url, io, Some(config())).await.wrap_err(term("the upgrade failed"))?;

    ws.send(Message::text(TEXT)).await?;
    match expect(&mut ws, term("the text echo")).await? {
        Message::Text(t) if t.as_str() == TEXT => {}
        other => bail!(en("expected the text echo, got {message}", &[("message", &format!("{other:?}"))])),
    }

    let binary: Vec<u8> = (0..BINARY_LEN).map(|i| (i % 256) as u8).collect();
    ws.send(Message::binary(binary.clone())).await?;
    match expect(&mut ws, term("the binary echo")).await? {
        Message::Binary(b) if b[..] == binary[..] => {}
        other => bail!(en("expected the binary echo, got {message}", &[("message", &format!("{other:?}"))])),
    }

    ws.send(Message::Ping(PING.to_vec().into())).await?;
    match expect(&mut ws, term("the pong")).await? {
        Message::Pong(p) if p[..] == *PING => {}
        other => bail!(en("expected a pong, got {message}", &[("message", &format!("{other:?}"))])),
    }

    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "lesson over".into() })).await?;
    // The server answers with its own close frame, then closes TCP.
    loop {
        match crate::net::timeout(IDLE, ws.next()).await {
            Err(_) => bail!(term("the server did not answer the close")),
            Ok(Some(Ok(_))) => continue,
            Ok(None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed))) => break,
            Ok(Some(Err(e))) => bail!(en("during the closing handshake: {error}", &[("error", &e)])),
        }
    }
    let io = ws.get_mut();
    let mut rest = [0u8; 64];
    match crate::net::timeout(IDLE, io.read(&mut rest)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => bail!(en("{n} unexpected bytes after the close", &[("n", &n)])),
        Ok(Err(e)) => bail!(en("waiting for the server's FIN: {error}", &[("error", &e)])),
        Err(_) => bail!(term("the server did not close the connection")),
    }
    io.shutdown().await.wrap_err(term("closing the connection"))?;
    Ok(())
}
