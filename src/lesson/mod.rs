//! Lessons: a guided path through one topic of the course notes. A lesson is a TOML file in
//! `assets/lessons/`, its text in English and Korean side by side, a list of parts:
//!
//! ```toml
//! [[part]]
//! kind = "choice"              # text | choice | number | field | free | ports | table
//! at = "dhcp.discover"         # the lesson stops when a step of this kind has crossed
//! next = "dhcp"                # graded by the next step of this kind ...
//! field = "DHCP.message_type"  # ... by this field of it
//! en = "What will the server send back?"
//! ko = "서버는 무엇을 보낼까요?"
//! choices = [{ is = "OFFER", en = "OFFER", ko = "OFFER" }, { is = "ACK", en = "ACK", ko = "ACK" }]
//! ```
//!
//! A question about the exchange is graded by the real step it asks about, never by the file:
//! the right choice is the one whose `is` matches the step's field (`3*` matches `354`), a
//! number is the step's field, a field question wants the path of a field the step has.
//! `{Path}` in a question is filled from the step the lesson stopped at. See [`play`] for the
//! engine, [`headless`] for `protolab lesson NAME --answers`, [`progress`] for the scores kept.

pub mod headless;
pub mod play;
pub mod progress;

use crate::locale::Lang;
use crate::net::Wire;
use crate::session::Step;
use serde::Deserialize;

/// Text in both languages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub en: String,
    pub ko: String,
}

/// The one of `en` and `ko` that `lang` speaks.
pub fn pick<'a, T: ?Sized>(lang: Lang, en: &'a T, ko: &'a T) -> &'a T {
    match lang {
        Lang::En => en,
        Lang::Ko => ko,
    }
}

impl Text {
    pub fn get(&self, lang: Lang) -> &str {
        pick(lang, &self.en, &self.ko)
    }
}

/// One lesson, as its file says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    /// Its name on the command line (the file's name).
    #[serde(skip)]
    pub name: String,
    pub title: Text,
    /// One line for `protolab lesson`.
    pub about: Text,
    /// The lab it drives; none for a lesson of questions only (the port table).
    pub lab: Option<String>,
    /// The wire the lab runs on in this lesson, where the lesson needs one (the TCP segments
    /// are only seen on the lab network without privileges).
    pub wire: Option<Wire>,
    /// The TLS story its lab tells (`starttls`, `tls`); in the clear without it.
    #[serde(default)]
    pub tls: Option<TlsStory>,
    #[serde(rename = "part")]
    pub parts: Vec<Part>,
}

/// A lesson's TLS story, as the command line's `--starttls` and `--tls` choose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsStory {
    Starttls,
    Tls,
}

impl Lesson {
    /// The TLS story the lesson's lab must tell.
    pub fn tls_mode(&self) -> crate::tls::Mode {
        match self.tls {
            None => crate::tls::Mode::Plain,
            Some(TlsStory::Starttls) => crate::tls::Mode::StartTls,
            Some(TlsStory::Tls) => crate::tls::Mode::Implicit,
        }
    }
}

/// What a part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Text to read.
    Text,
    /// Pick one of the choices.
    Choice,
    /// Type a number.
    Number,
    /// Select a field of the step in the details pane.
    Field,
    /// Write an answer in your own words; a model answer follows, nothing is graded.
    Free,
    /// The port table as a quiz, in random order.
    Ports,
    /// A reference table.
    Table,
}

/// One part of a lesson.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub kind: Kind,
    /// The text, or the question.
    pub en: String,
    pub ko: String,
    /// The part waits for a step of this kind to cross (see [`Match`]).
    pub at: Option<Match>,
    /// A question graded by the next step of this kind (else by the step at `at`).
    pub next: Option<Match>,
    /// The step's field the answer is checked against.
    pub field: Option<String>,
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Shown after a free answer.
    pub model: Option<Text>,
    /// Shown after the grade: why the answer is what it is.
    pub explain: Option<Text>,
    /// What to review when the answer was wrong (the summary lists it).
    pub review: Option<Text>,
    /// The rows of a port quiz.
    #[serde(default)]
    pub ports: Vec<PortRow>,
    /// A reference table, its first row the heading.
    pub table: Option<Table>,
}

