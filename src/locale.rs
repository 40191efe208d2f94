//! The language protolab speaks on screen: English, or Korean for the classrooms its course
//! notes come from. UI strings are written in English in the code, wrapped in [`tr`] or
//! [`trf`]; the Korean catalog (`assets/ui/ko.txt`) maps each English string to its Korean
//! text, in the narration files' format:
//!
//! ```text
//! [no steps yet]
//! 아직 단계가 없습니다
//! ```
//!
//! A string the catalog lacks is shown in English (a test makes sure none is lacking).
//! Placeholders are `{name}`, filled by [`trf`]. Narration has files of its own per language
//! (`assets/narration/<lang>/`).
//!
//! A step's notes and its malformed reason are part of the step, which the headless outputs
//! print in English (the step contract): they are made in English with [`en`], whose template
//! marks them for a second catalog (`assets/ui/ko-notes.txt`, same format). The screen says them
//! in Korean with [`localize`] and [`localize_reason`], which find the template a finished text
//! came from and fill its Korean with the same values. Phrases a template takes as a value (an
//! SMTP reply code's meaning) are marked with [`term`] and said in Korean too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A language protolab speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ko,
}

impl Lang {
    /// The language the environment asks for, as POSIX reads it: `LC_ALL`, then
    /// `LC_MESSAGES`, then `LANG`; the first that is set decides (`ko_KR.UTF-8` → Korean).
    pub fn from_env() -> Lang {
        Lang::asked().unwrap_or_default()
    }

    /// The language the environment asks for, if it asks (one of those variables is set).
    pub fn asked() -> Option<Lang> {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .map(|value| Lang::from_locale(&value))
    }

    /// The language of a locale name (`ko`, `ko_KR`, `ko_KR.UTF-8`, `en_US.UTF-8`, `C`).
    pub fn from_locale(locale: &str) -> Lang {
        let language = locale.split(['_', '.', '@', '-']).next().unwrap_or("");
        if language.eq_ignore_ascii_case("ko") { Lang::Ko } else { Lang::En }
    }

    /// Its code, as `--lang` takes it and the asset folders are named.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ko => "ko",
        }
    }
}

/// The Korean catalog's text.
pub const KO: &str = include_str!("../assets/ui/ko.txt");

/// Entries of a text in the `[key]` format (the UI catalog, the narration files): the key
/// line, then the text up to the next key, its lines joined by a space and a blank line
/// between paragraphs kept (`\n\n`). `#` lines before the first key are comments.
pub fn parse_catalog(text: &str) -> HashMap<&str, String> {
    let mut entries = HashMap::new();
    let mut key: Option<&str> = None;
    let mut body = String::new();
    for line in text.lines() {
        let t = line.trim_end();
        if t.len() > 2 && t.starts_with('[') && t.ends_with(']') {
            if let Some(k) = key.take() {
                entries.insert(k, std::mem::take(&mut body).trim().to_string());
            }
            key = Some(&t[1..t.len() - 1]);
        } else if key.is_some() {
            if t.is_empty() {
                if !body.is_empty() && !body.ends_with('\n') {
                    body.push_str("\n\n");
                }
            } else {
                if !body.is_empty() && !body.ends_with('\n') {
                    body.push(' ');
                }
                body.push_str(t.trim_start());
            }
        }
    }
    if let Some(k) = key {
        entries.insert(k, body.trim().to_string());
    }
    entries
}

fn korean() -> &'static HashMap<&'static str, String> {
    static CATALOG: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut catalog = parse_catalog(KO);
        // The spaces that frame a title (` details `) are the code's, kept in every language.
        for (english, korean) in catalog.iter_mut() {
            if english.starts_with(' ') {
                korean.insert(0, ' ');
            }
            if english.ends_with(' ') {
                korean.push(' ');
            }
        }
        catalog
    })
}

