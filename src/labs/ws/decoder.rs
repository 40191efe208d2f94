//! The WebSocket lab's decoders: each direction starts with an HTTP/1.1 head (the upgrade
//! request, the `101 Switching Protocols` answer) and then carries frames.

use super::frame::{self, Head, Opcode};
use crate::locale::en;
use crate::session::Layer;
use crate::wire::http::{self, Head as HttpHead};
use crate::wire::{Decoded, Decoder, Message, printable};
use std::sync::{Arc, Mutex};

/// Payload bytes decoded into the `WebSocket.payload` field; longer payloads end in `…`.
const FIELD_MAX: usize = 4096;

/// Which way a decoder reads: frames from a client must be masked, from a server must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// What the two directions of one connection share: the key the client sent.
#[derive(Debug, Default)]
pub struct Handshake {
    /// Sec-WebSocket-Key of the upgrade request, once seen.
    key: Option<String>,
    /// The server answered `101 Switching Protocols`: frames from now on, both ways.
    upgraded: bool,
}

/// Decodes what one side of a WebSocket connection sends.
pub struct WsDecoder {
    /// Whose bytes these are.
    side: Side,
    /// Frames from now on: this side's head is done and the server answered `101`.
    upgraded: bool,
    /// This side's HTTP head went by (the request, or the response).
    head_done: bool,
    shared: Arc<Mutex<Handshake>>,
}