impl Part {
    pub fn text(&self, lang: Lang) -> &str {
        pick(lang, &self.en, &self.ko)
    }

    /// Whether the part asks something (and takes an answer).
    pub fn asks(&self) -> bool {
        !matches!(self.kind, Kind::Text | Kind::Table)
    }
}

/// One choice of a multiple-choice question.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// The value of the step's field that makes this choice the right one; `*` stands for
    /// any text (`3*`: any 3xx reply; `*RST*`: flags that include RST).
    pub is: String,
    pub en: String,
    pub ko: String,
}

/// A row of the port quiz: a service and its port number(s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRow {
    pub en: String,
    pub ko: String,
    pub ports: Vec<u16>,
}

/// A table, as rows of cells, in each language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub en: Vec<Vec<String>>,
    pub ko: Vec<Vec<String>>,
}

impl Table {
    pub fn get(&self, lang: Lang) -> &[Vec<String>] {
        pick(lang, &self.en, &self.ko)
    }
}

/// Which steps a part waits for: `KIND` or `KIND ~ TEXT`. A step matches when its kind is
/// KIND or starts with `KIND.` (`tcp.ack` matches `tcp.ack.handshake`), and its summary
/// contains TEXT. Retransmissions and frames the cable lost never match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Match {
    pub kind: String,
    pub contains: Option<String>,
}

impl TryFrom<String> for Match {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (kind, contains) = match s.split_once('~') {
            Some((k, c)) => (k.trim(), Some(c.trim().to_string())),
            None => (s.trim(), None),
        };
        if kind.is_empty() || kind.contains(char::is_whitespace) {
            return Err(format!("`{s}` is not a step kind (`tcp.syn`, `smtp.command.RCPT ~ elsewhere`)"));
        }
        Ok(Match { kind: kind.to_string(), contains })
    }
}

impl Match {
    pub fn matches(&self, step: &Step) -> bool {
        if step.again || step.fate.lost() {
            return false;
        }
        let kind = step.kind.as_str();
        let kind_ok = kind == self.kind || kind.strip_prefix(self.kind.as_str()).is_some_and(|r| r.starts_with('.'));
        kind_ok && self.contains.as_deref().is_none_or(|c| step.summary.contains(c))
    }
}

