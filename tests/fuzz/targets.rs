//! The decoders the fuzzer feeds, each with its corpus (built by our own encoders and servers)
//! and what it checks beyond "no panic":
//!
//! - every decoder answer keeps the `Decoder` contract: a message is at least one byte, longer
//!   than its buffer only once the buffer holds `keep` bytes, and its fields lie in its bytes;
//! - the real `Recorder` (what a socket's bytes go through) makes steps whose fields lie in the
//!   bytes they keep, keeps at most 64 KiB, and accounts for every byte fed, once and in order;
//! - a parser's lengths and ranges stay within its input, and its ranges hold what it says;
//! - a DHCP message its step calls well-formed is one the lab's server and client parse;
//! - our servers' and clients' answers to anything read back with our own parsers.

use super::{Chunk, Input, Target};
use dhcproto::Encodable;
use dhcproto::v4;
use protolab::labs::dhcp::client::{Client, ClientConfig, Outgoing};
use protolab::labs::dhcp::lease::Instant;
use protolab::labs::dhcp::server::Server;
use protolab::labs::smtp::mailbox::Mailbox;
use protolab::labs::smtp::server::{Config, Session, State};
use protolab::labs::smtp::wire::{Reply, ReplyError, next_line};
use protolab::labs::ws::frame::{self, Opcode};
use protolab::net::{Dir, Recorder};
use protolab::session::{Field, KEEP_BYTES, Step, StepSink};
use protolab::wire::dhcp as dhcp_wire;
use protolab::wire::http::{self, Head as HttpHead};
use protolab::wire::{Decoded, Decoder};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Every target, in the order a run goes through them.
pub static ALL: [&Target; 9] = [&WS_HEAD, &WS_FRAME, &SMTP_COMMAND, &SMTP_REPLY, &POP3, &IMAP, &TLS, &DHCP, &FRAME];

/// The target with this name.
pub fn find(name: &str) -> Option<&'static Target> {
    ALL.iter().copied().find(|t| t.name == name)
}

pub static WS_HEAD: Target = Target {
    name: "ws-head",
    about: "WebSocket upgrade request and response heads (HTTP/1.1), then the first frames",
    stream: true,
    focus: 0,
    corpus: ws_head_corpus,
    tokens: &[
        b"\r\n",
        b"\r\n\r\n",
        b": ",
        b" ",
        b"\n",
        b"HTTP/1.1 101 Switching Protocols\r\n",
        b"GET / HTTP/1.1\r\n",
        b"Upgrade: websocket\r\n",
        b"Connection: Upgrade\r\n",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
        b"Content-Length: ",
        b"Content-Length: 18446744073709551615\r\n",
        b"Content-Length: 65540\r\n",
        b"\xc3\xa9",
        b"\xff",
    ],
    run: run_ws_head,
};

pub static WS_FRAME: Target = Target {
    name: "ws-frame",
    about: "WebSocket frames both ways after the upgrade (RFC 6455 §5)",
    stream: true,
    focus: 0,
    corpus: ws_frame_corpus,
    tokens: &[
        &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
        &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'],
        &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8],
        &[0x89, 0x80, 1, 2, 3, 4],
        &[0x82, 0xfe, 0xff, 0xff],
        &[0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 4],
        &[0x80],
        &[0x00, 0x80],
    ],
    run: run_ws_frame,
};

pub static SMTP_COMMAND: Target = Target {
    name: "smtp-command",
    about: "SMTP command lines and the message text after 354 (RFC 5321), and the lab server",
    stream: true,
    focus: 0,
    corpus: smtp_corpus,
    tokens: SMTP_TOKENS,
    run: run_smtp_command,
};

pub static SMTP_REPLY: Target = Target {
    name: "smtp-reply",
    about: "SMTP replies, one line or many (RFC 5321 §4.2)",
    stream: true,
    focus: 1,
    corpus: smtp_corpus,
    tokens: SMTP_TOKENS,
    run: run_smtp_reply,
};

pub static POP3: Target = Target {
    name: "pop3",
    about: "POP3 commands and responses, multi-line ones with dot-stuffing (RFC 1939, RFC 2449)",
    stream: true,
    focus: 1,
    corpus: pop3_corpus,
    tokens: &[
        b"\r\n",
        b"\r\n.\r\n",
        b"+OK ",
        b"-ERR ",
        b"..",
        b"RETR 1\r\n",
        b"LIST\r\n",
        b"TOP 1 0\r\n",
        b"CAPA\r\n",
        b"STLS\r\n",
        b"PASS a b\r\n",
        b"APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n",
    ],
    run: run_pop3,
};

pub static IMAP: Target = Target {
    name: "imap",
    about: "IMAP commands and responses: tags, untagged data, literals, IDLE (RFC 9051)",
    stream: true,
    focus: 0,
    corpus: imap_corpus,
    tokens: &[
        b"\r\n",
        b"{3}\r\n",
        b"{0}\r\n",
        b"{4294967295}\r\n",
        b"{5+}\r\n",
        b"* ",
        b"+ ",
        b" OK ",
        b"(",
        b")",
        b"\"",
        b"[",
        b"]",
        b"a1 ",
        b"LOGIN bob lab\r\n",
        b"SELECT INBOX\r\n",
        b"FETCH 1:* (FLAGS BODY.PEEK[HEADER] BODY[TEXT]<0.10>)\r\n",
        b"UID STORE 1 +FLAGS (\\Seen)\r\n",
        b"IDLE\r\n",
        b"DONE\r\n",
        b"AUTHENTICATE PLAIN\r\n",
    ],
    run: run_imap,
};

pub static TLS: Target = Target {
    name: "tls",
    about: "TLS 1.3 records both ways (RFC 8446): real handshakes opened with the logged secrets, SMTP inside",
    stream: true,
    focus: 1,
    corpus: tls_corpus,
    tokens: &[
        &[0x16, 0x03, 0x01],
        &[0x16, 0x03, 0x03],
        &[0x17, 0x03, 0x03],
        &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
        &[0x14, 0x03, 0x03, 0x00, 0x01, 0x01],
        &[0x40, 0x00],
        &[0x41, 0x01],
        &[0xff, 0xff],
        &[0x00, 0x00],
        &[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04],
        &[0x00, 0x33],
        &[0x13, 0x01],
        &[0x13, 0x02],
        &[0x13, 0x03],
        b"\r\n",
    ],
    run: run_tls,
};

pub static DHCP: Target = Target {
    name: "dhcp",
    about: "DHCP messages (RFC 2131, 2132): the step decoder, the parser, the lab's server and client",
    stream: false,
    focus: 0,
    corpus: dhcp_corpus,
    tokens: &[
        &[99, 130, 83, 99],
        &[53, 1, 1],
        &[53, 1, 3],
        &[53, 1, 5],
        &[255],
        &[0],
        &[51, 4, 0xff, 0xff, 0xff, 0xff],
        &[58, 4, 0, 0, 0, 0],
        &[54, 4, 192, 0, 2, 2],
        &[50, 4, 192, 0, 2, 10],
        &[52, 1, 3],
        &[55, 0],
        &[61, 0],
        &[12, 1, 0xff],
    ],
    run: run_dhcp,
};

