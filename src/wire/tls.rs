//! TLS records (RFC 8446), sans-IO: the record layer, the hellos in the clear and, with the
//! traffic secrets our own endpoints logged, the encrypted records opened — the handshake
//! messages inside them named, and the application's messages inside them decoded as steps of
//! their own that name the records that carried them.
//!
//! A connection that starts in the clear (SMTP, POP3 and IMAP before STARTTLS) begins with the
//! application's decoder; the application decoder turns the [`Switch`] on when the server agrees
//! to start TLS, and from the next byte on the stream is records.

use super::{Carried, Decoded, Decoder, Message, printable};
use crate::locale::en;
use crate::session::{KEEP_BYTES, Layer, SeqCell};
use ring::{aead, hkdf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub const PROTO: &str = "TLS";
/// The record header: type, legacy version, length.
const HEADER: usize = 5;
/// RFC 8446 §5.2: a TLSCiphertext fragment is at most 2^14 + 256 octets.
const MAX_FRAGMENT: usize = (1 << 14) + 256;
/// The AEAD tag every TLS 1.3 cipher suite adds to a record (16 octets).
const TAG: usize = 16;
/// Handshake bytes kept while a message spans records (a certificate chain): more is malformed.
const MAX_HANDSHAKE: usize = 64 * 1024;
/// Decrypted application bytes held without a message boundary before they are malformed.
const MAX_PLAIN: usize = 1024 * 1024;
/// RFC 8446 §4.1.3: the random of a ServerHello that is a HelloRetryRequest (SHA-256 of the
/// words "HelloRetryRequest").
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Where the traffic secrets of a handshake can be found: the key log our endpoints write.
pub trait Secrets: Send + Sync {
    /// The secret logged under `label` (`SERVER_HANDSHAKE_TRAFFIC_SECRET`, ...) for the
    /// handshake whose ClientHello carried `client_random`.
    fn secret(&self, client_random: &[u8; 32], label: &str) -> Option<Vec<u8>>;
}

/// No secrets at all: records stay sealed (a proxy between two programs not ours).
pub struct NoSecrets;

impl Secrets for NoSecrets {
    fn secret(&self, _: &[u8; 32], _: &str) -> Option<Vec<u8>> {
        None
    }
}

/// Whether the stream is records yet. Shared by both directions and the application decoder
/// that turns it on (after `220 Ready to start TLS`).
#[derive(Debug, Clone, Default)]
pub struct Switch(Arc<AtomicBool>);

impl Switch {
    /// A switch already on: implicit TLS (ports 465, 993, 995).
    pub fn on() -> Self {
        Switch(Arc::new(AtomicBool::new(true)))
    }

    /// On for TLS from the first byte (`implicit`), else off until STARTTLS.
    pub fn new(implicit: bool) -> Self {
        Switch(Arc::new(AtomicBool::new(implicit)))
    }

    /// The server agreed: from the next byte on, both directions are records.
    pub fn turn_on(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A secret the application sent inside TLS (a password): its kind gets `.tls`, for narration
/// that says it was sealed on the wire, and its notes say so instead of "readable on the wire".
pub fn inside(msg: &mut Message) {
    msg.kind.push_str(".tls");
    msg.notes = vec![en("inside TLS: sealed on the wire; shown here because our endpoint logged the keys", &[])];
}

/// Decoders for one connection: the application's decoders `inner` inside TLS records once
/// `switch` is on; (client→server, server→client).
pub fn decoders(
    inner: (Box<dyn Decoder>, Box<dyn Decoder>),
    switch: Switch,
    secrets: Arc<dyn Secrets>,
) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let way = |dir, inner| -> Box<dyn Decoder> {
        Box::new(Tls {
            dir,
            shared: shared.clone(),
            secrets: secrets.clone(),
            switch: switch.clone(),
            inner,
            plain: Plain::default(),
            handshake: Vec::new(),
            stalled: None,
        })
    };
    (way(CLIENT, inner.0), way(SERVER, inner.1))
}

/// Direction indexes: what the client sends, what the server sends.
const CLIENT: usize = 0;
const SERVER: usize = 1;

/// The cipher suite the ServerHello chose, as far as opening records needs it.
#[derive(Debug, Clone, Copy)]
struct Suite {
    aead: &'static aead::Algorithm,
    hkdf: hkdf::Algorithm,
    /// The hash's length: the length of a next traffic secret after KeyUpdate.
    hash_len: usize,
}

impl Suite {
    fn from_code(code: u16) -> Option<Suite> {
        Some(match code {
            0x1301 => Suite { aead: &aead::AES_128_GCM, hkdf: hkdf::HKDF_SHA256, hash_len: 32 },
            0x1302 => Suite { aead: &aead::AES_256_GCM, hkdf: hkdf::HKDF_SHA384, hash_len: 48 },
            0x1303 => Suite { aead: &aead::CHACHA20_POLY1305, hkdf: hkdf::HKDF_SHA256, hash_len: 32 },
            _ => return None,
        })
    }
}

/// Which keys protect a direction's records now (RFC 8446 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    /// Before the ServerHello: records in the clear.
    Clear,
    /// The handshake traffic keys: the rest of the handshake.
    Handshake,
    /// The application traffic keys, generation n (KeyUpdate moves to n + 1).
    Application(u32),
}

/// One direction's keys.
struct Traffic {
    epoch: Epoch,
    /// The secret of the epoch, once found; the key and IV derived from it.
    opener: Option<Opener>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic { epoch: Epoch::Clear, opener: None }
    }
}

struct Opener {
    secret: Vec<u8>,
    key: aead::LessSafeKey,
    iv: [u8; 12],
    /// The record sequence number of this epoch (§5.3): the nonce's counter.
    seq: u64,
    /// A record opened so far had padding: a record's plaintext length cannot be told from its
    /// length, so none is passed over unopened.
    padded: bool,
}

