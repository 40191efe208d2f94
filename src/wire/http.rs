//! HTTP/1.1 message heads (RFC 9112): the request line or status line and the header fields.
//! Used by the WebSocket upgrade now and the HTTP lab later.

use crate::locale::en;
use std::ops::Range;

/// Longest head accepted; a longer one is malformed.
pub const MAX_HEAD: usize = 16 * 1024;

/// A parsed head: the start line's three parts and the header fields, with byte ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Head<'a> {
    /// Request: method, target, version. Response: version, status code, reason.
    pub start: [(&'a str, Range<usize>); 3],
    /// Header fields in order: name, value, and the value's range.
    pub headers: Vec<(&'a str, &'a str, Range<usize>)>,
    /// Bytes of the head including the blank line.
    pub len: usize,
}

/// Why a head did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No blank line yet: read more.
    Incomplete,
    /// Not an HTTP head; the reason, and how many bytes to take as the bad message.
    Invalid(String, usize),
}

impl<'a> Head<'a> {
    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)).map(|(_, v, _)| *v)
    }

    /// Parses a head at the start of `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<Head<'a>, Error> {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if buf.len() > MAX_HEAD {
                let reason = en("no end of head within {max} bytes", &[("max", &MAX_HEAD)]);
                return Err(Error::Invalid(reason, buf.len()));
            }
            // A line that cannot start an HTTP head is bad at once, not after 16 KiB.
            if let Some(first) = buf.split(|&b| b == b'\n').next().filter(|_| buf.contains(&b'\n'))
                && (!first.is_ascii() || first.split(|&b| b == b' ').count() < 3)
            {
                return Err(Error::Invalid(en("not an HTTP start line", &[]), line_end(buf)));
            }
            return Err(Error::Incomplete);
        };
        let len = end + 4;
        let text = std::str::from_utf8(&buf[..end]).map_err(|_| Error::Invalid(en("head is not text", &[]), len))?;
        let mut lines = text.split("\r\n");
        let start_line = lines.next().unwrap_or_default();
        let mut parts = start_line.splitn(3, ' ');
        let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
            let reason = en("bad start line {line}", &[("line", &format!("{start_line:?}"))]);
            return Err(Error::Invalid(reason, len));
        };
        let a_r = 0..a.len();
        let b_r = a_r.end + 1..a_r.end + 1 + b.len();
        let c_r = b_r.end + 1..b_r.end + 1 + c.len();
        let mut headers = Vec::new();
        let mut offset = start_line.len() + 2;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                let reason = en("header line without ':' {line}", &[("line", &format!("{line:?}"))]);
                return Err(Error::Invalid(reason, len));
            };
            if name.is_empty() || name.contains(' ') {
                let reason = en("bad header name {name}", &[("name", &format!("{name:?}"))]);
                return Err(Error::Invalid(reason, len));
            }
            let lead = value.len() - value.trim_start().len();
            let value_t = value.trim();
            let vstart = offset + name.len() + 1 + lead;
            headers.push((name, value_t, vstart..vstart + value_t.len()));
            offset += line.len() + 2;
        }
        Ok(Head { start: [(a, a_r), (b, b_r), (c, c_r)], headers, len })
    }
}

fn line_end(buf: &[u8]) -> usize {
    buf.iter().position(|&b| b == b'\n').map_or(buf.len(), |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc6455_request_head() {
        let raw = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nrest";
        let head = Head::parse(raw).unwrap();
        assert_eq!(head.start[0].0, "GET");
        assert_eq!(head.start[1].0, "/chat");
        assert_eq!(head.len, raw.len() - 4);
        assert_eq!(head.header("sec-websocket-key"), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        let (_, v, r) = &head.headers[4];
        assert_eq!(&raw[r.clone()], v.as_bytes());
    }

    #[test]
    fn incomplete_until_blank_line() {
        assert_eq!(Head::parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Err(Error::Incomplete));
    }

    #[test]
    fn garbage_is_invalid_at_first_line() {
        match Head::parse(b"\x16\x03\x01garbage\n") {
            Err(Error::Invalid(_, n)) => assert_eq!(n, 11),
            other => panic!("{other:?}"),
        }
    }
}