pub static FRAME: Target = Target {
    name: "frame",
    about: "Ethernet II frames: ARP, IPv4, ICMP, TCP (and its options), UDP, DHCP inside",
    stream: false,
    focus: 0,
    corpus: frame_corpus,
    tokens: &[
        &[0x08, 0x00],
        &[0x08, 0x06],
        &[0x45, 0x00],
        &[0x46],
        &[0x4f],
        &[0x02, 0x04, 0x05, 0xb4],
        &[0x03, 0x03, 0x07],
        &[0x04, 0x02],
        &[0x05, 0x0a],
        &[0x08, 0x0a],
        &[0x01],
        &[0x00, 0x43, 0x00, 0x44],
        &[0x00, 0x44, 0x00, 0x43],
        &[0xff, 0xff],
    ],
    run: run_frame,
};

const SMTP_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b".\r\n",
    b"..",
    b"DATA\r\n",
    b"354 go ahead\r\n",
    b"250-",
    b"250 ",
    b"503 bad sequence\r\n",
    b"MAIL FROM:<",
    b"RCPT TO:<",
    b">",
    b"@",
    b" SIZE=",
    b"EHLO ",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
];

// ---- checks shared by the targets -------------------------------------------------------------

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Every field's range lies in the first `n` bytes.
fn fields_within(fields: &[Field], n: usize, what: &str) -> Result<(), String> {
    for f in fields {
        let [start, end] = f.range;
        ensure(start <= end && end <= n, || {
            format!("{what}: field {} at {start}..{end}, outside the {n} bytes", f.path)
        })?;
    }
    Ok(())
}

/// One answer of a decoder to `buf`, against the `Decoder` contract.
fn check_decoded(decoded: &Decoded, buf: &[u8], keep: usize) -> Result<(), String> {
    match decoded {
        Decoded::Incomplete => Ok(()),
        Decoded::Skip { len } => {
            ensure(*len >= 1 && *len <= buf.len(), || format!("skips {len} bytes of a buffer of {}", buf.len()))
        }
        Decoded::Message { msg, len } => {
            let what = format!("message {:?} ({} bytes)", msg.kind, len);
            ensure(*len >= 1, || format!("{what}: a message of no bytes"))?;
            ensure(*len <= buf.len() || buf.len() >= keep, || {
                format!("{what}: longer than its buffer of {} bytes, which holds less than keep ({keep})", buf.len())
            })?;
            fields_within(&msg.fields, (*len).min(buf.len()), &what)
        }
    }
}

/// Bytes a direction may hold without a message boundary (the recorder's limit).
const MAX_UNFRAMED: usize = 1024 * 1024;

/// One direction in [`drive`]: its decoder, the bytes not cut yet, and how many bytes of a
/// long message are still to pass.
struct Way {
    decoder: Box<dyn Decoder>,
    buf: Vec<u8>,
    skip: usize,
}

impl Way {
    /// Cuts every whole message off the buffer, checking each answer.
    fn cut(&mut self, keep: usize) -> Result<(), String> {
        let mut at = 0;
        while at < self.buf.len() {
            let rest = &self.buf[at..];
            let decoded = self.decoder.decode(rest, keep);
            check_decoded(&decoded, rest, keep)?;
            match decoded {
                Decoded::Incomplete => {
                    if rest.len() > MAX_UNFRAMED {
                        at = self.buf.len();
                    }
                    break;
                }
                Decoded::Skip { len } => at += len.clamp(1, rest.len()),
                Decoded::Message { len, .. } => {
                    let available = rest.len();
                    if len <= available {
                        at += len;
                    } else {
                        self.skip = len - available;
                        at = self.buf.len();
                    }
                }
            }
        }
        self.buf.drain(..at);
        Ok(())
    }
}

/// Drives a pair of decoders as the recorder does, but with the input's `keep` and whole
/// chunks at a time: each chunk is cut into messages, then the other direction is cut again
/// (bytes that waited for a reply).
fn drive(pair: (Box<dyn Decoder>, Box<dyn Decoder>), prefix: &[Chunk], input: &Input) -> Result<(), String> {
    let keep = input.keep.max(1);
    let mut ways =
        [Way { decoder: pair.0, buf: Vec::new(), skip: 0 }, Way { decoder: pair.1, buf: Vec::new(), skip: 0 }];
    for c in prefix.iter().chain(&input.chunks) {
        let d = usize::from(c.dir & 1);
        let way = &mut ways[d];
        let passed = way.skip.min(c.bytes.len());
        way.skip -= passed;
        way.buf.extend_from_slice(&c.bytes[passed..]);
        way.cut(keep)?;
        let other = &mut ways[1 - d];
        if other.skip == 0 {
            other.cut(keep)?;
        }
    }
    Ok(())
}

fn dir(d: u8) -> Dir {
    if d & 1 == 0 { Dir::ClientToServer } else { Dir::ServerToClient }
}

/// Feeds the chunks to the real recorder (64 KiB kept) with a lab's decoders and checks its steps.
fn record(
    lab: &str,
    decoders: (Box<dyn Decoder>, Box<dyn Decoder>),
    prefix: &[Chunk],
    input: &Input,
) -> Result<(), String> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rec = Recorder::new(StepSink::new(lab, tx), ["client", "server"], decoders);
    // Sums in u128: a frame may say it is 2^64 - 1 bytes long.
    let mut fed = [0u128; 2];
    let mut streams = [Vec::new(), Vec::new()];
    for c in prefix.iter().chain(&input.chunks) {
        rec.feed(dir(c.dir), &c.bytes);
        fed[usize::from(c.dir & 1)] += c.bytes.len() as u128;
        streams[usize::from(c.dir & 1)].extend_from_slice(&c.bytes);
    }
    rec.closed(Dir::ClientToServer);
    rec.closed(Dir::ServerToClient);
    drop(rec);
    let (mut total, mut truncated, mut kept) = ([0u128; 2], [false; 2], [Vec::new(), Vec::new()]);
    while let Ok(step) = rx.try_recv() {
        check_step(&step)?;
        if !step.carried_by.is_empty() {
            // A message carried inside TLS records: its bytes are theirs, counted with them; the
            // records it names came before it.
            ensure(step.carried_by.iter().all(|&c| c < step.seq), || {
                format!("step {} names carriers {:?} that come after it", step.seq, step.carried_by)
            })?;
            continue;
        }
        let d = usize::from(step.from != "client");
        total[d] += step.len as u128;
        truncated[d] |= step.truncated;
        kept[d].extend_from_slice(&step.bytes);
    }
    for d in 0..2 {
        // A long message counts its whole length, also the part that never came.
        let ok = if truncated[d] { total[d] >= fed[d] } else { total[d] == fed[d] };
        ensure(ok, || format!("direction {d}: {} bytes fed, the steps count {}", fed[d], total[d]))?;
        // Where every step kept all its bytes, they are the stream, in order.
        ensure(truncated[d] || kept[d] == streams[d], || {
            format!("direction {d}: the steps' bytes are not the stream")
        })?;
    }
    Ok(())
}

/// A recorded step: its fields within the bytes it keeps, at most 64 KiB kept, never more than
/// its length.
fn check_step(step: &Step) -> Result<(), String> {
    let what = format!("step {} {:?}", step.seq, step.kind);
    ensure(step.bytes.len() <= KEEP_BYTES, || format!("{what}: keeps {} bytes", step.bytes.len()))?;
    ensure(step.bytes.len() <= step.len, || format!("{what}: keeps {} of {} bytes", step.bytes.len(), step.len))?;
    ensure(step.truncated == (step.bytes.len() < step.len), || format!("{what}: truncated is {}", step.truncated))?;
    fields_within(&step.fields, step.bytes.len(), &what)
}