impl Opener {
    fn new(suite: Suite, secret: Vec<u8>) -> Option<Opener> {
        let key = expand_label(suite.hkdf, &secret, "key", suite.aead.key_len())?;
        let iv: [u8; 12] = expand_label(suite.hkdf, &secret, "iv", 12)?.try_into().ok()?;
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(suite.aead, &key).ok()?);
        Some(Opener { secret, key, iv, seq: 0, padded: false })
    }

    /// Opens one record: (inner content type, content), or None when it does not authenticate.
    fn open(&mut self, header: &[u8], fragment: &[u8]) -> Option<(u8, Vec<u8>)> {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        let mut data = fragment.to_vec();
        let plain = self
            .key
            .open_in_place(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(header), &mut data)
            .ok()?;
        // TLSInnerPlaintext: content, the real content type, zeros of padding (§5.2).
        let end = plain.iter().rposition(|&b| b != 0)?;
        let kind = plain[end];
        self.padded |= end + 1 < plain.len();
        data.truncate(end);
        Some((kind, data))
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(alg: hkdf::Algorithm, secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let label = format!("tls13 {label}");
    let length = (len as u16).to_be_bytes();
    let info = [&length[..], &[label.len() as u8], label.as_bytes(), &[0]];
    let prk = hkdf::Prk::new_less_safe(alg, secret);
    let okm = prk.expand(&info, Len(len)).ok()?;
    let mut out = vec![0; len];
    okm.fill(&mut out).ok()?;
    Some(out)
}

/// What both directions know of the handshake.
#[derive(Default)]
struct Shared {
    client_random: Option<[u8; 32]>,
    suite: Option<Suite>,
    /// The ServerHello chose TLS 1.2: its records are sealed with keys this decoder does not derive.
    tls12: bool,
    traffic: [Traffic; 2],
    /// Records decoded each way: a record waiting for keys gives up once the other side spoke.
    records: [u64; 2],
}

/// Decrypted application bytes of one direction, until they make whole messages.
#[derive(Default)]
struct Plain {
    buf: Vec<u8>,
    /// The records that carried the bytes in `buf`.
    carriers: Vec<SeqCell>,
    /// Bytes of a long message still to pass unkept.
    skip: usize,
}

/// One direction of a connection that may carry TLS.
struct Tls {
    dir: usize,
    shared: Arc<Mutex<Shared>>,
    secrets: Arc<dyn Secrets>,
    switch: Switch,
    inner: Box<dyn Decoder>,
    plain: Plain,
    /// Handshake bytes decrypted and not yet a whole message.
    handshake: Vec<u8>,
    /// A record waits for its keys: the other direction's record count when it began to wait.
    stalled: Option<u64>,
}

fn content_type(t: u8) -> Option<&'static str> {
    Some(match t {
        20 => "change_cipher_spec",
        21 => "alert",
        22 => "handshake",
        23 => "application_data",
        24 => "heartbeat",
        _ => return None,
    })
}

/// RFC 8446 §4 and the registry: handshake message names.
fn handshake_type(t: u8) -> String {
    match t {
        1 => "client_hello",
        2 => "server_hello",
        4 => "new_session_ticket",
        5 => "end_of_early_data",
        8 => "encrypted_extensions",
        11 => "certificate",
        13 => "certificate_request",
        15 => "certificate_verify",
        20 => "finished",
        24 => "key_update",
        254 => "message_hash",
        _ => return format!("handshake_type_{t}"),
    }
    .into()
}

/// The message names people know them by, for summaries (`EncryptedExtensions`).
fn handshake_title(t: u8) -> String {
    match t {
        1 => "ClientHello".into(),
        2 => "ServerHello".into(),
        4 => "NewSessionTicket".into(),
        8 => "EncryptedExtensions".into(),
        11 => "Certificate".into(),
        13 => "CertificateRequest".into(),
        15 => "CertificateVerify".into(),
        20 => "Finished".into(),
        24 => "KeyUpdate".into(),
        t => handshake_type(t),
    }
}

pub fn cipher_suite(code: u16) -> String {
    match code {
        0x1301 => "TLS_AES_128_GCM_SHA256".into(),
        0x1302 => "TLS_AES_256_GCM_SHA384".into(),
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256".into(),
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV".into(),
        c => unnamed(c),
    }
}

/// A code without a name here: GREASE (RFC 8701, values a client sends to keep servers
/// tolerant of the unknown), or its number.
fn unnamed(code: u16) -> String {
    if code & 0x0f0f == 0x0a0a { "GREASE".into() } else { format!("0x{code:04x}") }
}

fn group(code: u16) -> String {
    match code {
        0x0017 => "secp256r1".into(),
        0x0018 => "secp384r1".into(),
        0x0019 => "secp521r1".into(),
        0x001d => "x25519".into(),
        0x001e => "x448".into(),
        0x0100 => "ffdhe2048".into(),
        0x11ec => "X25519MLKEM768".into(),
        c => unnamed(c),
    }
}

fn version(code: u16) -> String {
    match code {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        c => unnamed(c),
    }
}

/// RFC 8446 §6: alert descriptions.
fn alert(code: u8) -> String {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return format!("alert_{code}"),
    }
    .into()
}

