//! The step: one message of one protocol crossing the wire (the contract in DESIGN.md).

use serde::Serialize;

/// How many bytes of one message a step keeps; the rest is counted in `len` only.
pub const KEEP_BYTES: usize = 64 * 1024;

/// The layer a step's message belongs to, as DESIGN.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Link,
    Network,
    Transport,
    Tls,
    Application,
}

/// One decoded field: a dotted path (`SMTP.command`), its value, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// `Proto.name`, the name tools and tests look fields up by.
    pub path: String,
    /// The value: a string, an integer or a boolean.
    pub value: serde_json::Value,
    /// The byte span `[start, end)` inside the message's bytes.
    pub range: [usize; 2],
}

impl Field {
    pub fn new(path: impl Into<String>, value: impl Into<serde_json::Value>, range: std::ops::Range<usize>) -> Self {
        Field { path: path.into(), value: value.into(), range: [range.start, range.end] }
    }

    /// The value as a person reads it: strings without quotes.
    pub fn display_value(&self) -> String {
        match &self.value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// One message crossing the wire from one endpoint to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// 1, 2, 3, ... in session order.
    pub seq: u64,
    /// Microseconds since the lab started.
    pub t_us: u64,
    /// The lab's name (`ws`, `smtp`).
    pub lab: String,
    /// Which peer session (`serve`); 1 in `run`.
    pub session: u32,
    /// Which connection, where a lab has more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    pub layer: Layer,
    /// `SMTP`, `HTTP`, `WebSocket`, `TCP`, ...
    pub proto: String,
    pub from: String,
    pub to: String,
    /// One line, as a person would say it.
    pub summary: String,
    /// Bytes of this message on the wire (may exceed the bytes kept).
    pub len: usize,
    /// The message's bytes, at most [`KEEP_BYTES`] of them.
    #[serde(rename = "hex", serialize_with = "as_hex")]
    pub bytes: Vec<u8>,
    /// Set when `bytes` holds only the start of the message.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    pub fields: Vec<Field>,
    /// `seq` of the steps that carried this message, where those exist.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub carried_by: Vec<u64>,
    /// Each endpoint's state when this step crossed, in the lab's endpoint order: the sender's
    /// as it sent the message, the receiver's once it took the message in (`client` →
    /// `FIN-WAIT-2`, `server` → `CLOSE-WAIT`). JSONL `states`, an object; absent when the
    /// wire cannot read the endpoints' states.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "as_object")]
    pub states: Vec<(String, String)>,
    /// Why the message did not decode.
    pub malformed: Option<String>,
    /// The narration key (`smtp.command.EHLO`, `tcp.ack.last`): what the message is, refined by
    /// the moment of its conversation (see [`super::moment`]); not part of the JSONL contract.
    #[serde(skip)]
    pub kind: String,
    /// The message repeats one already sent in its conversation (a retransmitted SYN, a
    /// DISCOVER sent again with the same xid): narrated as a repetition, never as new.
    #[serde(skip)]
    pub again: bool,
    /// Checks and derivations worth showing beside the fields (the accept key matches, ...).
    #[serde(skip)]
    pub notes: Vec<String>,
    /// A router of the lab network passed the frame on (its TTL one less): narrated as the
    /// router's relay, not as its sender's own message.
    #[serde(skip)]
    pub forwarded: bool,
    /// The router that passed it on rewrote its addresses (NAT): narrated as the rewrite.
    #[serde(skip)]
    pub nat: bool,
    /// The bytes are one whole Ethernet frame (sim wire, or captured): what a pcap file holds.
    #[serde(skip)]
    pub frame: bool,
    /// What the lab network's cable did to the frame.
    #[serde(skip)]
    pub fate: Fate,
    /// Endpoints whose state moved on while this step's world stood still at the gate: the
    /// sender changed state after sending it, or the receiver changed state taking it in, and
    /// the frame that change produced waits at the gate (`CLOSE-WAIT → LAST-ACK`, its `FIN`).
    #[serde(skip)]
    pub moved: Vec<Moved>,
    /// Gets this step's `seq` when the sink numbers it: a TLS record, so that the messages it
    /// carried can name it (the record may wait in a capture before it has a number).
    #[serde(skip)]
    pub numbered: Option<SeqCell>,
    /// The steps that carried this message, by the cells they get their `seq` in: the sink
    /// adds their numbers to `carried_by` (an SMTP command inside TLS records).
    #[serde(skip)]
    pub carriers: Vec<SeqCell>,
    /// The messages this step's bytes carried (what a TLS record decrypts to): the sink emits
    /// them right after it.
    #[serde(skip)]
    pub carried: Vec<Step>,
}

/// Where a step's `seq` appears once the sink numbers it.
pub type SeqCell = std::sync::Arc<std::sync::OnceLock<u64>>;

/// What the lab network's cable did to a frame; frames on other wires are [`Fate::Delivered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fate {
    #[default]
    Delivered,
    /// Lost on the cable: the receiver never saw it.
    Dropped,
    /// The cable's second copy of a frame it delivered twice.
    Duplicate,
    /// A byte flipped on the cable: the receiver's checksum check throws it away.
    Corrupted,
    /// Held back this many milliseconds, then delivered.
    Delayed(u64),
}

