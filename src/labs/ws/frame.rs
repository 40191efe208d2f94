//! WebSocket frames (RFC 6455 §5.2), sans-IO: check a frame's head, parse it, emit one.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```

use crate::locale::en;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::ops::Range;

/// The GUID a server appends to the client's key (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let digest = Sha1::digest(format!("{key}{GUID}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The opcode nibble (§5.2, §11.8). Reserved values are kept, not lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
    Reserved(u8),
}

impl Opcode {
    pub fn from_nibble(n: u8) -> Self {
        match n {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => Opcode::Reserved(other),
        }
    }

    pub fn nibble(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
            Opcode::Reserved(n) => n,
        }
    }

    /// The name in DESIGN.md's `WebSocket.opcode` field.
    pub fn name(self) -> String {
        match self {
            Opcode::Continuation => "continuation".into(),
            Opcode::Text => "text".into(),
            Opcode::Binary => "binary".into(),
            Opcode::Close => "close".into(),
            Opcode::Ping => "ping".into(),
            Opcode::Pong => "pong".into(),
            Opcode::Reserved(n) => format!("reserved-0x{n:x}"),
        }
    }

    /// Close, ping and pong: at most 125 bytes and never fragmented.
    pub fn is_control(self) -> bool {
        self.nibble() & 0x8 != 0
    }
}

/// Byte offsets of the fixed part of the head.
mod field {
    pub const FLAGS_OPCODE: usize = 0;
    pub const MASK_LEN: usize = 1;
    pub const EXTENDED_LEN: usize = 2;
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not enough bytes yet.
    Incomplete,
    /// A rule of §5 is broken.
    Invalid(String),
}

/// A frame's head, as laid out on the wire: everything before the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub fin: bool,
    /// RSV1..3 as a 3-bit number; non-zero only with a negotiated extension.
    pub rsv: u8,
    pub opcode: Opcode,
    pub masked: bool,
    /// Which length form carried the payload length: 7, 16 or 64 bits.
    pub length_bits: u8,
    pub payload_len: u64,
    pub masking_key: Option<[u8; 4]>,
    /// Bytes of the head: 2 to 14.
    pub head_len: usize,
}

impl Head {
    /// Reads the head at the start of `buf` (§5.2).
    pub fn check(buf: &[u8]) -> Result<Head, Error> {
        if buf.len() < 2 {
            return Err(Error::Incomplete);
        }
        let b0 = buf[field::FLAGS_OPCODE];
        let b1 = buf[field::MASK_LEN];
        let masked = b1 & 0x80 != 0;
        let (length_bits, payload_len, mut at) = match b1 & 0x7f {
            126 => {
                let ext = buf.get(field::EXTENDED_LEN..4).ok_or(Error::Incomplete)?;
                (16, u16::from_be_bytes([ext[0], ext[1]]) as u64, 4)
            }
            127 => {
                let ext = buf.get(field::EXTENDED_LEN..10).ok_or(Error::Incomplete)?;
                (64, u64::from_be_bytes(ext.try_into().expect("8 bytes")), 10)
            }
            n => (7, n as u64, 2),
        };
        let masking_key = if masked {
            let key = buf.get(at..at + 4).ok_or(Error::Incomplete)?;
            at += 4;
            Some(key.try_into().expect("4 bytes"))
        } else {
            None
        };
        let head = Head {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: Opcode::from_nibble(b0 & 0x0f),
            masked,
            length_bits,
            payload_len,
            masking_key,
            head_len: at,
        };
        Ok(head)
    }

    /// The rules of §5.2 and §5.5 a frame's head must follow; `None` when it does.
    pub fn violation(&self) -> Option<String> {
        if self.length_bits == 64 && self.payload_len >> 63 != 0 {
            return Some(en("64-bit payload length with the most significant bit set", &[]));
        }
        if self.length_bits == 16 && self.payload_len < 126 || self.length_bits == 64 && self.payload_len <= 0xffff {
            return Some(en("payload length {len} not in its shortest form", &[("len", &self.payload_len)]));
        }
        if let Opcode::Reserved(n) = self.opcode {
            return Some(en("reserved opcode 0x{opcode}", &[("opcode", &format!("{n:x}"))]));
        }
        if self.rsv != 0 {
            let bits = format!("{:03b}", self.rsv);
            return Some(en("RSV bits {bits} set but no extension was negotiated", &[("bits", &bits)]));
        }
        if self.opcode.is_control() && self.payload_len > 125 {
            return Some(en("control frame with {len}-byte payload (max 125)", &[("len", &self.payload_len)]));
        }
        if self.opcode.is_control() && !self.fin {
            return Some(en("fragmented control frame", &[]));
        }
        None
    }

    /// Bytes of the whole frame.
    pub fn frame_len(&self) -> u64 {
        (self.head_len as u64).saturating_add(self.payload_len)
    }