/// A bounds-checked reader over a message, positions relative to the record's first byte.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    /// Where `buf` starts in the record.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, at: 0, base }
    }

    fn pos(&self) -> usize {
        self.base + self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            en("cut short: {n} octets announced at offset {at}, fewer left", &[("n", &n), ("at", &self.pos())])
        })?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a length prefix of `width` octets: its reader.
    fn vec(&mut self, width: usize) -> Result<Reader<'a>, String> {
        let n = match width {
            1 => self.u8()? as usize,
            _ => self.u16()? as usize,
        };
        let base = self.pos();
        Ok(Reader::new(self.take(n)?, base))
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Decoder for Tls {
    fn decode(&mut self, buf: &[u8], keep: usize) -> Decoded {
        if !self.switch.is_on() {
            return self.inner.decode(buf, keep);
        }
        if buf.len() < HEADER {
            return Decoded::Incomplete;
        }
        let kind = buf[0];
        let length = u16::from_be_bytes([buf[3], buf[4]]) as usize;
        let Some(name) = content_type(kind).filter(|_| buf[1] == 3) else {
            // Not a record: say what it looks like (a plaintext client on a TLS port).
            let msg = Message::new(Layer::Tls, PROTO, "tls.malformed", printable(&buf[..buf.len().min(80)], 60))
                .malformed(en(
                    "not a TLS record: a record starts with a content type (20-24) and version 3.x, these bytes with {start}",
                    &[("start", &format!("{:02x} {:02x} {:02x}", buf[0], buf[1], buf[2]))],
                ));
            return Decoded::Message { msg, len: buf.len() };
        };
        let len = HEADER + length;
        if length > MAX_FRAGMENT {
            // Said as one step once it is here (or the bytes a step keeps are).
            if buf.len() < len.min(keep) {
                return Decoded::Incomplete;
            }
            let msg = self.record(name, buf, format!("{name} record of {length} octets")).malformed(en(
                "a record of {n} octets: over the 2^14 + 256 that TLS allows (record_overflow)",
                &[("n", &length)],
            ));
            return Decoded::Message { msg, len };
        }
        if buf.len() < len {
            return Decoded::Incomplete;
        }
        let record = &buf[..len];
        let msg = match kind {
            22 if self.epoch() == Epoch::Clear => self.clear_handshake(record),
            23 => match self.sealed(record) {
                Some(msg) => msg,
                None => return Decoded::Incomplete,
            },
            20 => self.record(name, record, "ChangeCipherSpec (compatibility only, RFC 8446 D.4)".into()),
            21 => self.alert(record, &record[HEADER..], None),
            _ => self
                .record(name, record, format!("{name} record, {length} octets"))
                .malformed(en("a {name} record in the clear after the handshake began", &[("name", &name)])),
        };
        let mut s = self.lock();
        s.records[self.dir] += 1;
        Decoded::Message { msg, len }
    }
}

impl Tls {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn epoch(&self) -> Epoch {
        self.lock().traffic[self.dir].epoch
    }

    /// A record's step with its header fields.
    fn record(&self, name: &str, record: &[u8], summary: String) -> Message {
        let kind = match name {
            "change_cipher_spec" => "tls.change_cipher_spec",
            "alert" => "tls.alert",
            _ => "tls.record",
        };
        Message::new(Layer::Tls, PROTO, kind, summary)
            .field("TLS.content_type", name, 0..1)
            .field("TLS.record_version", version(u16::from_be_bytes([record[1], record[2]])), 1..3)
            .field("TLS.length", u16::from_be_bytes([record[3], record[4]]), 3..5)
    }

    /// A handshake record before encryption: ClientHello, ServerHello (or HelloRetryRequest).
    fn clear_handshake(&mut self, record: &[u8]) -> Message {
        let body = &record[HEADER..];
        let t = body.first().copied().unwrap_or(0);
        let mut msg = self.record("handshake", record, handshake_title(t));
        let parsed = match t {
            1 => self.client_hello(&mut msg, body),
            2 => self.server_hello(&mut msg, body),
            _ => Err(en("a {name} in the clear", &[("name", &handshake_title(t))])),
        };
        match parsed {
            Ok(()) => msg,
            Err(reason) => msg.malformed(reason),
        }
    }

    fn client_hello(&mut self, msg: &mut Message, body: &[u8]) -> Result<(), String> {
        msg.fields.push(crate::session::Field::new("TLS.handshake_type", "client_hello", HEADER..HEADER + 1));
        msg.kind = "tls.client_hello".into();
        let mut r = Reader::new(body, HEADER);
        r.take(4)?;
        let legacy = r.u16()?;
        let at = r.pos();
        let random: [u8; 32] = r.take(32)?.try_into().map_err(|_| String::new())?;
        msg.fields.push(crate::session::Field::new("TLS.random", hex(&random), at..at + 32));
        self.lock().client_random = Some(random);
        let at = r.pos();
        let sid = r.vec(1)?;
        if !sid.buf.is_empty() {
            msg.fields.push(crate::session::Field::new("TLS.session_id", hex(sid.buf), at + 1..at + 1 + sid.buf.len()));
        }
        let at = r.pos();
        let mut suites = r.vec(2)?;
        let mut names = Vec::new();
        while !suites.done() {
            names.push(cipher_suite(suites.u16()?));
        }
        let n = names.len();
        msg.fields.push(crate::session::Field::new("TLS.cipher_suites", names.join(", "), at..r.pos()));
        r.vec(1)?;
        let mut versions = vec![version(legacy)];
        let (mut sni, mut shares) = (None, Vec::new());
        if !r.done() {
            let mut exts = r.vec(2)?;
            while !exts.done() {
                let ext = exts.u16()?;
                let at = exts.pos() + 2;
                let mut data = exts.vec(2)?;
                let range = at..at + data.buf.len();
                match ext {
                    0 => {
                        let mut list = data.vec(2)?;
                        while !list.done() {
                            let kind = list.u8()?;
                            let name = list.vec(2)?;
                            if kind == 0 {
                                let text = String::from_utf8_lossy(name.buf).into_owned();
                                let start = name.base;
                                msg.fields.push(crate::session::Field::new(
                                    "TLS.sni",
                                    text.clone(),
                                    start..start + name.buf.len(),
                                ));
                                sni = Some(text);
                            }
                        }
                    }
                    10 => {
                        let mut list = data.vec(2)?;
                        let mut groups = Vec::new();
                        while !list.done() {
                            groups.push(group(list.u16()?));
                        }
                        msg.fields.push(crate::session::Field::new("TLS.supported_groups", groups.join(", "), range));
                    }
                    16 => {
                        let mut list = data.vec(2)?;
                        let mut protos = Vec::new();
                        while !list.done() {
                            protos.push(String::from_utf8_lossy(list.vec(1)?.buf).into_owned());
                        }
                        msg.fields.push(crate::session::Field::new("TLS.alpn", protos.join(", "), range));
                    }
                    43 => {
                        let mut list = data.vec(1)?;
                        versions.clear();
                        while !list.done() {
                            versions.push(version(list.u16()?));
                        }
                        msg.fields.push(crate::session::Field::new("TLS.version", versions.join(", "), range));
                    }
                    51 => {
                        let mut list = data.vec(2)?;
                        while !list.done() {
                            shares.push(group(list.u16()?));
                            list.vec(2)?;
                        }
                        msg.fields.push(crate::session::Field::new("TLS.key_share", shares.join(", "), range));
                    }
                    _ => {}
                }
            }
        }
        msg.summary = format!(
            "ClientHello {}, {n} cipher suites{}{}",
            versions.first().cloned().unwrap_or_default(),
            shares.first().map(|g| format!(", key share {g}")).unwrap_or_default(),
            sni.map(|s| format!(", SNI {}", printable(s.as_bytes(), 40))).unwrap_or_default(),
        );
        Ok(())
    }