// ---- WebSocket ----------------------------------------------------------------------------------

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn ws_pair() -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    let (c, s) = protolab::labs::ws::decoder::WsDecoder::pair();
    (Box::new(c), Box::new(s))
}

/// A client's frame (masked) and a server's (not).
fn client_frame(fin: bool, op: Opcode, payload: &[u8]) -> Chunk {
    Chunk::new(0, frame::emit(fin, op, Some(KEY), payload))
}

fn server_frame(fin: bool, op: Opcode, payload: &[u8]) -> Chunk {
    Chunk::new(1, frame::emit(fin, op, None, payload))
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason.as_bytes()].concat()
}

fn ws_head_corpus() -> Vec<Input> {
    let busy = protolab::labs::find("ws").unwrap().busy().unwrap();
    let refusal_body = "not a WebSocket upgrade: Sec-WebSocket-Version must be 13\n";
    let refusal = format!(
        "HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{refusal_body}",
        refusal_body.len()
    );
    let rfc_request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
    let rfc_response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
    let key = "x3JJHMbDL1EzLkh9GBhXDw==";
    let curl = format!(
        "GET /echo?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: curl/8.5.0\r\naccept: */*\r\nupgrade: WebSocket\r\n\
connection: keep-alive, Upgrade\r\nsec-websocket-key:{key}\r\nsec-websocket-version: 13\r\n\r\n"
    );
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        frame::accept_key(key)
    );
    vec![
        Input::new(vec![
            Chunk::new(0, REQUEST),
            Chunk::new(1, RESPONSE),
            client_frame(true, Opcode::Text, b"hello from protolab"),
            server_frame(true, Opcode::Text, b"hello from protolab"),
            client_frame(true, Opcode::Close, &close_payload(1000, "bye")),
            server_frame(true, Opcode::Close, &close_payload(1000, "bye")),
        ]),
        Input::new(vec![Chunk::new(0, rfc_request.as_slice()), Chunk::new(1, rfc_response.as_slice())]),
        Input::new(vec![Chunk::new(0, curl.as_bytes()), Chunk::new(1, answer.as_bytes())]),
        Input::new(vec![Chunk::new(0, REQUEST), Chunk::new(1, busy)]),
        Input::new(vec![Chunk::new(0, [&REQUEST[..REQUEST.len() - 2], b"Sec-WebSocket-Version: 8\r\n\r\n"].concat())]),
        Input::new(vec![Chunk::new(0, REQUEST), Chunk::new(1, refusal.as_bytes())]),
        Input::new(vec![
            Chunk::new(0, b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".as_slice()),
            Chunk::new(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".as_slice()),
        ]),
        // The answer alone (the request was not seen), then the wrong accept value.
        Input::new(vec![Chunk::new(1, RESPONSE)]),
        Input::new(vec![Chunk::new(0, curl.as_bytes()), Chunk::new(1, RESPONSE)]),
        // The request and its first frame in one write; a TLS hello where a head should be.
        Input::new(vec![
            Chunk::new(0, [REQUEST, &frame::emit(true, Opcode::Binary, Some(KEY), &[7; 300])].concat()),
            Chunk::new(1, RESPONSE),
        ]),
        Input::new(vec![Chunk::new(0, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\n".as_slice())]),
    ]
}

fn ws_frame_corpus() -> Vec<Input> {
    let big = frame::emit(true, Opcode::Binary, Some([1, 2, 3, 4]), &[0x5a; KEEP_BYTES + 4]);
    let text: Vec<u8> = "héllo wörld ".repeat(20).into_bytes();
    vec![
        Input::new(vec![client_frame(true, Opcode::Text, b"Hello"), server_frame(true, Opcode::Text, b"Hello")]),
        Input::new(vec![client_frame(true, Opcode::Binary, &[7; 300]), server_frame(true, Opcode::Binary, &[7; 300])]),
        Input::new(vec![
            client_frame(true, Opcode::Ping, b"are you there?"),
            server_frame(true, Opcode::Pong, b"are you there?"),
        ]),
        Input::new(vec![
            client_frame(true, Opcode::Close, &close_payload(1000, "bye")),
            server_frame(true, Opcode::Close, &close_payload(1000, "bye")),
        ]),
        Input::new(vec![
            client_frame(false, Opcode::Text, &text[..7]),
            client_frame(true, Opcode::Ping, b""),
            client_frame(true, Opcode::Continuation, &text[7..]),
            server_frame(true, Opcode::Text, &text),
        ]),
        Input::new(vec![
            client_frame(true, Opcode::Close, b""),
            server_frame(true, Opcode::Close, &close_payload(1002, "protocol error")),
        ]),
        // RFC 6455 §5.7's examples.
        Input::new(vec![
            Chunk::new(1, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
            Chunk::new(0, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]),
            Chunk::new(0, [0x01, 0x83, 0, 0, 0, 0, 0x48, 0x65, 0x6c, 0x80, 0x82, 0, 0, 0, 0, 0x6c, 0x6f]),
            Chunk::new(1, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        ]),
        // A frame just past the bytes kept, its start held first (the fuzzer's first find).
        Input::new(vec![Chunk::new(0, &big[..KEEP_BYTES - 1000]), Chunk::new(0, &big[KEEP_BYTES - 1000..])]),
        Input::new(vec![Chunk::new(0, frame::emit(true, Opcode::Binary, Some(KEY), &[1; 65536]))]),
        // Frames that break a rule: reserved opcode, RSV bits, an unmasked client frame, a
        // 64-bit length with its top bit, a length not in its shortest form, a long ping, text
        // that is not UTF-8, a close code that may not be sent, a close of one byte.
        Input::new(vec![
            Chunk::new(0, [0x83, 0x80, 1, 2, 3, 4]),
            Chunk::new(0, [0xc1, 0x80, 1, 2, 3, 4]),
            Chunk::new(0, [0x81, 0x02, b'h', b'i']),
            Chunk::new(0, [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Chunk::new(0, [0x82, 0xfe, 0, 3, 1, 2, 3, 4, 1, 2, 3]),
            client_frame(true, Opcode::Ping, &[b'x'; 200]),
            client_frame(true, Opcode::Text, b"\xff\xfe"),
            client_frame(true, Opcode::Close, &close_payload(1005, "")),
            client_frame(true, Opcode::Close, b"x"),
            server_frame(true, Opcode::Text, b"fine"),
        ]),
        // Many small frames in one write.
        Input::new(vec![Chunk::new(
            0,
            (0..40u8).flat_map(|i| frame::emit(true, Opcode::Binary, Some([i, 1, 2, 3]), &[i; 9])).collect::<Vec<_>>(),
        )]),
    ]
}

/// A head's ranges lie in it and hold what it says; a refusal's length lies in the buffer.
fn check_http(buf: &[u8]) -> Result<(), String> {
    match HttpHead::parse(buf) {
        Err(http::Error::Incomplete) => Ok(()),
        Err(http::Error::Invalid(reason, len)) => ensure(len >= 1 && len <= buf.len(), || {
            format!("http: invalid ({reason}) with length {len} of {}", buf.len())
        }),
        Ok(head) => {
            ensure(head.len >= 4 && head.len <= buf.len() && buf[..head.len].ends_with(b"\r\n\r\n"), || {
                format!("http: head of {} bytes in {}", head.len, buf.len())
            })?;
            let ranges = head
                .start
                .iter()
                .map(|(s, r)| (*s, r.clone()))
                .chain(head.headers.iter().map(|(_, v, r)| (*v, r.clone())));
            for (text, r) in ranges {
                ensure(r.start <= r.end && r.end <= head.len && &buf[r.clone()] == text.as_bytes(), || {
                    format!("http: {text:?} said to be at {r:?}")
                })?;
            }
            Ok(())
        }
    }
}

/// A frame head's lengths lie in the frame, and its checks do not panic.
fn check_ws_head(buf: &[u8]) -> Result<(), String> {
    let Ok(head) = frame::Head::check(buf) else { return Ok(()) };
    ensure((2..=14).contains(&head.head_len) && head.head_len <= buf.len(), || {
        format!("frame head of {} bytes in {}", head.head_len, buf.len())
    })?;
    let r = head.payload_range(buf.len());
    ensure(r.start <= r.end && r.end <= buf.len() && head.frame_len() >= head.head_len as u64, || {
        format!("payload at {r:?} of {} bytes", buf.len())
    })?;
    let _ = head.violation();
    Ok(())
}

fn run_ws_head(input: &Input) -> Result<(), String> {
    drive(ws_pair(), &[], input)?;
    record("ws", ws_pair(), &[], input)?;
    for d in 0..2 {
        check_http(&input.stream(d))?;
    }
    for c in &input.chunks {
        check_http(&c.bytes)?;
    }
    Ok(())
}

fn run_ws_frame(input: &Input) -> Result<(), String> {
    let handshake = [Chunk::new(0, REQUEST), Chunk::new(1, RESPONSE)];
    drive(ws_pair(), &handshake, input)?;
    record("ws", ws_pair(), &handshake, input)?;
    for d in 0..2 {
        // Walk the frames of each direction as a reader would.
        let s = input.stream(d);
        let mut at = 0;
        while at < s.len() {
            check_ws_head(&s[at..])?;
            match frame::Head::check(&s[at..]) {
                Ok(head) if head.frame_len() <= (s.len() - at) as u64 => at += head.frame_len() as usize,
                _ => break,
            }
        }
    }
    for c in &input.chunks {
        check_ws_head(&c.bytes)?;
    }
    Ok(())
}

// ---- SMTP ---------------------------------------------------------------------------------------

fn smtp_pair() -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    protolab::labs::smtp::decoder::decoders(false)
}

fn session() -> Session {
    Session::new(Arc::new(Config::default()), Mailbox::default(), "192.0.2.1:49152".parse().unwrap())
}

/// A dialogue with the lab's own server: the greeting, then each client line and its reply
/// (the message text goes as one chunk, its replies after the `.` line).
fn dialogue(lines: &[&[u8]]) -> Input {
    let mut s = session();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let mut chunks = vec![Chunk::new(1, s.greeting().emit())];
    for line in lines {
        let mut rest: &[u8] = line;
        let mut replies = Vec::new();
        while let Some((_, _, n)) = next_line(rest) {
            if let Some(r) = s.input(&rest[..n], now) {
                replies.extend(r.emit());
            }
            rest = &rest[n..];
        }
        chunks.push(Chunk::new(0, *line));
        if !replies.is_empty() {
            chunks.push(Chunk::new(1, replies));
        }
    }
    Input::new(chunks)
}

fn smtp_corpus() -> Vec<Input> {
    let text: &[u8] = b"Subject: Hello\r\nFrom: alice@client.lab\r\nTo: bob@protolab.test\r\nMessage-ID: <1@x>\r\n\
X-Folded: a\r\n\tb\r\n\r\nHi Bob,\r\n..a line that starts with a dot\r\n\r\n.\r\n";
    let long_line = [b"NOOP ".as_slice(), &[b'x'; 600], b"\r\n"].concat();
    let long_text = [b"Subject: long\r\n\r\n".as_slice(), &[b'y'; 1200], b"\r\n.\r\n"].concat();
    let mut replies = Input::new(vec![
        Chunk::new(0, b"EHLO x\r\n".as_slice()),
        Chunk::new(1, b"220-first line\r\n220-second\r\n220 last\r\n".as_slice()),
        Chunk::new(1, b"250\r\n421 4.3.2 busy, try later\r\n250 caf\xe9 Latin-1\r\n".as_slice()),
        Chunk::new(1, b"250-a\r\n251 b\r\nhello there\r\n2500 x\r\n250-x\n550 5.1.1 no such user\r\n".as_slice()),
    ]);
    replies.keep = 512;
    vec![
        dialogue(&[
            b"EHLO client.lab\r\n",
            b"MAIL FROM:<alice@client.lab> SIZE=99 BODY=8BITMIME\r\n",
            b"RCPT TO:<bob@protolab.test>\r\n",
            b"DATA\r\n",
            text,
            b"QUIT\r\n",
        ]),
        // Pipelined (RFC 2920): the commands in one write, the text before its 354.
        dialogue(&[
            b"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nRCPT TO:<@relay.example:bob@protolab.test>\r\nDATA\r\n",
            b".\r\n",
            b"QUIT\r\n",
        ]),
        dialogue(&[
            b"HELO client.lab\r\n",
            b"VRFY bob\r\n",
            b"HELP MAIL\r\n",
            b"HELP\r\n",
            b"NOOP\r\n",
            b"RSET\r\n",
            b"STARTTLS\r\n",
            b"GARBAGE\r\n",
            b"MAIL FROM:nobody\r\n",
            b"NOOP\n",
            &long_line,
            b"\xff\xfe\r\n",
            b"mail from:<a\x00@b.c>\r\n",
            b"QUIT please\r\n",
            b"QUIT\r\n",
        ]),
        // A DATA refused, a relay refused, a size refused, then a text with every flaw.
        dialogue(&[
            b"EHLO x\r\n",
            b"DATA\r\n",
            b"MAIL FROM:<a@b.c> SIZE=99999999999\r\n",
            b"MAIL FROM:<a@b.c>\r\n",
            b"RCPT TO:<c@elsewhere.example>\r\n",
            b"RCPT TO:<c@protolab.test> NOTIFY=NEVER\r\n",
            b"RCPT TO:<c@protolab.test>\r\n",
            b"DATA\r\n",
            &long_text,
            b"MAIL FROM:<a@b.c>\r\n",
            b"RCPT TO:<c@protolab.test>\r\n",
            b"DATA\r\n",
            b"a bare LF\n.\nnot the end\r\n.\r\n",
            b"QUIT\r\n",
        ]),
        replies,
    ]
}

/// Our server's reply reads back with our own reply parser, whole and the same.
fn check_reply(reply: &Reply) -> Result<(), String> {
    let bytes = reply.emit();
    match Reply::parse(&bytes) {
        Ok((back, len)) if len == bytes.len() && back == *reply => Ok(()),
        other => Err(format!("the server's reply {:?} reads back as {other:?}", String::from_utf8_lossy(&bytes))),
    }
}

/// The lab's server fed the client's bytes, line by line as its reader cuts them.
fn run_session(stream: &[u8]) -> Result<(), String> {
    let mut s = session();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    check_reply(&s.greeting())?;
    let mut rest = stream;
    while s.state() != State::Quit {
        let reply = if let Some((_, _, n)) = next_line(rest).filter(|&(_, _, n)| n <= s.line_limit()) {
            let line = &rest[..n];
            rest = &rest[n..];
            s.input(line, now)
        } else if let Some(lf) = rest.iter().position(|&b| b == b'\n') {
            // A line over the limit: the reader drops it and says how long it was.
            rest = &rest[lf + 1..];
            s.too_long(lf + 1)
        } else {
            break;
        };
        if let Some(r) = reply {
            check_reply(&r)?;
        }
    }
    Ok(())
}

/// Replies read one after another, as the lab's client reads them.
fn run_replies(stream: &[u8]) -> Result<(), String> {
    let mut rest = stream;
    while !rest.is_empty() {
        match Reply::parse(rest) {
            Ok((reply, len)) => {
                ensure(len >= 1 && len <= rest.len() && !reply.lines.is_empty(), || {
                    format!("reply of {len} bytes in {}", rest.len())
                })?;
                rest = &rest[len..];
            }
            Err(ReplyError::Invalid { reason, len }) => {
                ensure(len >= 1 && len <= rest.len(), || {
                    format!("invalid reply ({reason}) of {len} bytes in {}", rest.len())
                })?;
                rest = &rest[len..];
            }
            Err(ReplyError::Incomplete) => break,
        }
    }
    Ok(())
}

fn run_smtp_command(input: &Input) -> Result<(), String> {
    drive(smtp_pair(), &[], input)?;
    record("smtp", smtp_pair(), &[], input)?;
    run_session(&input.stream(0))
}

fn run_smtp_reply(input: &Input) -> Result<(), String> {
    drive(smtp_pair(), &[], input)?;
    record("smtp", smtp_pair(), &[], input)?;
    run_replies(&input.stream(1))
}

// ---- TLS ----------------------------------------------------------------------------------------

fn tls_pair() -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    protolab::labs::smtp::decoder::decoders(true)
}

/// Real exchanges between our TLS client and server, in memory: their secrets are in the
/// process's key log, so the records a mutation leaves intact are opened as in a lab run.
fn tls_corpus() -> Vec<Input> {
    protolab::tls::set_ca_dir(std::env::temp_dir().join("protolab-fuzz-ca"));
    let configs = || (protolab::tls::server_config().unwrap(), protolab::tls::client_config(None).unwrap());
    let exchange = |client: &[&[u8]], server: &[&[u8]]| {
        let (s, c) = configs();
        let wire = protolab::tls::in_memory(s, c, client, server).unwrap();
        Input::new(wire.into_iter().map(|(d, b)| Chunk::new(d, b)).collect())
    };
    let long = [b"Subject: long\r\n\r\n".as_slice(), &b"a line of the text\r\n".repeat(2000), b".\r\n"].concat();
    vec![
        exchange(&[], &[b"220 protolab.test ESMTP\r\n"]),
        exchange(
            &[b"EHLO client.lab\r\n", b"AUTH PLAIN AGFsaWNlAGxhYg==\r\n"],
            &[b"220 hi\r\n250-x\r\n250 AUTH PLAIN\r\n"],
        ),
        exchange(&[b"DATA\r\n", &long], &[b"354 go ahead\r\n", b"250 OK\r\n"]),
        Input::new(vec![
            Chunk::new(0, b"EHLO plain.lab\r\n".as_slice()),
            Chunk::new(1, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32].as_slice()),
        ]),
    ]
}

fn run_tls(input: &Input) -> Result<(), String> {
    drive(tls_pair(), &[], input)?;
    record("smtp", tls_pair(), &[], input)
}

// ---- POP3 ---------------------------------------------------------------------------------------

fn pop3_pair() -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    protolab::labs::pop3::decoder::decoders(false)
}

fn pop3_corpus() -> Vec<Input> {
    let retr =
        b"+OK 120 octets\r\nFrom: alice@a.lab\r\nSubject: hi\r\nMessage-ID: <1@a.lab>\r\n\r\n..dot\r\nbye\r\n.\r\n";
    let mut long = Input::new(vec![
        Chunk::new(1, b"+OK ready\r\n".as_slice()),
        Chunk::new(0, b"RETR 1\r\n".as_slice()),
        Chunk::new(1, [b"+OK\r\n".as_slice(), &b"line of the message\r\n".repeat(40), b".\r\n"].concat()),
    ]);
    long.keep = 256;
    vec![
        Input::new(vec![
            Chunk::new(1, b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n".as_slice()),
            Chunk::new(0, b"CAPA\r\n".as_slice()),
            Chunk::new(1, b"+OK\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n".as_slice()),
            Chunk::new(0, b"USER bob\r\nPASS lab\r\n".as_slice()),
            Chunk::new(1, b"+OK bob\r\n+OK 1 message\r\n".as_slice()),
            Chunk::new(0, b"STAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\n".as_slice()),
            Chunk::new(1, b"+OK 1 120\r\n+OK 1 messages\r\n1 120\r\n.\r\n+OK 1 0001\r\n".as_slice()),
            Chunk::new(1, retr.as_slice()),
            Chunk::new(0, b"DELE 1\r\nRETR 1\r\nQUIT\r\n".as_slice()),
            Chunk::new(1, b"+OK deleted\r\n-ERR no such message\r\n+OK bye\r\n".as_slice()),
        ]),
        long,
        Input::new(vec![
            Chunk::new(1, b"+OK hi\r\n".as_slice()),
            Chunk::new(0, [b"USER ".as_slice(), &[b'x'; 300], b"\r\nNOPE\r\nSTLS\r\n"].concat()),
            Chunk::new(1, b"-ERR too long\r\n-ERR what\r\n+OK begin TLS\r\n\x16\x03\x01".as_slice()),
        ]),
    ]
}

fn run_pop3(input: &Input) -> Result<(), String> {
    drive(pop3_pair(), &[], input)?;
    record("pop3", pop3_pair(), &[], input)?;
    pop3_session(&input.stream(0))
}

/// The client's bytes, line by line, to the lab's server: each answer must read back with our
/// own decoder as a well-formed response to that very line.
fn pop3_session(client: &[u8]) -> Result<(), String> {
    use protolab::labs::pop3::server::Session;
    let mailbox = Mailbox::default();
    mailbox.deliver(protolab::labs::smtp::Mail {
        id: mailbox.next_id(),
        reverse_path: "alice@client.lab".into(),
        forward_paths: vec![protolab::labs::smtp::client::RECIPIENT.into()],
        client_domain: "client.lab".into(),
        peer: "127.0.0.1:1".parse().unwrap(),
        received: std::time::UNIX_EPOCH,
        content: b"Subject: hi\r\nMessage-ID: <1@lab>\r\n\r\n.\r\n..\r\n.x\r\nbye\r\n".to_vec(),
    });
    let mut session = Session::new(mailbox);
    let (mut commands, mut responses) = pop3_pair();
    // Each answer is read as it comes, before the next line: a client that waits for answers
    // (one that pipelines hundreds of lines may outrun the decoder's bounded memory of them).
    let mut answers = Vec::new();
    let mut read = |bytes: Vec<u8>, answers: &mut Vec<u8>| read_back(responses.as_mut(), answers, bytes);
    read(session.greeting().emit(), &mut answers)?;
    let mut rest = client;
    // A line at each LF, as the server's reader takes them.
    while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..lf + 1];
        rest = &rest[lf + 1..];
        let mut buf = line.to_vec();
        while let Decoded::Message { len, .. } = commands.decode(&buf, 65536) {
            buf.drain(..len);
        }
        let response = session.line(line);
        read(response.emit(), &mut answers)?;
        // After STLS's +OK the server's socket loop starts TLS: what follows is records.
        if response.close || session.tls().take_starting() {
            break;
        }
    }
    Ok(())
}

/// A server's answer, read with our own decoder before the next input: it must read whole and
/// well-formed. `answers` holds what is left of earlier answers (nothing, if they read whole).
fn read_back(responses: &mut dyn Decoder, answers: &mut Vec<u8>, bytes: Vec<u8>) -> Result<(), String> {
    answers.extend(bytes);
    loop {
        match responses.decode(answers, 1 << 20) {
            Decoded::Message { msg, len } => {
                if let Some(why) = msg.malformed {
                    return Err(format!("the server's answer reads as malformed: {why}: {:?}", msg.summary));
                }
                answers.drain(..len);
            }
            Decoded::Incomplete if answers.is_empty() => return Ok(()),
            other => return Err(format!("the server's answer does not read whole: {other:?}")),
        }
    }
}

// ---- IMAP ---------------------------------------------------------------------------------------

fn imap_pair() -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    protolab::labs::imap::decoder::decoders(false)
}

fn imap_corpus() -> Vec<Input> {
    let mut long = Input::new(vec![
        Chunk::new(1, b"* OK ready\r\n".as_slice()),
        Chunk::new(0, b"a1 FETCH 1 BODY[]\r\n".as_slice()),
        Chunk::new(1, [b"* 1 FETCH (BODY[] {400}\r\n".as_slice(), &[b'x'; 400], b")\r\na1 OK done\r\n"].concat()),
    ]);
    long.keep = 128;
    vec![
        Input::new(vec![
            Chunk::new(1, b"* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] ready\r\n".as_slice()),
            Chunk::new(0, b"a1 CAPABILITY\r\na2 LOGIN {3}\r\n".as_slice()),
            Chunk::new(1, b"* CAPABILITY IMAP4rev2 IDLE\r\na1 OK done\r\n+ go ahead\r\n".as_slice()),
            Chunk::new(0, b"bob \"lab\"\r\na3 SELECT INBOX\r\n".as_slice()),
            Chunk::new(1, b"a2 OK in\r\n* 2 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\na3 OK [READ-WRITE] done\r\n".as_slice()),
            Chunk::new(0, b"a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY[TEXT]<0.4>)\r\n".as_slice()),
            Chunk::new(
                1,
                b"* 1 FETCH (UID 1 FLAGS (\\Seen) BODY[HEADER.FIELDS (SUBJECT)] {12}\r\nSubject: x\r\n BODY[TEXT]<0> {4}\r\nabcd)\r\na4 OK done\r\n"
                    .as_slice(),
            ),
            Chunk::new(0, b"a5 IDLE\r\n".as_slice()),
            Chunk::new(1, b"+ idling\r\n* 3 EXISTS\r\n* 1 EXPUNGE\r\n".as_slice()),
            Chunk::new(0, b"DONE\r\na6 LOGOUT\r\n".as_slice()),
            Chunk::new(1, b"a5 OK idle done\r\n* BYE bye\r\na6 OK bye\r\n".as_slice()),
        ]),
        long,
        Input::new(vec![
            Chunk::new(1, b"* OK hi\r\n".as_slice()),
            Chunk::new(0, b"a AUTHENTICATE PLAIN\r\nAGJvYgBsYWI=\r\nb LOGIN {4294967295}\r\n\r\nc FROB (\r\n".as_slice()),
            Chunk::new(1, b"+ \r\na OK in\r\nb BAD too big\r\n* BAD what\r\nc BAD no\r\n".as_slice()),
        ]),
    ]
}

fn run_imap(input: &Input) -> Result<(), String> {
    drive(imap_pair(), &[], input)?;
    record("imap", imap_pair(), &[], input)?;
    imap_session(&input.stream(0))
}

/// The client's bytes to the lab's IMAP server, framed as its socket loop frames them: each
/// answer must read back with our own decoder, whole and well-formed, before the next input.
fn imap_session(client: &[u8]) -> Result<(), String> {
    use protolab::labs::imap::server::Session;
    use protolab::labs::imap::wire::{MAX_COMMAND_LITERAL, MAX_LINE, Scan, literal_at_end, scan};
    let mailbox = Mailbox::default();
    mailbox.welcome(protolab::labs::smtp::mailbox::ACCOUNTS[0], std::time::UNIX_EPOCH);
    let mut session = Session::new(mailbox);
    let (mut commands, mut responses) = imap_pair();
    let mut answers = Vec::new();
    let mut read = |bytes: Vec<u8>, answers: &mut Vec<u8>| read_back(responses.as_mut(), answers, bytes);
    let mut client_buf = Vec::new();
    let mut feed = |bytes: &[u8]| {
        client_buf.extend_from_slice(bytes);
        while let Decoded::Message { len, .. } = commands.decode(&client_buf, 65536) {
            client_buf.drain(..len);
        }
    };
    read(session.greeting().bytes, &mut answers)?;
    let mut rest = client;
    while !rest.is_empty() {
        let out = if session.continuing() {
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else { break };
            let line = &rest[..end + 2];
            rest = &rest[end + 2..];
            feed(line);
            session.input(line)
        } else {
            match scan(rest, MAX_COMMAND_LITERAL) {
                Scan::Whole(n) => {
                    let command = &rest[..n];
                    rest = &rest[n..];
                    feed(command);
                    session.input(command)
                }
                Scan::Incomplete | Scan::Awaits { .. } => break,
                Scan::TooLong(n) if rest[..n].ends_with(b"\r\n") && n > MAX_LINE => {
                    feed(&rest[..n]);
                    let out = session.refuse(rest, "too long", false);
                    rest = &rest[n..];
                    out
                }
                Scan::TooLong(_) => break,
                Scan::TooBig { len, .. } => {
                    let sync = literal_at_end(&rest[..len - 2]).is_some_and(|(_, s)| s);
                    feed(&rest[..len]);
                    let out = session.refuse(rest, "too big", !sync);
                    rest = &rest[len..];
                    out
                }
            }
        };
        let close = out.close;
        read(out.bytes, &mut answers)?;
        // After STARTTLS's OK the server's socket loop starts TLS: what follows is records.
        if close || session.tls().take_starting() {
            break;
        }
    }
    Ok(())
}

// ---- DHCP ---------------------------------------------------------------------------------------

/// The xid of every corpus message; the client under test gets its own xid in its place.
const XID: u32 = 0x3903_f326;

fn with_xid(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes[4..8].copy_from_slice(&XID.to_be_bytes());
    bytes
}

fn client_chunk(out: Option<Outgoing>) -> Chunk {
    Chunk::new(0, with_xid(out.expect("the client sends").bytes()))
}

fn server_chunk(server: &mut Server, request: &Chunk, now: Instant) -> Chunk {
    Chunk::new(1, with_xid(server.handle_bytes(&request.bytes, now).expect("the server answers").bytes()))
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn dhcp_corpus() -> Vec<Input> {
    let mut corpus = Vec::new();
    // DORA, then renewing at T1 (60 s), rebinding at T2 (105 s), an INFORM, and a RELEASE.
    let mut server = Server::default();
    let mut client = Client::new(ClientConfig::default());
    let discover = client_chunk(client.start(secs(0)));
    let offer = server_chunk(&mut server, &discover, secs(0));
    let request =
        client_chunk(client.on_message(&dhcp_wire::parse(&offer.bytes).unwrap().with_xid(client.xid().0), secs(1)));
    let ack = server_chunk(&mut server, &request, secs(1));
    client.on_message(&dhcp_wire::parse(&ack.bytes).unwrap().with_xid(client.xid().0), secs(1));
    corpus.push(Input::new(vec![discover, offer, request, ack.clone()]));
    let renew = client_chunk(client.on_timer(secs(61)));
    let renewed = server_chunk(&mut server, &renew, secs(61));
    corpus.push(Input::new(vec![renew.clone(), renewed.clone()]));
    // Past T2 without an answer: rebinding, by broadcast.
    let mut rebinding = client.clone();
    let mut rebind = None;
    for _ in 0..8 {
        if rebinding.state() == protolab::labs::dhcp::client::State::Rebinding {
            break;
        }
        let at = rebinding.next_timer().expect("a timer");
        rebind = rebinding.on_timer(at).or(rebind);
    }
    let rebind = client_chunk(rebind);
    let rebound = server_chunk(&mut server.clone(), &rebind, secs(110));
    corpus.push(Input::new(vec![rebind, rebound]));
    client.on_message(&dhcp_wire::parse(&renewed.bytes).unwrap().with_xid(client.xid().0), secs(61));
    let inform = client_chunk(client.inform(secs(62)));
    let informed = server_chunk(&mut server, &inform, secs(62));
    corpus.push(Input::new(vec![inform, informed]));
    let decline = client_chunk(client.clone().decline(secs(63)));
    corpus.push(Input::new(vec![decline]));
    let release = client_chunk(client.release(secs(64)));
    corpus.push(Input::new(vec![release]));
    // INIT-REBOOT asking for an address outside the pool: a NAK.
    let mut server = Server::default();
    let config = ClientConfig { requested_ip: Some("192.0.2.200".parse().unwrap()), ..ClientConfig::default() };
    let reboot = client_chunk(Client::new(config).start(secs(0)));
    let nak = server_chunk(&mut server, &reboot, secs(0));
    corpus.push(Input::new(vec![reboot, nak, ack]));
    // A DISCOVER with options the lab's client does not send.
    let mut m = dhcp_wire::parse(&corpus[0].chunks[0].bytes).unwrap();
    m.opts_mut().insert(v4::DhcpOption::Hostname("client-host".into()));
    m.opts_mut().insert(v4::DhcpOption::ClassIdentifier(b"protolab 1.0".to_vec()));
    m.opts_mut().insert(v4::DhcpOption::MaxMessageSize(1500));
    m.opts_mut().insert(v4::DhcpOption::Unknown(v4::UnknownOption::new(v4::OptionCode::from(224), vec![0xde, 0xad])));
    let raw = m.to_vec().unwrap();
    corpus.push(Input::new(vec![Chunk::new(0, raw)]));
    corpus
}

/// A decoded message with its xid set: the corpus's stands for the client's own.
trait WithXid {
    fn with_xid(self, xid: u32) -> Self;
}

impl WithXid for v4::Message {
    fn with_xid(mut self, xid: u32) -> Self {
        let x = self.xid() ^ XID ^ xid;
        self.set_xid(x);
        self
    }
}

/// What our client or server sends reads back with our own parser.
fn check_dhcp_out(who: &str, bytes: Vec<u8>) -> Result<(), String> {
    dhcp_wire::parse(&bytes).map(|_| ()).map_err(|e| format!("the {who}'s message does not parse: {e}"))
}

fn run_dhcp(input: &Input) -> Result<(), String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = StepSink::new("dhcp", tx);
    let mut server = Server::default();
    let mut client = Client::new(ClientConfig::default());
    if let Some(out) = client.start(Instant::ZERO) {
        check_dhcp_out("client", out.bytes())?;
    }
    for (i, c) in input.chunks.iter().enumerate() {
        let now = secs(5 * i as u64);
        let p = &c.bytes;
        let msg = dhcp_wire::describe(p, 0);
        fields_within(&msg.fields, p.len(), &format!("dhcp {:?}", msg.kind))?;
        let msg_ok = msg.malformed.is_none();
        let (from, to) = if c.dir == 0 { ("client", "server") } else { ("server", "client") };
        sink.emit(msg.into_step(from, to, p.to_vec(), p.len()));
        let parsed = dhcp_wire::parse(p);
        // A message its step calls well-formed is one the lab's server and client act on.
        ensure(msg_ok == parsed.is_ok(), || {
            format!("dhcp: the step says malformed: {:?}, parse says {:?}", !msg_ok, parsed.as_ref().err())
        })?;
        let mut to_client = Vec::new();
        if c.dir == 0 {
            if let Some(reply) = server.handle_bytes(p, now) {
                let bytes = reply.bytes();
                check_dhcp_out("server", bytes.clone())?;
                to_client.extend(dhcp_wire::parse(&bytes).ok());
            }
        } else {
            to_client.extend(parsed.ok());
        }
        for m in to_client {
            if let Some(out) = client.on_message(&m.with_xid(client.xid().0), now) {
                check_dhcp_out("client", out.bytes())?;
            }
        }
        for _ in 0..8 {
            match client.next_timer() {
                Some(t) if t <= now => {
                    if let Some(out) = client.on_timer(t) {
                        check_dhcp_out("client", out.bytes())?;
                    }
                }
                _ => break,
            }
        }
    }
    drop(sink);
    drop(rx);
    Ok(())
}

// ---- Ethernet frames ----------------------------------------------------------------------------

mod frames {
    //! The frame corpus: a TCP connection, a refused one, ARP, ICMP, UDP, DHCP, and oddities,
    //! built with etherparse as the lab's stacks would send them.
    use super::Chunk;
    use etherparse::{
        ArpHardwareId, ArpOperation, ArpPacket, EtherType, IpHeaders, IpNumber, Ipv4Header, PacketBuilder,
        PacketBuilderStep, TcpOptionElement,
    };

    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const CLIENT_IP: [u8; 4] = [192, 0, 2, 1];
    const SERVER_IP: [u8; 4] = [192, 0, 2, 2];
    const C_ISN: u32 = 2_847_561_033;
    const S_ISN: u32 = 1_000;

    fn ip(dir: u8, protocol: IpNumber) -> PacketBuilderStep<IpHeaders> {
        let (smac, dmac, src, dst) = if dir == 0 {
            (CLIENT_MAC, SERVER_MAC, CLIENT_IP, SERVER_IP)
        } else {
            (SERVER_MAC, CLIENT_MAC, SERVER_IP, CLIENT_IP)
        };
        let mut ip = Ipv4Header::new(0, 64, protocol, src, dst).unwrap();
        ip.dont_fragment = true;
        ip.identification = 0x1c46;
        PacketBuilder::ethernet2(smac, dmac).ip(IpHeaders::Ipv4(ip, Default::default()))
    }

    fn tcp(dir: u8, seq: u32, ack: Option<u32>, flags: &str, options: &[TcpOptionElement], payload: &[u8]) -> Chunk {
        let (sp, dp) = if dir == 0 { (49152, 7) } else { (7, 49152) };
        let mut b = ip(dir, IpNumber::TCP).tcp(sp, dp, seq, 64240);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'R' => b.rst(),
                'P' => b.psh(),
                _ => b,
            };
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        if !options.is_empty() {
            b = b.options(options).unwrap();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        Chunk::new(dir, out)
    }

    pub fn connection() -> Vec<Chunk> {
        use TcpOptionElement::*;
        let syn_options =
            [MaximumSegmentSize(1460), SelectiveAcknowledgementPermitted, Timestamp(1000, 0), Noop, WindowScale(7)];
        let sack = [Noop, Noop, SelectiveAcknowledgement((S_ISN + 1, S_ISN + 5), [None, None, None])];
        vec![
            tcp(0, C_ISN, None, "S", &syn_options, b""),
            tcp(1, S_ISN, Some(C_ISN + 1), "S", &[MaximumSegmentSize(1460), WindowScale(7)], b""),
            tcp(0, C_ISN + 1, Some(S_ISN + 1), "", &[], b""),
            tcp(0, C_ISN + 1, Some(S_ISN + 1), "P", &[], b"hello, TCP\n"),
            tcp(1, S_ISN + 1, Some(C_ISN + 12), "", &sack, b""),
            tcp(1, S_ISN + 1, Some(C_ISN + 12), "P", &[Timestamp(2, 1000)], b"hello, TCP\n"),
            tcp(0, C_ISN + 12, Some(S_ISN + 12), "F", &[], b""),
            tcp(1, S_ISN + 12, Some(C_ISN + 13), "F", &[], b""),
            tcp(0, C_ISN + 13, Some(S_ISN + 13), "", &[], b""),
        ]
    }

    pub fn refused() -> Vec<Chunk> {
        vec![tcp(0, C_ISN, None, "S", &[], b""), tcp(1, 0, Some(C_ISN + 1), "R", &[], b"")]
    }

    pub fn arp() -> Vec<Chunk> {
        let request = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REQUEST,
            &CLIENT_MAC,
            &CLIENT_IP,
            &[0; 6],
            &SERVER_IP,
        )
        .unwrap();
        let reply = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REPLY,
            &SERVER_MAC,
            &SERVER_IP,
            &CLIENT_MAC,
            &CLIENT_IP,
        )
        .unwrap();
        let mut a = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, [0xff; 6]).arp(request).write(&mut a).unwrap();
        let mut b = Vec::new();
        PacketBuilder::ethernet2(SERVER_MAC, CLIENT_MAC).arp(reply).write(&mut b).unwrap();
        b.resize(60, 0);
        vec![Chunk::new(0, a), Chunk::new(1, b)]
    }

    pub fn icmp() -> Vec<Chunk> {
        let mut request = Vec::new();
        ip(0, IpNumber::ICMP).icmpv4_echo_request(0x1234, 1).write(&mut request, b"abcdefgh").unwrap();
        let mut reply = Vec::new();
        ip(1, IpNumber::ICMP).icmpv4_echo_reply(0x1234, 1).write(&mut reply, b"abcdefgh").unwrap();
        // Port unreachable, carrying the IPv4 header and 8 bytes of the datagram it answers.
        let mut unreachable = Vec::new();
        let quoted = udp(0, 5000, 5001, b"ping")[14..14 + 28].to_vec();
        ip(1, IpNumber::ICMP).icmpv4_raw(3, 3, [0; 4]).write(&mut unreachable, &quoted).unwrap();
        vec![Chunk::new(0, request), Chunk::new(1, reply), Chunk::new(1, unreachable)]
    }

    pub fn udp(dir: u8, sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ip(dir, IpNumber::UDP).udp(sp, dp).write(&mut out, payload).unwrap();
        out
    }

    /// A DHCP message as the lab's wire carries it: from 0.0.0.0:68 to everyone's port 67,
    /// or the server's answer to everyone's port 68.
    pub fn dhcp(dir: u8, payload: &[u8]) -> Chunk {
        let (smac, src, sp, dp) = if dir == 0 { (CLIENT_MAC, [0; 4], 68, 67) } else { (SERVER_MAC, SERVER_IP, 67, 68) };
        let ip = Ipv4Header::new(0, 64, IpNumber::UDP, src, [255; 4]).unwrap();
        let mut out = Vec::new();
        PacketBuilder::ethernet2(smac, [0xff; 6])
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .udp(sp, dp)
            .write(&mut out, payload)
            .unwrap();
        Chunk::new(dir, out)
    }

    pub fn odd() -> Vec<Chunk> {
        // UDP under an IPv4 header with an option (Router Alert).
        let mut ip_opts = Ipv4Header::new(0, 1, IpNumber::UDP, CLIENT_IP, [224, 0, 0, 22]).unwrap();
        ip_opts.options = [0x94, 0x04, 0, 0].into();
        let mut with_options = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, [1, 0, 0x5e, 0, 0, 22])
            .ip(IpHeaders::Ipv4(ip_opts, Default::default()))
            .udp(5000, 5001)
            .write(&mut with_options, b"ping")
            .unwrap();
        // A fragment: more fragments follow, this one at offset 0.
        let mut fragment = udp(0, 5000, 5001, &[3; 64]);
        fragment[14 + 6] = 0x20;
        let mut other = Vec::new();
        ip(0, IpNumber(253)).write(&mut other, IpNumber(253), b"1234").unwrap();
        let mut ipv6 = vec![0xff; 6];
        ipv6.extend(CLIENT_MAC);
        ipv6.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 0x3b, 64]);
        ipv6.extend([0; 32]);
        vec![
            Chunk::new(0, udp(0, 5000, 5001, &(0..300u32).map(|i| (i * 7) as u8).collect::<Vec<_>>())),
            Chunk::new(0, with_options),
            Chunk::new(0, fragment),
            Chunk::new(0, other),
            Chunk::new(0, ipv6),
        ]
    }

    pub fn data(dir: u8, seq: u32, ack: u32, payload: &[u8]) -> Chunk {
        tcp(dir, seq, Some(ack), "P", &[], payload)
    }

    pub const ISN: (u32, u32) = (C_ISN, S_ISN);
}

