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
    /// Why the message did not decode.
    pub malformed: Option<String>,
    /// The narration key (`smtp.command.EHLO`); not part of the JSONL contract.
    #[serde(skip)]
    pub kind: String,
    /// Checks and derivations worth showing beside the fields (the accept key matches, ...).
    #[serde(skip)]
    pub notes: Vec<String>,
    /// The bytes are one whole Ethernet frame (sim wire): what a pcap file holds.
    #[serde(skip)]
    pub frame: bool,
    /// The cable lost it: it never reached `to`.
    #[serde(skip)]
    pub lost: bool,
    /// The lab network's clock when the frame crossed, in µs: it stops while a frame waits at
    /// the gate, so lab timers (a DHCP lease) are read against it, not against `t_us`.
    #[serde(skip)]
    pub clock_us: Option<u64>,
    /// Each endpoint's protocol state right after this step (`client` → `SYN-SENT`), where the
    /// wire can read it from the real stack.
    #[serde(skip)]
    pub states: Vec<(String, String)>,
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
            malformed: None,
            kind: String::new(),
            notes: Vec::new(),
            frame: false,
            lost: false,
            states: Vec::new(),
            clock_us: None,
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