/// Whether `value` matches a choice's pattern, `*` standing for any text; case does not matter.
pub fn like(pattern: &str, value: &str) -> bool {
    let (pattern, value) = (pattern.to_ascii_lowercase(), value.to_ascii_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() || !value.ends_with(last) {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The lessons' files, in the order `protolab lesson` lists them.
const FILES: &[(&str, &str)] = &[
    ("dhcp", include_str!("../../assets/lessons/dhcp.toml")),
    ("tcp", include_str!("../../assets/lessons/tcp.toml")),
    ("smtp", include_str!("../../assets/lessons/smtp.toml")),
    ("pop3", include_str!("../../assets/lessons/pop3.toml")),
    ("imap", include_str!("../../assets/lessons/imap.toml")),
    ("tls", include_str!("../../assets/lessons/tls.toml")),
    ("mail", include_str!("../../assets/lessons/mail.toml")),
    ("ws", include_str!("../../assets/lessons/ws.toml")),
    ("ping", include_str!("../../assets/lessons/ping.toml")),
    ("traceroute", include_str!("../../assets/lessons/traceroute.toml")),
    ("dns", include_str!("../../assets/lessons/dns.toml")),
    ("nat", include_str!("../../assets/lessons/nat.toml")),
    ("portscan", include_str!("../../assets/lessons/portscan.toml")),
    ("ports", include_str!("../../assets/lessons/ports.toml")),
    ("exercises", include_str!("../../assets/lessons/exercises.toml")),
];

/// Every lesson. A file that does not read is a bug that the tests catch; it is left out.
pub fn all() -> Vec<Lesson> {
    FILES.iter().filter_map(|(name, text)| parse(name, text).ok()).collect()
}

/// The lesson named `name`.
pub fn find(name: &str) -> Option<Lesson> {
    FILES.iter().find(|(n, _)| *n == name).and_then(|(n, text)| parse(n, text).ok())
}

/// The lesson names, for messages.
pub fn names() -> Vec<&'static str> {
    FILES.iter().map(|(n, _)| *n).collect()
}

/// Reads and checks one lesson file; `Err` says what is wrong, naming the part.
pub fn parse(name: &str, text: &str) -> Result<Lesson, String> {
    let mut lesson: Lesson = toml::from_str(text).map_err(|e| format!("lesson {name}: {e}"))?;
    lesson.name = name.to_string();
    for part in &mut lesson.parts {
        for text in [&mut part.en, &mut part.ko] {
            *text = reflow(text);
        }
        for text in [&mut part.model, &mut part.explain].into_iter().flatten() {
            text.en = reflow(&text.en);
            text.ko = reflow(&text.ko);
        }
    }
    if let Some(lab) = &lesson.lab
        && crate::labs::find(lab).is_none()
    {
        return Err(format!("lesson {name}: no lab named {lab}"));
    }
    for (i, part) in lesson.parts.iter().enumerate() {
        check(part, lesson.lab.is_some()).map_err(|e| format!("lesson {name}, part {}: {e}", i + 1))?;
    }
    Ok(lesson)
}

fn check(part: &Part, has_lab: bool) -> Result<(), &'static str> {
    let graded = matches!(part.kind, Kind::Choice | Kind::Number | Kind::Field);
    if (part.at.is_some() || part.next.is_some()) && !has_lab {
        return Err("`at` and `next` wait for steps: the lesson needs a `lab`");
    }
    if graded && part.field.is_none() {
        return Err("a graded question names the step's `field` it is checked against");
    }
    if graded && part.at.is_none() && part.next.is_none() {
        return Err("a graded question waits for a step: give `at` or `next`");
    }
    if part.kind == Kind::Field && part.next.is_some() {
        return Err("a field question is about the step it stops at: `at`, not `next`");
    }
    if part.kind == Kind::Choice && part.choices.len() < 2 {
        return Err("a choice question has at least two `choices`");
    }
    if part.kind != Kind::Choice && !part.choices.is_empty() {
        return Err("only a choice question has `choices`");
    }
    if (part.kind == Kind::Free) != part.model.is_some() {
        return Err("a free question, and only one, has a `model` answer");
    }
    if (part.kind == Kind::Ports) == part.ports.is_empty() {
        return Err("a ports quiz, and only one, has `ports` rows");
    }
    if (part.kind == Kind::Table) != part.table.is_some() {
        return Err("a table part, and only one, has a `table`");
    }
    if let Some(table) = &part.table
        && (table.en.len() != table.ko.len() || table.en.iter().zip(&table.ko).any(|(e, k)| e.len() != k.len()))
    {
        return Err("the table has the same rows and cells in both languages");
    }
    Ok(())
}

/// Text as the file wraps it, made into paragraphs: lines joined by a space, a blank line
/// kept as a paragraph break (`\n\n`), so each screen wraps it to its own width.
pub fn reflow(text: &str) -> String {
    crate::locale::parse_catalog(&format!("[x]\n{text}")).remove("x").unwrap_or_default()
}

/// A table's rows as lines, its columns aligned by display width (Hangul takes two columns),
/// a rule under the heading.
pub fn table_lines(rows: &[Vec<String>]) -> Vec<String> {
    let width = crate::tui::text::width;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..columns).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| width(s)).max().unwrap_or(0)).collect();
    let mut lines = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - width(cell) + 2));
            }
        }
        lines.push(line.trim_end().to_string());
        if i == 0 {
            lines.push(widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>().join("  "));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_file_reads() {
        for (name, text) in FILES {
            let lesson = parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(lesson.parts.iter().any(Part::asks), "lesson {name} asks nothing");
        }
    }

    /// Korean text is Korean: where the English is a sentence, the Korean has Hangul.
    #[test]
    fn every_sentence_has_its_korean() {
        let hangul = |s: &str| s.chars().any(|c| ('가'..='힣').contains(&c));
        let sentence =
            |s: &str| s.split_whitespace().filter(|w| w.chars().all(|c| c.is_ascii_lowercase())).count() >= 3;
        for lesson in all() {
            let mut pairs = vec![(&lesson.title.en, &lesson.title.ko), (&lesson.about.en, &lesson.about.ko)];
            for part in &lesson.parts {
                pairs.push((&part.en, &part.ko));
                for t in [&part.model, &part.explain, &part.review].into_iter().flatten() {
                    pairs.push((&t.en, &t.ko));
                }
                pairs.extend(part.choices.iter().map(|c| (&c.en, &c.ko)));
                pairs.extend(part.ports.iter().map(|r| (&r.en, &r.ko)));
            }
            for (en, ko) in pairs {
                assert!(!sentence(en) || hangul(ko), "lesson {}: no Korean for {en:?}: {ko:?}", lesson.name);
            }
        }
    }

    #[test]
    fn choice_patterns() {
        assert!(like("3*", "354"));
        assert!(!like("3*", "250"));
        assert!(like("*RST*", "RST,ACK"));
        assert!(like("*rst*", "RST"));
        assert!(!like("*RST*", "SYN,ACK"));
        assert!(like("offer", "OFFER"));
        assert!(!like("OFFER", "OFFERED"));
        assert!(like("a*c*e", "abcde"));
        assert!(!like("a*c*e", "abde"));
        assert!(!like("ab*ba", "aba"), "the ends may not overlap");
    }

    #[test]
    fn a_match_is_a_kind_prefix_at_a_dot() {
        let m = Match::try_from("tcp.ack".to_string()).unwrap();
        let step = |kind: &str| Step {
            kind: kind.into(),
            summary: "RCPT TO:<carol@elsewhere.invalid>".into(),
            ..Step::default()
        };
        assert!(m.matches(&step("tcp.ack.handshake")));
        assert!(m.matches(&step("tcp.ack")));
        assert!(!m.matches(&step("tcp.ackx")));
        let m = Match::try_from("smtp.command.RCPT ~ elsewhere".to_string()).unwrap();
        assert!(m.matches(&step("smtp.command.RCPT")));
        assert!(!Match::try_from("smtp.command.RCPT ~ bob@".to_string()).unwrap().matches(&step("smtp.command.RCPT")));
        assert!(Match::try_from("two words".to_string()).is_err());
    }

    #[test]
    fn a_broken_part_is_named() {
        let text = r#"
            lab = "tcp"
            title = { en = "t", ko = "t" }
            about = { en = "a", ko = "a" }
            [[part]]
            kind = "text"
            en = "x"
            ko = "x"
            [[part]]
            kind = "number"
            at = "tcp.syn"
            en = "?"
            ko = "?"
        "#;
        assert_eq!(
            parse("t", text).unwrap_err(),
            "lesson t, part 2: a graded question names the step's `field` it is checked against"
        );
        let unknown = text.replace("kind = \"text\"", "kind = \"text\"\nwhen = 3");
        assert!(parse("t", &unknown).unwrap_err().contains("unknown field `when`"));
    }

    #[test]
    fn tables_align_by_display_width() {
        let rows = vec![vec!["프로토콜".to_string(), "포트".to_string()], vec!["SSH".to_string(), "22".to_string()]];
        let lines = table_lines(&rows);
        assert_eq!(lines[0], "프로토콜  포트");
        assert_eq!(lines[1], "────────  ────");
        assert_eq!(lines[2], "SSH       22");
    }
}