    fn server_hello(&mut self, msg: &mut Message, body: &[u8]) -> Result<(), String> {
        msg.fields.push(crate::session::Field::new("TLS.handshake_type", "server_hello", HEADER..HEADER + 1));
        msg.kind = "tls.server_hello".into();
        let mut r = Reader::new(body, HEADER);
        r.take(4)?;
        r.u16()?;
        let at = r.pos();
        let random = r.take(32)?;
        let retry = random == HRR_RANDOM;
        if retry {
            msg.kind = "tls.hello_retry_request".into();
            msg.fields.retain(|f| f.path != "TLS.handshake_type");
            msg.fields.push(crate::session::Field::new(
                "TLS.handshake_type",
                "hello_retry_request",
                HEADER..HEADER + 1,
            ));
        }
        msg.fields.push(crate::session::Field::new("TLS.random", hex(random), at..at + 32));
        r.vec(1)?;
        let at = r.pos();
        let code = r.u16()?;
        let suite = cipher_suite(code);
        msg.fields.push(crate::session::Field::new("TLS.cipher_suite", suite.clone(), at..at + 2));
        r.u8()?;
        let (mut chosen, mut share) = ("TLS 1.2".to_string(), None);
        if !r.done() {
            let mut exts = r.vec(2)?;
            while !exts.done() {
                let ext = exts.u16()?;
                let at = exts.pos() + 2;
                let mut data = exts.vec(2)?;
                match ext {
                    43 => {
                        chosen = version(data.u16()?);
                        msg.fields.push(crate::session::Field::new("TLS.version", chosen.clone(), at..at + 2));
                    }
                    51 => {
                        let g = group(data.u16()?);
                        msg.fields.push(crate::session::Field::new("TLS.key_share", g.clone(), at..at + 2));
                        share = Some(g);
                    }
                    _ => {}
                }
            }
        }
        let title = if retry { "HelloRetryRequest" } else { "ServerHello" };
        msg.summary =
            format!("{title} {chosen}, {suite}{}", share.map(|g| format!(", key share {g}")).unwrap_or_default());
        if !retry {
            let mut s = self.lock();
            if chosen == "TLS 1.3" {
                s.suite = Suite::from_code(code);
                // From the next record on, both directions are sealed with handshake keys.
                for t in &mut s.traffic {
                    *t = Traffic { epoch: Epoch::Handshake, opener: None };
                }
            } else {
                s.tls12 = true;
                msg.notes.push(en(
                    "TLS 1.2: its records are sealed with keys this lab does not derive; only TLS 1.3 is opened",
                    &[],
                ));
            }
        }
        Ok(())
    }

    /// An alert: in the clear (`record` holds it), or decrypted (`plain`).
    fn alert(&self, record: &[u8], content: &[u8], sealed: Option<Message>) -> Message {
        let (level, code) = match content {
            [level, code, ..] => (*level, *code),
            _ => {
                let msg = sealed.unwrap_or_else(|| self.record("alert", record, "alert".into()));
                return msg.malformed(en("an alert is two octets: level and description", &[]));
            }
        };
        let name = alert(code);
        let level = if level == 1 { "warning" } else { "fatal" };
        let clear = sealed.is_none();
        let mut msg = sealed.unwrap_or_else(|| self.record("alert", record, String::new()));
        msg.kind = if code == 0 { "tls.alert.close_notify".into() } else { "tls.alert".into() };
        msg.summary = if clear { format!("alert {level} {name}") } else { format!("alert {level} {name} (encrypted)") };
        let (l, d) = if clear { (HEADER..HEADER + 1, HEADER + 1..HEADER + 2) } else { (0..0, 0..0) };
        msg.field("TLS.alert_level", level, l).field("TLS.alert", name, d)
    }