    /// Where the payload lies in the frame's bytes (clamped to what `available` holds).
    pub fn payload_range(&self, available: usize) -> Range<usize> {
        let end = (self.frame_len().min(usize::MAX as u64) as usize).min(available);
        self.head_len.min(end)..end
    }
}

/// XORs `data` with the masking key (§5.3); `offset` is the payload position of `data[0]`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// Builds a frame: the shortest length form, masked when a key is given.
pub fn emit(fin: bool, opcode: Opcode, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | opcode.nibble());
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len() + mask.map_or(0, |_| 4);
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// The close codes of §7.4.1, by name.
pub fn close_code_name(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status received",
        1006 => "abnormal closure",
        1007 => "invalid payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        1015 => "TLS handshake",
        3000..=3999 => "registered",
        4000..=4999 => "private use",
        _ => "invalid",
    }
}

/// Codes a peer may put in a close frame (§7.4): 1005, 1006 and 1015 must never be sent.
pub fn close_code_is_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
    const UNMASKED_HELLO: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    // §5.7: a single-frame masked text message "Hello".
    const MASKED_HELLO: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];

    #[test]
    fn unmasked_text_frame() {
        let h = Head::check(&UNMASKED_HELLO).unwrap();
        assert!(h.fin && !h.masked);
        assert_eq!((h.opcode, h.payload_len, h.head_len, h.length_bits), (Opcode::Text, 5, 2, 7));
        assert_eq!(&UNMASKED_HELLO[h.payload_range(7)], b"Hello");
        assert_eq!(h.violation(), None);
    }

    #[test]
    fn masked_text_frame_unmasks_to_hello() {
        let h = Head::check(&MASKED_HELLO).unwrap();
        assert!(h.masked);
        assert_eq!(h.masking_key, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut payload = MASKED_HELLO[h.payload_range(11)].to_vec();
        apply_mask(&mut payload, h.masking_key.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        assert_eq!(emit(true, Opcode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), b"Hello"), MASKED_HELLO);
    }

    #[test]
    fn ping_and_pong_of_rfc() {
        // §5.7: unmasked ping "Hello", masked pong "Hello".
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(Head::check(&ping).unwrap().opcode, Opcode::Ping);
        let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(Head::check(&pong).unwrap().opcode, Opcode::Pong);
    }

    #[test]
    fn sixteen_bit_length_form() {
        // §5.7: 256 bytes binary message in a single unmasked frame: 0x82 0x7E 0x0100.
        let frame = emit(true, Opcode::Binary, None, &[7u8; 256]);
        assert_eq!(&frame[..4], &[0x82, 0x7e, 0x01, 0x00]);
        let h = Head::check(&frame).unwrap();
        assert_eq!((h.length_bits, h.payload_len, h.head_len), (16, 256, 4));
    }

    #[test]
    fn sixty_four_bit_length_form() {
        // §5.7: 64 KiB binary message in a single unmasked frame: 0x82 0x7F 0x0000000000010000.
        let frame = emit(true, Opcode::Binary, None, &vec![0u8; 65536]);
        assert_eq!(&frame[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        let h = Head::check(&frame[..10]).unwrap();
        assert_eq!((h.length_bits, h.payload_len, h.head_len), (64, 65536, 10));
        assert_eq!(h.frame_len(), 65546);
    }

    #[test]
    fn truncated_heads_are_incomplete() {
        assert_eq!(Head::check(&[]), Err(Error::Incomplete));
        assert_eq!(Head::check(&[0x81]), Err(Error::Incomplete));
        assert_eq!(Head::check(&[0x82, 0x7e, 0x01]), Err(Error::Incomplete));
        assert_eq!(Head::check(&[0x82, 0x7f, 0, 0, 0]), Err(Error::Incomplete));
        assert_eq!(Head::check(&MASKED_HELLO[..4]), Err(Error::Incomplete));
    }

    #[test]
    fn rule_violations_are_named() {
        let reserved = Head::check(&[0x83, 0x00]).unwrap();
        assert_eq!(reserved.violation().unwrap(), "reserved opcode 0x3");
        let long_ping = Head::check(&[0x89, 0x7e, 0x00, 0x80]).unwrap();
        assert!(long_ping.violation().unwrap().contains("control frame"));
        let rsv = Head::check(&[0xc1, 0x00]).unwrap();
        assert!(rsv.violation().unwrap().contains("RSV"));
        let fragmented_close = Head::check(&[0x08, 0x00]).unwrap();
        assert_eq!(fragmented_close.violation().unwrap(), "fragmented control frame");
        let msb = Head::check(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(msb.violation().unwrap().contains("most significant bit"));
    }

    #[test]
    fn close_codes() {
        assert_eq!(close_code_name(1002), "protocol error");
        assert!(close_code_is_valid(1000) && !close_code_is_valid(1005) && !close_code_is_valid(999));
    }
}