/// `english` in `lang`.
pub fn tr(lang: Lang, english: &'static str) -> &'static str {
    match lang {
        Lang::En => english,
        Lang::Ko => korean().get(english).map_or(english, String::as_str),
    }
}

/// `english` in `lang`, its `{name}`s filled from `args`.
pub fn trf(lang: Lang, english: &'static str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = tr(lang, english).to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// The Korean catalog of the steps' notes and malformed reasons: the templates of [`en`] and the
/// phrases of [`term`].
pub const KO_NOTES: &str = include_str!("../assets/ui/ko-notes.txt");

/// A note or a malformed reason as a step carries it: `template`, in English, its `{name}`s
/// filled from `args` in one pass (a value from the wire that looks like a placeholder stays
/// as it is). The literal template is what marks the text for the catalog of notes, so the
/// screen can find it again in a finished text ([`localize`]): write it in the call, and give
/// its values already formatted.
pub fn en(template: &'static str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    // Each value is written where it goes, with no string of its own on the way (a note is
    // made for many a frame).
    fill(template, |name, out| {
        use std::fmt::Write;
        let value = args.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        value.map(|v| write!(out, "{v}")).is_some()
    })
}

/// A phrase that fills a placeholder of a note or a reason by itself (an SMTP reply code's
/// meaning, `IPv4 header`): the English as is, marked for the catalog of notes, whose Korean
/// [`localize`] puts in its place.
pub const fn term(english: &'static str) -> &'static str {
    english
}

/// A template of the catalog of notes, cut at its placeholders.
struct Template {
    /// The text before, between and after the placeholders: one more than there are names.
    literals: Vec<&'static str>,
    /// The placeholders' names, in order.
    names: Vec<&'static str>,
    korean: String,
}

/// The catalog of notes, ready to match.
struct Notes {
    /// Texts without placeholders (whole notes, and the phrases of [`term`]).
    exact: HashMap<&'static str, String>,
    /// Texts with placeholders, those with the most literal text first: the most specific
    /// template that fits wins.
    templates: Vec<Template>,
}

fn notes() -> &'static Notes {
    static NOTES: OnceLock<Notes> = OnceLock::new();
    NOTES.get_or_init(|| {
        let mut exact = HashMap::new();
        let mut templates = Vec::new();
        for (english, korean) in parse_catalog(KO_NOTES) {
            let (literals, names) = cut(english);
            if names.is_empty() {
                exact.insert(english, korean);
            } else {
                templates.push(Template { literals, names, korean });
            }
        }
        let weight = |t: &Template| t.literals.iter().map(|l| l.len()).sum::<usize>();
        templates.sort_by(|a, b| weight(b).cmp(&weight(a)).then_with(|| a.literals.cmp(&b.literals)));
        Notes { exact, templates }
    })
}

/// A template's literal text and placeholders' names: `"T1 {t1} s"` → `["T1 ", " s"]`, `["t1"]`.
fn cut(template: &str) -> (Vec<&str>, Vec<&str>) {
    let (mut literals, mut names) = (Vec::new(), Vec::new());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        literals.push(&rest[..open]);
        names.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    literals.push(rest);
    (literals, names)
}

impl Template {
    /// The values that make this template say `text`, if it can: the text starts with the first
    /// literal and ends with the last, the literals between come in order, and every value is
    /// non-empty and passes `fits`. The earliest place for each literal that lets the rest
    /// match is taken.
    fn captures<'t>(&self, text: &'t str, fits: &dyn Fn(&str) -> bool) -> Option<Vec<&'t str>> {
        let rest = text.strip_prefix(self.literals[0])?;
        let mut values = Vec::with_capacity(self.names.len());
        follow(&self.literals[1..], rest, fits, &mut values).then_some(values)
    }
}

/// Matches the values of the placeholders left against `text`, `literals` being the text after
/// each of them; pushes the values on `values`.
fn follow<'t>(literals: &[&str], text: &'t str, fits: &dyn Fn(&str) -> bool, values: &mut Vec<&'t str>) -> bool {
    let Some((literal, after)) = literals.split_first() else { return text.is_empty() };
    let good = |value: &str| !value.is_empty() && fits(value);
    if after.is_empty() {
        // The last placeholder takes all up to the last literal, which ends the text.
        return match text.strip_suffix(literal) {
            Some(value) if good(value) => {
                values.push(value);
                true
            }
            _ => false,
        };
    }
    if text.is_empty() {
        return false;
    }
    // A value has at least one character: look for the literal after the first.
    let mut from = text.chars().next().map_or(text.len(), char::len_utf8);
    while let Some(at) = text[from..].find(literal).map(|i| i + from) {
        let value = &text[..at];
        if !fits(value) {
            // A longer value holds what this one holds.
            return false;
        }
        values.push(value);
        if follow(after, &text[at + literal.len()..], fits, values) {
            return true;
        }
        values.pop();
        from = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

impl Notes {
    /// `text` in Korean, if a text of the catalog makes it: a whole text, or a template whose
    /// values (each one in Korean if it is a phrase of the catalog) pass `fits`.
    fn korean(&self, text: &str, fits: &dyn Fn(&str) -> bool) -> Option<String> {
        self.say(text, fits, false)
    }

    /// Like [`Notes::korean`]; `nested`: a value may itself be a text of a template (a failure
    /// that quotes a malformed reason), said in Korean one level down.
    fn say(&self, text: &str, fits: &dyn Fn(&str) -> bool, nested: bool) -> Option<String> {
        if let Some(korean) = self.exact.get(text) {
            return Some(korean.clone());
        }
        self.templates.iter().find_map(|t| {
            let values = t.captures(text, fits)?;
            let values: Vec<Cow<str>> = values
                .iter()
                .map(|&v| match self.exact.get(v) {
                    Some(korean) => Cow::Borrowed(korean.as_str()),
                    None if nested => self.say(v, fits, false).map_or(Cow::Borrowed(v), Cow::Owned),
                    None => Cow::Borrowed(v),
                })
                .collect();
            Some(fill(&t.korean, |name, out| {
                t.names.iter().position(|n| *n == name).map(|i| out.push_str(&values[i])).is_some()
            }))
        })
    }
}

/// `template` with each `{name}` replaced by `value(name)` in one pass (a value is never read
/// again for placeholders); a name without a value stays as it is.
/// `template` with each `{name}` filled by `put`, which writes the value and says whether it
/// knew the name (an unknown one stays as it is).
fn fill(template: &str, mut put: impl FnMut(&str, &mut String) -> bool) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..open + close];
        if !put(name, &mut out) {
            out.push_str(&rest[open..open + close + 1]);
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// A step's note (made by [`en`]) in `lang`: the English as is, or its Korean when the catalog
/// of notes has its template; a text from elsewhere passes unchanged.
pub fn localize(lang: Lang, note: &str) -> Cow<'_, str> {
    match lang {
        Lang::En => Cow::Borrowed(note),
        Lang::Ko => notes().korean(note, &|_| true).map_or(Cow::Borrowed(note), Cow::Owned),
    }
}