    /// An application_data record: opened with the logged secrets, or sealed. None: it waits
    /// for keys that our own endpoint is about to log.
    fn sealed(&mut self, record: &[u8]) -> Option<Message> {
        let (header, fragment) = record.split_at(HEADER);
        let mut msg = self.record("application_data", record, String::new());
        let cell = SeqCell::default();
        msg.numbered = Some(cell.clone());
        let shared = self.shared.clone();
        let opened = {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            let other = s.records[1 - self.dir];
            let (epoch, suite, random) = (s.traffic[self.dir].epoch, s.suite, s.client_random);
            match (epoch, suite, random) {
                (Epoch::Clear, _, _) | (_, None, _) | (_, _, None) => Err(if s.tls12 {
                    en("sealed with TLS 1.2 keys, which this lab does not derive", &[])
                } else {
                    en("application data before any handshake this decoder saw", &[])
                }),
                (epoch, Some(suite), Some(random)) => {
                    if s.traffic[self.dir].opener.is_none() {
                        let label = label(self.dir, epoch);
                        match self.secrets.secret(&random, &label).and_then(|secret| Opener::new(suite, secret)) {
                            Some(opener) => s.traffic[self.dir].opener = Some(opener),
                            None if self.stalled.is_none_or(|at| at == other) => {
                                // Our endpoint logs the secret as it reads what came before:
                                // wait until it did, or until the other side spoke (it never will).
                                self.stalled = Some(other);
                                return None;
                            }
                            None => {}
                        }
                    }
                    self.stalled = None;
                    match s.traffic[self.dir].opener.as_mut() {
                        None => {
                            Err(en("no {label} was logged for this handshake", &[("label", &label(self.dir, epoch))]))
                        }
                        // Application data wholly inside the tail of a long message, whose bytes
                        // no step keeps: counted and passed over, like the tail itself, unopened.
                        Some(opener)
                            if matches!(epoch, Epoch::Application(_))
                                && !opener.padded
                                && fragment.len() > TAG + 1
                                && self.plain.skip >= fragment.len() - TAG - 1 =>
                        {
                            opener.seq += 1;
                            self.plain.skip -= fragment.len() - TAG - 1;
                            Err(String::new())
                        }
                        Some(opener) => {
                            opener.open(header, fragment).map(|(kind, content)| (epoch, kind, content)).ok_or_else(
                                || en("the record did not authenticate with the logged keys (bad_record_mac)", &[]),
                            )
                        }
                    }
                }
            }
        };
        let (epoch, kind, content) = match opened {
            Ok(opened) => opened,
            Err(reason) if reason.is_empty() => {
                msg.kind = "tls.application_data.tail".into();
                let n = fragment.len() - TAG - 1;
                msg.summary = format!("application_data, {n} octets: more of the long message (not kept, not opened)");
                return Some(msg);
            }
            Err(reason) => {
                msg.kind = "tls.sealed".into();
                msg.summary = format!("application_data, {} octets, sealed", fragment.len());
                msg.notes.push(reason);
                return Some(msg);
            }
        };
        let inner = content_type(kind).unwrap_or("?");
        msg.fields.push(crate::session::Field::new("TLS.inner_content_type", inner, 0..0));
        msg.notes.push(en(
            "opened with the {label} our endpoint logged: {n} octets of {inner} inside",
            &[("label", &label(self.dir, epoch)), ("n", &content.len()), ("inner", &inner)],
        ));
        Some(match kind {
            22 => self.sealed_handshake(msg, &content),
            21 => self.alert(record, &content, Some(msg)),
            23 => self.application(msg, &content, cell),
            _ => {
                msg.summary = format!("application_data, {} octets", fragment.len());
                msg.malformed(en("an unknown inner content type {t}", &[("t", &kind)]))
            }
        })
    }

    /// Handshake messages from an opened record: named, and the keys move on after Finished
    /// (to the application keys) and KeyUpdate (to the next generation).
    fn sealed_handshake(&mut self, mut msg: Message, content: &[u8]) -> Message {
        self.handshake.extend_from_slice(content);
        let mut names = Vec::new();
        let mut first = None;
        let mut next_epoch = None;
        while self.handshake.len() >= 4 {
            let t = self.handshake[0];
            let n = u32::from_be_bytes([0, self.handshake[1], self.handshake[2], self.handshake[3]]) as usize;
            if n + 4 > MAX_HANDSHAKE {
                self.handshake.clear();
                return msg.malformed(en("a handshake message of {n} octets", &[("n", &n)]));
            }
            if self.handshake.len() < n + 4 {
                break;
            }
            first.get_or_insert(t);
            names.push(handshake_title(t));
            msg.fields.push(crate::session::Field::new("TLS.handshake_type", handshake_type(t), 0..0));
            let epoch = self.epoch();
            match (t, epoch) {
                (20, Epoch::Handshake) => next_epoch = Some(Epoch::Application(0)),
                (24, Epoch::Application(n)) => next_epoch = Some(Epoch::Application(n + 1)),
                _ => {}
            }
            self.handshake.drain(..n + 4);
        }
        if names.is_empty() {
            names.push(en("part of a handshake message", &[]));
        }
        msg.kind = match first {
            Some(t) => format!("tls.sealed.{}", handshake_type(t)),
            None => "tls.sealed.handshake".into(),
        };
        msg.summary = format!("{} (encrypted)", names.join(", "));
        if let Some(next) = next_epoch {
            self.next_keys(next);
        }
        msg
    }

    /// This direction's records are sealed with the keys of `next` from the next record on.
    fn next_keys(&mut self, next: Epoch) {
        let mut s = self.lock();
        let suite = s.suite;
        let t = &mut s.traffic[self.dir];
        let opener = match (next, t.opener.take(), suite) {
            // RFC 8446 §7.2: application_traffic_secret_N+1 from N.
            (Epoch::Application(n), Some(old), Some(suite)) if n > 0 => {
                expand_label(suite.hkdf, &old.secret, "traffic upd", suite.hash_len).and_then(|s| Opener::new(suite, s))
            }
            _ => None,
        };
        *t = Traffic { epoch: next, opener };
    }