impl Fate {
    /// The narration variant of a fault that changes what the frame means (`~dropped`), or
    /// `None` when the frame arrived as sent.
    pub fn variant(self) -> Option<&'static str> {
        match self {
            Fate::Dropped => Some("dropped"),
            Fate::Duplicate => Some("duplicate"),
            Fate::Corrupted => Some("corrupted"),
            Fate::Delivered | Fate::Delayed(_) => None,
        }
    }

    /// The receiver never saw it: the ladder draws it stopping halfway.
    pub fn lost(self) -> bool {
        self == Fate::Dropped
    }

    /// The receiver took it in: neither lost nor thrown away for a bad checksum.
    pub fn taken_in(self) -> bool {
        !matches!(self, Fate::Dropped | Fate::Corrupted)
    }
}

/// An endpoint whose state changed while its next frame waits at the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The endpoint's name.
    pub who: String,
    /// Its state before the change, as this step's `states` or the state before the step.
    pub from: String,
    /// Its state now.
    pub to: String,
    /// The frame the change produced, as a short name (`FIN,ACK`, `REQUEST`).
    pub waiting: String,
}

impl Default for Step {
    /// An empty application step; the sink fills in `seq`, `t_us`, `lab` and `session`.
    fn default() -> Self {
        Step {
            seq: 0,
            t_us: 0,
            lab: String::new(),
            session: 1,
            conn: None,
            layer: Layer::Application,
            proto: String::new(),
            from: String::new(),
            to: String::new(),
            summary: String::new(),
            len: 0,
            bytes: Vec::new(),
            truncated: false,
            fields: Vec::new(),
            carried_by: Vec::new(),
            states: Vec::new(),
            malformed: None,
            kind: String::new(),
            again: false,
            forwarded: false,
            nat: false,
            notes: Vec::new(),
            frame: false,
            fate: Fate::Delivered,
            moved: Vec::new(),
            numbered: None,
            carriers: Vec::new(),
            carried: Vec::new(),
        }
    }
}

impl Step {
    /// The first field with this path.
    pub fn field(&self, path: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.path == path)
    }

    /// The first field with this path, as a string (integers and booleans printed).
    pub fn value(&self, path: &str) -> Option<String> {
        self.field(path).map(Field::display_value)
    }

    /// The first field with this path, as an integer.
    pub fn number(&self, path: &str) -> Option<u64> {
        self.field(path).and_then(|f| f.value.as_u64())
    }

    /// `who`'s state when this step crossed, where the wire knows it.
    pub fn state(&self, who: &str) -> Option<&str> {
        self.states.iter().find(|(n, _)| n == who).map(|(_, s)| s.as_str())
    }

    /// The connection the step belongs to, as far as the step itself says: its `conn` name,
    /// else its TCP ends, the lower first (`192.0.2.1:49152 ↔ 192.0.2.2:7`, the same both
    /// ways). None for ARP, ICMP and UDP (no connections), or a message whose stream has no
    /// name (its carriers say it).
    pub fn connection(&self) -> Option<String> {
        if let Some(conn) = &self.conn {
            return Some(conn.clone());
        }
        if self.proto != "TCP" {
            return None;
        }
        let end = |ip: &str, port: &str| Some(format!("{}:{}", self.value(ip)?, self.number(port)?));
        let (a, b) = (end("IPv4.src", "TCP.src_port")?, end("IPv4.dst", "TCP.dst_port")?);
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Some(format!("{low} ↔ {high}"))
    }
}

fn as_object<S: serde::Serializer>(states: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(states.len()))?;
    for (who, state) in states {
        map.serialize_entry(who, state)?;
    }
    map.end()
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

/// Lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}