/// A step's malformed reason in `lang`, like [`localize`]. A reason may name several failed
/// checks joined by `; `: each is said on its own when the whole is not one text of the
/// catalog (a value never spans a `; `).
pub fn localize_reason(lang: Lang, reason: &str) -> Cow<'_, str> {
    if lang == Lang::En {
        return Cow::Borrowed(reason);
    }
    let notes = notes();
    let single = |value: &str| !value.contains("; ");
    if let Some(korean) = notes.korean(reason, &single) {
        return Cow::Owned(korean);
    }
    if !reason.contains("; ") {
        return Cow::Borrowed(reason);
    }
    let parts: Vec<Cow<str>> =
        reason.split("; ").map(|p| notes.korean(p, &single).map_or(Cow::Borrowed(p), Cow::Owned)).collect();
    Cow::Owned(parts.join("; "))
}

/// Why a run failed, in `lang`: the error's chain, outermost first (`cannot connect to …`, then
/// the cause), each link said on its own and joined by `: `. Links made with [`en`] or [`term`]
/// come out Korean, and so do the notes and reasons they quote; what the OS or a library said
/// stays as it came.
pub fn localize_failure(lang: Lang, chain: &[String]) -> String {
    let links: Vec<Cow<str>> = match lang {
        Lang::En => chain.iter().map(|l| Cow::Borrowed(l.as_str())).collect(),
        Lang::Ko => chain
            .iter()
            .map(|l| notes().say(l, &|_| true, true).map_or(Cow::Borrowed(l.as_str()), Cow::Owned))
            .collect(),
    };
    links.join(": ")
}