    /// Application data from an opened record: the application's messages it completes ride
    /// along as steps of their own.
    fn application(&mut self, mut msg: Message, content: &[u8], cell: SeqCell) -> Message {
        msg.kind = "tls.application_data".into();
        let p = &mut self.plain;
        let mut data = content;
        if p.skip > 0 {
            let n = p.skip.min(data.len());
            p.skip -= n;
            data = &data[n..];
        }
        if !data.is_empty() {
            p.carriers.push(cell.clone());
            p.buf.extend_from_slice(data);
        }
        let mut names = Vec::new();
        let mut at = 0;
        while at < p.buf.len() {
            match self.inner.decode(&p.buf[at..], KEEP_BYTES) {
                Decoded::Incomplete => {
                    let pending = p.buf.len() - at;
                    if pending > MAX_PLAIN {
                        let inner = Message::new(Layer::Application, "?", "malformed", format!("{pending} bytes"))
                            .malformed(en("no message boundary in {n} bytes", &[("n", &pending)]));
                        let bytes = p.buf[at..at + pending.min(KEEP_BYTES)].to_vec();
                        msg.carried.push(Carried { msg: inner, bytes, len: pending, carriers: p.carriers.clone() });
                        at = p.buf.len();
                    }
                    break;
                }
                Decoded::Skip { len } => at += len.clamp(1, p.buf.len() - at),
                Decoded::Message { msg: inner, len } => {
                    let len = len.max(1);
                    let available = p.buf.len() - at;
                    let bytes = p.buf[at..at + len.min(available).min(KEEP_BYTES)].to_vec();
                    names.push(format!("{} {}", inner.proto, printable(inner.summary.as_bytes(), 30)));
                    msg.carried.push(Carried { msg: inner, bytes, len, carriers: p.carriers.clone() });
                    p.carriers = vec![cell.clone()];
                    if len <= available {
                        at += len;
                    } else {
                        p.skip = len - available;
                        at = p.buf.len();
                    }
                }
            }
        }
        p.buf.drain(..at);
        if p.buf.is_empty() && p.skip == 0 {
            p.carriers.clear();
        }
        msg.summary = match names.as_slice() {
            [] => format!("application_data, {} octets (part of a message)", content.len()),
            [one] => format!("application_data, {} octets: {one}", content.len()),
            [one, ..] => format!("application_data, {} octets: {one} and {} more", content.len(), names.len() - 1),
        };
        msg
    }
}

