//! Wire formats shared by labs, sans-IO: byte slices in, messages out.
//!
//! A lab gives one [`Decoder`] per direction of a connection. The recorder in `net::tap` feeds it
//! the bytes as they cross the socket; the decoder says where each message ends and what it means.

pub mod dhcp;
pub mod dns;
pub mod frame;
pub mod http;
pub mod tls;

use crate::session::{Field, Layer, SeqCell};

/// A message decoded from the start of a byte buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub layer: Layer,
    /// `HTTP`, `WebSocket`, `SMTP`, ...
    pub proto: &'static str,
    /// One line, as a person would say it.
    pub summary: String,
    pub fields: Vec<Field>,
    /// The narration key, `lab.kind[.detail]`, e.g. `smtp.command.EHLO`.
    pub kind: String,
    /// Checks and derivations to show beside the fields.
    pub notes: Vec<String>,
    /// Set when the message was framed but is not valid: the reason.
    pub malformed: Option<String>,
    /// Gets the step's `seq` once numbered (a TLS record, named by what it carried).
    pub numbered: Option<SeqCell>,
    /// Messages of a higher layer that this one carried and completed (an SMTP reply inside a
    /// TLS record): steps of their own, right after this one.
    pub carried: Vec<Carried>,
}

/// A message carried inside others (decrypted from TLS records): its bytes are not the
/// stream's, and the records that carried it are named by their cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    pub msg: Message,
    /// The first bytes of the message (at most [`crate::session::KEEP_BYTES`]).
    pub bytes: Vec<u8>,
    pub len: usize,
    pub carriers: Vec<SeqCell>,
}

impl Message {
    pub fn new(layer: Layer, proto: &'static str, kind: impl Into<String>, summary: impl Into<String>) -> Self {
        Message {
            layer,
            proto,
            summary: summary.into(),
            fields: Vec::new(),
            kind: kind.into(),
            notes: Vec::new(),
            malformed: None,
            numbered: None,
            carried: Vec::new(),
        }
    }

    /// Adds a decoded field (builder style).
    pub fn field(
        mut self,
        path: impl Into<String>,
        value: impl Into<serde_json::Value>,
        range: std::ops::Range<usize>,
    ) -> Self {
        self.fields.push(Field::new(path, value, range));
        self
    }

    /// The step this message makes: `len` bytes on the wire from `from` to `to`, of which
    /// `bytes` (at most [`crate::session::KEEP_BYTES`], cut by the caller) are kept. The sink
    /// numbers and timestamps it.
    pub fn into_step(self, from: &str, to: &str, bytes: Vec<u8>, len: usize) -> crate::session::Step {
        crate::session::Step {
            layer: self.layer,
            proto: self.proto.into(),
            from: from.into(),
            to: to.into(),
            summary: self.summary,
            len,
            truncated: bytes.len() < len,
            bytes,
            fields: self.fields,
            malformed: self.malformed,
            kind: self.kind,
            notes: self.notes,
            numbered: self.numbered,
            carried: self
                .carried
                .into_iter()
                .map(|c| crate::session::Step { carriers: c.carriers, ..c.msg.into_step(from, to, c.bytes, c.len) })
                .collect(),
            ..crate::session::Step::default()
        }
    }

    /// Marks the message malformed with a reason.
    pub fn malformed(mut self, reason: impl Into<String>) -> Self {
        self.malformed = Some(reason.into());
        self
    }
}

/// What a decoder found at the start of its buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// The buffer holds only part of a message: read more bytes.
    Incomplete,
    /// A message `len` bytes long. When `len` exceeds the buffer, the buffer held the message's
    /// head (at least `keep` bytes, see [`Decoder::decode`]) and the rest passes without being kept.
    Message { msg: Message, len: usize },
    /// `len` bytes that make no step of their own (a lab whose steps are the frames).
    Skip { len: usize },
}

/// Splits one direction of a byte stream into messages. Stateful: a decoder knows whether it is
/// in the HTTP head or in WebSocket frames, in SMTP commands or in the DATA text.
pub trait Decoder: Send {
    /// Decodes the message at the start of `buf`. `keep` is how many bytes the recorder keeps of
    /// a message: a decoder that knows a message's length from its head may answer with that
    /// length once `buf` holds `keep` bytes, instead of waiting for the whole message.
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded;
}

/// The decoder of labs whose steps are the frames themselves (TCP, DHCP): the bytes of the
/// stream make no steps of their own.
pub struct FramesOnly;

impl Decoder for FramesOnly {
    fn decode(&mut self, buf: &[u8], _keep: usize) -> Decoded {
        Decoded::Skip { len: buf.len() }
    }
}

/// Splits a buffer into CRLF-terminated lines; returns the line (without CRLF) and its length with it.
pub fn crlf_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

/// Bytes as text for a summary: lossy UTF-8, control characters escaped, cut at `max` chars.
pub fn printable(bytes: &[u8], max: usize) -> String {
    // No character takes more than 4 bytes: the first `max` and one more (for the `…`) lie in
    // this much, however long the message (a 1460-byte segment read for 40 characters).
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max.saturating_add(1).saturating_mul(4))]);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// What decoders' tests share: feeding bytes a chunk at a time, reading a field.
#[cfg(test)]
pub mod testing {
    use super::{Decoded, Decoder, Message};

    /// Feeds `bytes` to `dec` in chunks of `chunk` and collects (message, its bytes).
    pub fn feed(dec: &mut dyn Decoder, bytes: &[u8], chunk: usize, keep: usize) -> Vec<(Message, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for piece in bytes.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&buf, keep) {
                    Decoded::Incomplete => break,
                    Decoded::Message { msg, len } => {
                        out.push((msg, buf[..len].to_vec()));
                        buf.drain(..len);
                    }
                    Decoded::Skip { len } => {
                        buf.drain(..len);
                    }
                }
            }
        }
        out
    }

    /// A field's value, or null.
    pub fn value(msg: &Message, path: &str) -> serde_json::Value {
        msg.fields.iter().find(|f| f.path == path).map(|f| f.value.clone()).unwrap_or_default()
    }
}