/// An endpoint's name as the screen and the narration say it (`client` → `클라이언트`); a
/// DHCP client named with its address (`client 02:00:…`) keeps the address.
pub fn endpoint(lang: Lang, name: &str) -> String {
    if lang == Lang::En {
        return name.to_string();
    }
    let (role, rest) = name.split_once(' ').map_or((name, ""), |(r, rest)| (r, rest));
    let role = match role {
        "client" => tr(lang, "client"),
        "server" => tr(lang, "server"),
        _ => return name.to_string(),
    };
    if rest.is_empty() { role.to_string() } else { format!("{role} {rest}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locale_names_the_language() {
        assert_eq!(Lang::from_locale("ko_KR.UTF-8"), Lang::Ko);
        assert_eq!(Lang::from_locale("ko"), Lang::Ko);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("C"), Lang::En);
        assert_eq!(Lang::from_locale("kok_IN"), Lang::En, "Konkani is not Korean");
    }

    #[test]
    fn placeholders_fill_in_either_language() {
        assert_eq!(trf(Lang::En, "step {at}/{of}", &[("at", &3), ("of", &9)]), "step 3/9");
        assert_eq!(endpoint(Lang::En, "client 02:00:00:00:00:01"), "client 02:00:00:00:00:01");
        assert_eq!(endpoint(Lang::Ko, "client 02:00:00:00:00:01"), "클라이언트 02:00:00:00:00:01");
        assert_eq!(endpoint(Lang::Ko, "server"), "서버");
    }

    /// A template of its own, matched against `text` (values must not hold `; ` when `single`).
    fn values<'t>(template: &'static str, text: &'t str, single: bool) -> Option<Vec<&'t str>> {
        let (literals, names) = cut(template);
        let t = Template { literals, names, korean: String::new() };
        t.captures(text, &|v: &str| !single || !v.contains("; "))
    }

    #[test]
    fn a_template_takes_its_values_back_from_the_text() {
        assert_eq!(values("T1 {t1} s = {share} %", "T1 60 s = 50.0 %", false), Some(vec!["60", "50.0"]));
        // A placeholder at the start, at the end, or both.
        assert_eq!(values("{n} bytes of padding", "39 bytes of padding", false), Some(vec!["39"]));
        assert_eq!(values("answers {verb}", "answers EHLO", false), Some(vec!["EHLO"]));
        assert_eq!(values("{code}: {meaning}", "250: a: b", false), Some(vec!["250", "a: b"]));
        // The literals anchor both ends and come in order; a value is never empty.
        assert_eq!(values("answers {verb}", "it answers EHLO", false), None);
        assert_eq!(values("{n} bytes", "39 bytes left", false), None);
        assert_eq!(values("answers {verb}", "answers ", false), None);
        assert_eq!(values("{a} of {b}", " of 3", false), None);
        // The earliest literal that lets the rest match: a value may hold a later literal's text.
        assert_eq!(values("{a} of {b} bytes", "5 of 7 of 9 bytes", false), Some(vec!["5", "7 of 9"]));
        assert_eq!(values("{a}: x {b}: y", "k: v: x q: y", false), Some(vec!["k: v", "q"]));
        // A reason's value never spans the `; ` that joins two reasons.
        assert_eq!(values("{what} checksum {sum}", "IPv4 checksum 1; TCP checksum 2", true), None);
        assert_eq!(
            values("{what} checksum {sum}", "IPv4 checksum 1; TCP checksum 2", false).unwrap()[1],
            "1; TCP checksum 2"
        );
    }

    #[test]
    fn notes_and_reasons_come_out_in_korean_and_english_stays() {
        let note = en(
            "T1 {t1} s = {share} % of the lease: the client renews with this server",
            &[("t1", &60), ("share", &"50.0")],
        );
        assert_eq!(note, "T1 60 s = 50.0 % of the lease: the client renews with this server");
        assert_eq!(en("{a} of {b}", &[("a", &"{b}"), ("b", &2)]), "{b} of 2", "a value is not read again");
        assert_eq!(localize(Lang::En, &note), note);
        assert_eq!(
            localize(Lang::Ko, &note),
            "T1 60초 = 임대 시간의 50.0 %: 클라이언트가 이 서버에 임대 갱신을 요청함"
        );
        assert_eq!(localize(Lang::Ko, "answers the message text"), "메시지 본문에 대한 응답");
        assert_eq!(localize(Lang::Ko, "answers EHLO"), "EHLO에 대한 응답");
        // A phrase that fills a placeholder by itself is said in Korean too.
        assert_eq!(localize(Lang::Ko, "250: requested mail action okay, completed"), "250: 요청한 메일 동작을 완료함");
        assert_eq!(localize(Lang::Ko, "251: user not local; will forward"), "251: 로컬 사용자가 아님, 전달할 예정");
        // A text no template makes passes as it is.
        assert_eq!(localize(Lang::Ko, "  = base64(SHA-1(\"k\" + \"g\"))"), "  = base64(SHA-1(\"k\" + \"g\"))");
        assert!(matches!(localize(Lang::Ko, "Connection reset by peer"), Cow::Borrowed(_)));
    }

    #[test]
    fn joined_reasons_are_said_one_by_one() {
        let reason = "IPv4 header checksum 0x1234 should be 0x5678; TCP checksum 0xdfbf should be 0x0001";
        assert_eq!(localize_reason(Lang::En, reason), reason);
        assert_eq!(
            localize_reason(Lang::Ko, reason),
            "IPv4 헤더 체크섬 0x1234: 0x5678이어야 함; TCP 체크섬 0xdfbf: 0x0001이어야 함"
        );
        // One reason with a `; ` of its own, and a part no template makes, kept as it is.
        assert_eq!(
            localize_reason(Lang::Ko, "line ends in a bare LF; SMTP lines end in CR LF (nc -C sends them)"),
            "줄이 LF만으로 끝남. SMTP의 줄은 CR LF로 끝남(nc -C가 CR LF를 보냄)"
        );
        assert_eq!(
            localize_reason(Lang::Ko, "dhcproto: bad input; the options end without the End option (255)"),
            "dhcproto 디코딩 오류: bad input; 옵션이 End 옵션(255) 없이 끝남"
        );
        assert_eq!(localize_reason(Lang::Ko, "something else; and more"), "something else; and more");
    }
}