/// The key log label of a direction's secret in an epoch (NSS key log format).
fn label(dir: usize, epoch: Epoch) -> String {
    let side = if dir == CLIENT { "CLIENT" } else { "SERVER" };
    match epoch {
        Epoch::Handshake => format!("{side}_HANDSHAKE_TRAFFIC_SECRET"),
        _ => format!("{side}_TRAFFIC_SECRET_0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Field;
    use crate::wire::crlf_line;
    use crate::wire::testing::value;

    /// Each CR LF line a message: the application inside the records.
    struct Lines;

    impl Decoder for Lines {
        fn decode(&mut self, buf: &[u8], _keep: usize) -> Decoded {
            match crlf_line(buf) {
                Some((line, len)) => {
                    let msg = Message::new(Layer::Application, "LINE", "line", printable(line, 40));
                    Decoded::Message { msg, len }
                }
                None => Decoded::Incomplete,
            }
        }
    }

    /// The records each side wrote, in order, as (direction, bytes).
    type Wire = Vec<(usize, Vec<u8>)>;

    /// A real handshake between rustls endpoints in memory, then `client_says` and `server_says`
    /// as application data: every write that crossed, in order.
    fn exchange(client_says: &[&[u8]], server_says: &[&[u8]]) -> Wire {
        let (server_config, client_config) = crate::tls::test_configs();
        let wire = crate::tls::in_memory(server_config, client_config, client_says, server_says).unwrap();
        wire.into_iter().map(|(d, b)| (d as usize, b)).collect()
    }

    /// Decodes the records of `wire` (each write split into records by the decoder) with
    /// `secrets`: the messages, each with the (direction, seq) it got; carried ones follow
    /// their record and name it.
    fn decode(wire: &Wire, secrets: Arc<dyn Secrets>) -> Vec<(usize, Message)> {
        let (c, s) = decoders((Box::new(Lines), Box::new(Lines)), Switch::on(), secrets);
        let mut decs = [c, s];
        let mut bufs = [Vec::new(), Vec::new()];
        let mut out = Vec::new();
        let mut seq = 0;
        let mut drain = |dir: usize, decs: &mut [Box<dyn Decoder>; 2], bufs: &mut [Vec<u8>; 2], out: &mut Vec<_>| {
            while let Decoded::Message { mut msg, len } = decs[dir].decode(&bufs[dir], KEEP_BYTES) {
                seq += 1;
                if let Some(cell) = &msg.numbered {
                    cell.set(seq).unwrap();
                }
                let carried = std::mem::take(&mut msg.carried);
                out.push((dir, msg));
                for c in carried {
                    seq += 1;
                    let mut m = c.msg;
                    let carriers: Vec<u64> = c.carriers.iter().map(|c| *c.get().unwrap()).collect();
                    m.fields.push(Field::new("carried_by", format!("{carriers:?}"), 0..0));
                    out.push((dir, m));
                }
                bufs[dir].drain(..len);
            }
        };
        for (dir, bytes) in wire {
            bufs[*dir].extend_from_slice(bytes);
            drain(1 - dir, &mut decs, &mut bufs, &mut out);
            drain(*dir, &mut decs, &mut bufs, &mut out);
        }
        drain(0, &mut decs, &mut bufs, &mut out);
        drain(1, &mut decs, &mut bufs, &mut out);
        out
    }

    fn kinds(steps: &[(usize, Message)]) -> Vec<String> {
        steps.iter().map(|(d, m)| format!("{}{}", if *d == CLIENT { ">" } else { "<" }, m.kind)).collect()
    }

    #[test]
    fn a_real_handshake_is_named_record_by_record_and_the_application_lines_ride_inside() {
        let wire = exchange(&[b"EHLO client.lab\r\n"], &[b"250 hi\r\n250 again\r\n"]);
        let steps = decode(&wire, crate::tls::secrets());
        let k = kinds(&steps);
        assert_eq!(k[0], ">tls.client_hello");
        assert_eq!(k[1], "<tls.server_hello");
        assert!(k.contains(&"<tls.sealed.encrypted_extensions".to_string()), "{k:?}");
        assert!(k.contains(&">tls.sealed.finished".to_string()), "{k:?}");
        let tail: Vec<&str> = k.iter().rev().take(7).rev().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                ">tls.application_data",
                ">line",
                "<tls.application_data",
                "<line",
                "<line",
                "<tls.alert.close_notify",
                ">tls.alert.close_notify"
            ],
            "{k:?}"
        );
        let server_flight: String = steps
            .iter()
            .filter(|(d, m)| *d == SERVER && m.kind.starts_with("tls.sealed"))
            .map(|(_, m)| m.summary.clone())
            .collect();
        for name in ["EncryptedExtensions", "Certificate", "CertificateVerify", "Finished"] {
            assert!(server_flight.contains(name), "{name} in {server_flight}");
        }
        let (_, hello) = &steps[0];
        assert_eq!(value(hello, "TLS.sni"), "protolab.test");
        assert!(value(hello, "TLS.version").as_str().unwrap().starts_with("TLS 1.3"));
        assert_eq!(value(hello, "TLS.random").as_str().unwrap().len(), 64);
        let (_, server_hello) = &steps[1];
        assert!(value(server_hello, "TLS.cipher_suite").as_str().unwrap().starts_with("TLS_"));
        assert_eq!(value(server_hello, "TLS.version"), "TLS 1.3");
        // The lines name the record that carried them: the one just before.
        let n = steps.len() - 2;
        assert_eq!(steps[n - 4].1.summary, "EHLO client.lab");
        assert_eq!(value(&steps[n - 4].1, "carried_by"), format!("[{}]", n - 4));
        assert_eq!(value(&steps[n - 1].1, "carried_by"), format!("[{}]", n - 2));
        // Every field's range lies inside its record.
        for (_, m) in &steps {
            assert!(m.malformed.is_none(), "{}: {:?}", m.summary, m.malformed);
        }
    }

    #[test]
    fn without_the_secrets_the_records_stay_sealed_and_nothing_waits_forever() {
        let wire = exchange(&[b"EHLO client.lab\r\n"], &[b"250 hi\r\n"]);
        let steps = decode(&wire, Arc::new(NoSecrets));
        let k = kinds(&steps);
        assert_eq!(&k[..2], [">tls.client_hello", "<tls.server_hello"]);
        assert!(k[2..].iter().all(|k| k.ends_with("tls.sealed") || k.ends_with("tls.change_cipher_spec")), "{k:?}");
        let records = wire.iter().map(|(_, b)| b.len()).sum::<usize>();
        let decoded = steps.len();
        assert!(decoded >= wire.len(), "{decoded} steps for {} writes of {records} bytes", wire.len());
    }

    #[test]
    fn a_plaintext_client_on_a_tls_port_is_a_malformed_step_that_says_so() {
        let (mut c, _) = decoders((Box::new(Lines), Box::new(Lines)), Switch::on(), Arc::new(NoSecrets));
        let Decoded::Message { msg, len } = c.decode(b"EHLO client.lab\r\n", KEEP_BYTES) else { panic!() };
        assert_eq!(len, 17);
        assert!(msg.malformed.unwrap().contains("not a TLS record"));
    }

    #[test]
    fn a_hello_cut_short_is_decoded_as_far_as_it_goes() {
        let wire = exchange(&[], &[]);
        let mut hello = wire[0].1.clone();
        hello.truncate(60);
        let len = (hello.len() - HEADER) as u16;
        hello[3..5].copy_from_slice(&len.to_be_bytes());
        let (mut c, _) = decoders((Box::new(Lines), Box::new(Lines)), Switch::on(), Arc::new(NoSecrets));
        let Decoded::Message { msg, .. } = c.decode(&hello, KEEP_BYTES) else { panic!() };
        assert_eq!(msg.kind, "tls.client_hello");
        assert!(msg.malformed.clone().unwrap().contains("cut short"));
        assert_eq!(value(&msg, "TLS.random").as_str().unwrap().len(), 64);
    }

    #[test]
    fn before_the_switch_the_application_decodes_and_after_it_the_records() {
        let switch = Switch::default();
        let (mut c, _) = decoders((Box::new(Lines), Box::new(Lines)), switch.clone(), Arc::new(NoSecrets));
        let Decoded::Message { msg, .. } = c.decode(b"STARTTLS\r\n", KEEP_BYTES) else { panic!() };
        assert_eq!(msg.kind, "line");
        switch.turn_on();
        let wire = exchange(&[], &[]);
        let Decoded::Message { msg, .. } = c.decode(&wire[0].1, KEEP_BYTES) else { panic!() };
        assert_eq!(msg.kind, "tls.client_hello");
    }
}