impl WsDecoder {
    /// The decoders for one connection: (client→server, server→client).
    pub fn pair() -> (WsDecoder, WsDecoder) {
        let shared = Arc::new(Mutex::new(Handshake::default()));
        (
            WsDecoder { side: Side::Client, upgraded: false, head_done: false, shared: shared.clone() },
            WsDecoder { side: Side::Server, upgraded: false, head_done: false, shared },
        )
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Handshake> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decode_head(&mut self, buf: &[u8]) -> Decoded {
        let head = match HttpHead::parse(buf) {
            Err(http::Error::Incomplete) => return Decoded::Incomplete,
            Err(http::Error::Invalid(reason, len)) => {
                let msg = Message::new(
                    Layer::Application,
                    "HTTP",
                    "ws.malformed",
                    format!("not HTTP: {}", printable(&buf[..len.min(buf.len())], 40)),
                )
                .malformed(reason);
                return Decoded::Message { msg, len };
            }
            Ok(head) => head,
        };
        // A body (an error page after a refused upgrade) belongs to the same message.
        let body = head.header("Content-Length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        // A huge length makes a long message whose rest passes unkept, never an overflow.
        let len = head.len.saturating_add(body);
        if buf.len() < len {
            return Decoded::Incomplete;
        }
        self.head_done = true;
        let msg = match self.side {
            Side::Client => self.request(&head),
            Side::Server => self.response(&head),
        };
        Decoded::Message { msg, len }
    }

    fn request(&mut self, head: &HttpHead) -> Message {
        let [(method, mr), (target, tr), (version, vr)] = head.start.clone();
        let mut msg = Message::new(
            Layer::Application,
            "HTTP",
            "ws.handshake.request",
            format!("{method} {target} {version}  Upgrade: websocket"),
        )
        .field("HTTP.method", method, mr)
        .field("HTTP.target", target, tr)
        .field("HTTP.version", version, vr);
        for (name, value, range) in &head.headers {
            msg = msg.field(format!("HTTP.header.{name}"), *value, range.clone());
        }
        match head.header("Sec-WebSocket-Key") {
            Some(key) => {
                self.shared().key = Some(key.to_string());
                msg.notes
                    .push(en("Sec-WebSocket-Key {key}: 16 random bytes, base64 — new on every run", &[("key", &key)]));
            }
            None => msg = msg.malformed(en("upgrade request without Sec-WebSocket-Key", &[])),
        }
        if !head.header("Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            msg.summary = format!("{method} {target} {version}");
            msg = msg.malformed(en("no `Upgrade: websocket` header", &[]));
        }
        msg
    }

    fn response(&mut self, head: &HttpHead) -> Message {
        let [(version, vr), (status, sr), (reason, rr)] = head.start.clone();
        let code: u16 = status.parse().unwrap_or(0);
        let upgraded = code == 101;
        let kind = if upgraded { "ws.handshake.response" } else { "ws.handshake.refused" };
        let mut msg = Message::new(Layer::Application, "HTTP", kind, format!("{version} {status} {reason}"))
            .field("HTTP.version", version, vr)
            .field("HTTP.status", code, sr)
            .field("HTTP.reason", reason, rr);
        for (name, value, range) in &head.headers {
            msg = msg.field(format!("HTTP.header.{name}"), *value, range.clone());
        }
        if upgraded {
            self.shared().upgraded = true;
            let key = self.shared().key.clone();
            match (key, head.header("Sec-WebSocket-Accept")) {
                (Some(key), Some(accept)) => {
                    let expected = frame::accept_key(&key);
                    let derivation =
                        [format!("  = base64(SHA-1(\"{key}\" + \"{}\"))", frame::GUID), format!("  = {expected}")];
                    if expected == accept {
                        // The verdict first: on a small screen it is the line that shows.
                        msg.notes.push(en("matches Sec-WebSocket-Accept ✓: base64(SHA-1(key + GUID))", &[]));
                        msg.notes.extend(derivation);
                        msg.summary.push_str("  (accept ✓)");
                    } else {
                        msg.notes.extend(derivation);
                        msg = msg.malformed(en(
                            "Sec-WebSocket-Accept {accept} does not match the key (expected {expected})",
                            &[("accept", &accept), ("expected", &expected)],
                        ));
                    }
                }
                (_, None) => msg = msg.malformed(en("101 without Sec-WebSocket-Accept", &[])),
                (None, Some(_)) => {
                    msg.notes.push(en("the request was not seen: the accept value cannot be checked", &[]))
                }
            }
        }
        msg
    }

    fn decode_frame(&mut self, buf: &[u8], keep: usize) -> Decoded {
        let head = match Head::check(buf) {
            Err(frame::Error::Incomplete) => return Decoded::Incomplete,
            Err(frame::Error::Invalid(reason)) => {
                let msg =
                    Message::new(Layer::Application, "WebSocket", "ws.malformed", "not a frame").malformed(reason);
                return Decoded::Message { msg, len: buf.len() };
            }
            Ok(head) => head,
        };
        let total = head.frame_len();
        let whole = (buf.len() as u64) >= total;
        if !whole && buf.len() < keep {
            return Decoded::Incomplete;
        }
        let len = total.min(usize::MAX as u64) as usize;
        Decoded::Message { msg: self.frame_message(&head, &buf[..len.min(buf.len())], whole), len }
    }

    fn frame_message(&self, head: &Head, bytes: &[u8], whole: bool) -> Message {
        let opcode = head.opcode;
        let mut msg =
            Message::new(Layer::Application, "WebSocket", format!("ws.frame.{}", opcode.name()), opcode.name())
                .field("WebSocket.fin", head.fin, 0..1)
                .field("WebSocket.rsv", head.rsv, 0..1)
                .field("WebSocket.opcode", opcode.name(), 0..1)
                .field("WebSocket.masked", head.masked, 1..2)
                .field("WebSocket.payload_len", head.payload_len, 1..head.head_len - head.masking_key.map_or(0, |_| 4));
        if let Some(key) = head.masking_key {
            let at = head.head_len - 4;
            msg = msg.field("WebSocket.masking_key", crate::session::hex(&key), at..at + 4);
        }
        let range = head.payload_range(bytes.len());
        // Decode at most FIELD_MAX bytes of payload for the field; the bytes themselves are kept.
        let mut payload = bytes[range.start..range.end.min(range.start + FIELD_MAX)].to_vec();
        let cut = payload.len() < head.payload_len as usize;
        if let Some(key) = head.masking_key {
            frame::apply_mask(&mut payload, key, 0);
        }
        let shown = match opcode {
            Opcode::Text => String::from_utf8_lossy(&payload).into_owned(),
            Opcode::Close => String::new(),
            Opcode::Ping | Opcode::Pong if std::str::from_utf8(&payload).is_ok() => {
                String::from_utf8_lossy(&payload).into_owned()
            }
            _ => crate::session::hex(&payload),
        };
        let shown = if cut && opcode != Opcode::Close { format!("{shown}…") } else { shown };
        let length_form = match head.length_bits {
            7 => "7-bit length",
            16 => "16-bit length",
            _ => "64-bit length",
        };
        msg.summary = match opcode {
            Opcode::Text => format!("text \"{}\"", printable(&payload, 48)),
            Opcode::Binary => format!("binary {} bytes ({length_form})", head.payload_len),
            Opcode::Ping | Opcode::Pong => format!("{} \"{}\"", opcode.name(), printable(&payload, 40)),
            Opcode::Continuation => format!("continuation {} bytes", head.payload_len),
            Opcode::Close => "close".into(),
            Opcode::Reserved(_) => format!("opcode {}", opcode.name()),
        };
        if opcode == Opcode::Close {
            match payload.len() {
                0 => msg.summary = "close (no status code)".into(),
                1 => msg = msg.malformed(en("close payload of 1 byte (a status code takes 2)", &[])),
                _ => {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
                    msg.summary = format!(
                        "close {code} ({}) \"{}\"",
                        frame::close_code_name(code),
                        printable(reason.as_bytes(), 40)
                    );
                    msg = msg.field("WebSocket.close_code", code, range.start..range.start + 2).field(
                        "WebSocket.close_reason",
                        reason,
                        range.start + 2..range.end,
                    );
                    if !frame::close_code_is_valid(code) {
                        msg = msg.malformed(en("close code {code} may not be sent", &[("code", &code)]));
                    }
                }
            }
        } else if whole || !payload.is_empty() {
            msg = msg.field("WebSocket.payload", shown, range);
        }
        if head.masked {
            // Masked frames have their own narration, which explains the masking key.
            msg.kind.push_str(".masked");
            msg.summary.push_str("  (masked)");
            msg.notes.push(en("payload = masked bytes XOR masking key, byte i with key[i % 4]", &[]));
        }
        if !whole {
            msg.notes.push(en(
                "long frame: the first {kept} of {len} bytes are kept",
                &[("kept", &bytes.len()), ("len", &head.frame_len())],
            ));
        }
        if let Some(reason) = head.violation() {
            return msg.malformed(reason);
        }
        match (self.side, head.masked) {
            (Side::Client, false) => msg.malformed(en("a client's frame must be masked (RFC 6455 §5.1)", &[])),
            (Side::Server, true) => msg.malformed(en("a server's frame must not be masked (RFC 6455 §5.1)", &[])),
            _ if opcode == Opcode::Text && !cut && head.fin && std::str::from_utf8(&payload).is_err() => {
                msg.malformed(en("text frame payload is not UTF-8", &[]))
            }
            _ => msg,
        }
    }
}

impl Decoder for WsDecoder {
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded {
        // Frames follow once the server has answered 101; both directions learn it here.
        if !self.upgraded && self.head_done && self.shared().upgraded {
            self.upgraded = true;
        }
        if self.upgraded { self.decode_frame(buf, keep) } else { self.decode_head(buf) }
    }
}