fn frame_corpus() -> Vec<Input> {
    let dhcp: Vec<Chunk> =
        dhcp_corpus().into_iter().flat_map(|i| i.chunks).map(|c| frames::dhcp(c.dir, &c.bytes)).collect();
    let (c, s) = frames::ISN;
    vec![
        Input::new(frames::connection()),
        Input::new(frames::refused()),
        Input::new(frames::arp()),
        Input::new(frames::icmp()),
        Input::new(frames::odd()),
        Input::new(dhcp),
        Input::new(vec![
            frames::data(0, c + 1, s + 1, REQUEST),
            frames::data(1, s + 1, c + 1 + REQUEST.len() as u32, RESPONSE),
            frames::data(0, c + 1, s + 1, b"EHLO client.lab\r\n"),
        ]),
    ]
}

fn run_frame(input: &Input) -> Result<(), String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = StepSink::new("tcp", tx);
    for c in &input.chunks {
        let f = &c.bytes;
        let msg = protolab::wire::frame::decode(f);
        fields_within(&msg.fields, f.len(), &format!("frame {:?}", msg.kind))?;
        let captured = protolab::wire::frame::decode_captured(f);
        fields_within(&captured.fields, f.len(), &format!("captured frame {:?}", captured.kind))?;
        if let Some((_, _, r)) = protolab::wire::frame::udp_payload(f) {
            ensure(r.start <= r.end && r.end <= f.len(), || format!("UDP payload at {r:?} of {} bytes", f.len()))?;
        }
        // Then as a step in a run: the moment of its conversation is read from it.
        let (from, to) = if c.dir == 0 { ("client", "server") } else { ("server", "client") };
        sink.emit(Step { frame: true, ..msg.into_step(from, to, f.to_vec(), f.len()) });
    }
    drop(sink);
    drop(rx);
    Ok(())
}