/// RFC 8448 §3 ("Simple 1-RTT Handshake"): its hellos as records, its traffic secrets, the keys
/// and IVs it derives from them, and the server's flight sealed with the RFC's own key and IV.
#[cfg(test)]
mod rfc8448 {
    use super::*;
    use crate::wire::FramesOnly;
    use crate::wire::testing::value;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    const CLIENT_HELLO: &str = "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef
        6283024dece7000006130113031302010000910000000b000900000673657276
        6572ff01000100000a00140012001d0017001800190100010101020103010400
        230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e
        51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603
        020308040805080604010501060102010402050206020202002d00020101001c
        00024001";
    const SERVER_HELLO: &str = "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155
        772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdb
        f7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304";
    /// EncryptedExtensions, Certificate, CertificateVerify, Finished: 657 octets.
    const SERVER_FLIGHT: &str = "080000240022000a00140012001d00170018001901000101010201030104001c
        00024001000000000b0001b9000001b50001b0308201ac30820115a003020102
        020102300d06092a864886f70d01010b0500300e310c300a0603550403130372
        7361301e170d3136303733303031323335395a170d3236303733303031323335
        395a300e310c300a0603550403130372736130819f300d06092a864886f70d01
        0101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c
        0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19e
        aa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e2
        2a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a
        8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304
        023000300b0603551d0f0404030205a0300d06092a864886f70d01010b050003
        81810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594
        365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd
        335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb
        2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b4
        2b4de100000f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f82
        4cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a5c141a078653fa6bef78
        0c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671
        459e46445c9ea58c181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda
        65cdf5aea20d53dfacd42f74f3140000209b9b141d906337fbd2cbdce71df4de
        da4ab42c309572cb7fffee5454b78f0718";
    const SERVER_HS_SECRET: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";

    /// A handshake message as the record that carries it in the clear.
    fn record(kind: u8, version: [u8; 2], body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, version[0], version[1]];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    struct Rfc;

    impl Secrets for Rfc {
        fn secret(&self, random: &[u8; 32], label: &str) -> Option<Vec<u8>> {
            let ours = random[..] == hex(CLIENT_HELLO)[6..38];
            (ours && label == "SERVER_HANDSHAKE_TRAFFIC_SECRET").then(|| hex(SERVER_HS_SECRET))
        }
    }

    /// The key and IV of each traffic secret, as the RFC lists them.
    #[test]
    fn keys_and_ivs_from_the_rfc_traffic_secrets() {
        let cases = [
            (SERVER_HS_SECRET, "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30"),
            (
                "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
                "dbfaa693d1762c5b666af5d950258d01",
                "5bd3c71b836e0b76bb73265f",
            ),
            (
                "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
                "9f02283b6c9c07efc26bb9f2ac92e356",
                "cf782b88dd83549aadf1e984",
            ),
            (
                "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
                "17422dda596ed5d9acd890e3c63f5051",
                "5b78923dee08579033e523d9",
            ),
        ];
        for (secret, key, iv) in cases {
            assert_eq!(expand_label(hkdf::HKDF_SHA256, &hex(secret), "key", 16).unwrap(), hex(key));
            assert_eq!(expand_label(hkdf::HKDF_SHA256, &hex(secret), "iv", 12).unwrap(), hex(iv));
        }
    }

    #[test]
    fn the_rfc_handshake_decodes_and_its_sealed_flight_opens() {
        let (mut client, mut server) =
            decoders((Box::new(FramesOnly), Box::new(FramesOnly)), Switch::on(), Arc::new(Rfc));
        let decode = |d: &mut Box<dyn Decoder>, bytes: &[u8]| match d.decode(bytes, KEEP_BYTES) {
            Decoded::Message { msg, len } => {
                assert_eq!(len, bytes.len());
                msg
            }
            other => panic!("{other:?}"),
        };
        let hello = decode(&mut client, &record(22, [3, 1], &hex(CLIENT_HELLO)));
        assert_eq!(hello.kind, "tls.client_hello");
        assert_eq!(value(&hello, "TLS.sni"), "server");
        assert_eq!(
            value(&hello, "TLS.cipher_suites"),
            "TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(value(&hello, "TLS.key_share"), "x25519");
        assert_eq!(value(&hello, "TLS.version"), "TLS 1.3");
        assert_eq!(value(&hello, "TLS.record_version"), "TLS 1.0");
        let sni = hello.fields.iter().find(|f| f.path == "TLS.sni").unwrap();
        assert_eq!(&record(22, [3, 1], &hex(CLIENT_HELLO))[sni.range[0]..sni.range[1]], b"server");
        let server_hello = decode(&mut server, &record(22, [3, 3], &hex(SERVER_HELLO)));
        assert_eq!(server_hello.summary, "ServerHello TLS 1.3, TLS_AES_128_GCM_SHA256, key share x25519");
        // The flight sealed as the RFC's server does: its key and IV, sequence number 0, the
        // record header as additional data, the inner content type 22 after the messages.
        let mut sealed = hex(SERVER_FLIGHT);
        sealed.push(22);
        let header = [23, 3, 3, 0x02, 0xa2];
        assert_eq!(sealed.len() + 16, 0x2a2);
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_128_GCM, &hex("3fce516009c21727d0f2e4e86ee403bc")).unwrap(),
        );
        let nonce = aead::Nonce::try_assume_unique_for_key(&hex("5d313eb2671276ee13000b30")).unwrap();
        key.seal_in_place_append_tag(nonce, aead::Aad::from(header), &mut sealed).unwrap();
        let flight = decode(&mut server, &[&header[..], &sealed].concat());
        assert_eq!(flight.kind, "tls.sealed.encrypted_extensions");
        assert_eq!(flight.summary, "EncryptedExtensions, Certificate, CertificateVerify, Finished (encrypted)");
        assert!(flight.malformed.is_none());
        // One bit changed: the record does not authenticate, and says so.
        let (mut client, mut server) =
            decoders((Box::new(FramesOnly), Box::new(FramesOnly)), Switch::on(), Arc::new(Rfc));
        decode(&mut client, &record(22, [3, 1], &hex(CLIENT_HELLO)));
        decode(&mut server, &record(22, [3, 3], &hex(SERVER_HELLO)));
        sealed[100] ^= 1;
        let bad = decode(&mut server, &[&header[..], &sealed].concat());
        assert_eq!(bad.kind, "tls.sealed");
        assert!(bad.notes.iter().any(|n| n.contains("bad_record_mac")), "{:?}", bad.notes);
    }
}
