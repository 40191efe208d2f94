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

/// The Korean of the notes and reasons the decoders write in English (`assets/ui/ko-notes.txt`):
/// keys are templates of the English text, `{name}` standing for what changes.
pub const KO_NOTES: &str = include_str!("../assets/ui/ko-notes.txt");

/// One template: the English text's fixed pieces around its placeholders, and the Korean.
struct Template {
    /// Literal text, then a placeholder name, then literal text ... (always odd in length).
    pieces: Vec<String>,
    korean: String,
    /// The literal characters: of two templates that match, the more literal one wins.
    literal: usize,
}

fn note_templates() -> &'static [Template] {
    static TEMPLATES: OnceLock<Vec<Template>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        parse_catalog(KO_NOTES)
            .into_iter()
            .map(|(english, korean)| {
                let mut pieces = Vec::new();
                let mut rest = english;
                while let Some(open) = rest.find('{')
                    && let Some(close) = rest[open..].find('}')
                {
                    pieces.push(rest[..open].to_string());
                    pieces.push(rest[open + 1..open + close].to_string());
                    rest = &rest[open + close + 1..];
                }
                pieces.push(rest.to_string());
                let literal = pieces.iter().step_by(2).map(String::len).sum();
                Template { pieces, korean, literal }
            })
            .collect()
    })
}

/// The values of `template`'s placeholders in `text`, if `text` is that template filled in.
fn captures<'t>(template: &'t Template, text: &'t str) -> Option<Vec<(&'t str, &'t str)>> {
    let pieces = &template.pieces;
    let mut rest = text.strip_prefix(pieces[0].as_str())?;
    let mut out = Vec::new();
    let mut i = 1;
    while i < pieces.len() {
        let (name, after) = (pieces[i].as_str(), pieces[i + 1].as_str());
        let last = i + 2 == pieces.len();
        let at = if last {
            rest.strip_suffix(after).map(str::len)?
        } else if after.is_empty() {
            return None;
        } else {
            rest.find(after)?
        };
        if at == 0 {
            return None;
        }
        out.push((name, &rest[..at]));
        rest = &rest[at + after.len()..];
        i += 2;
    }
    rest.is_empty().then_some(out)
}

/// A note or a reason a decoder wrote in English, in `lang`: reasons joined by `; ` each on
/// their own; what has no Korean stays as it is. Outputs (JSONL, text) keep the English.
pub fn localize(lang: Lang, text: &str) -> std::borrow::Cow<'_, str> {
    if lang == Lang::En {
        return text.into();
    }
    let one = |part: &str| -> Option<String> {
        let (template, caps) =
            note_templates().iter().filter_map(|t| captures(t, part).map(|c| (t, c))).max_by_key(|(t, _)| t.literal)?;
        let mut out = template.korean.clone();
        for (name, value) in caps {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        Some(out)
    };
    // A note with a `;` of its own is one template; reasons joined by `; ` are each one.
    if let Some(whole) = one(text) {
        return whole.into();
    }
    let parts: Vec<&str> = text.split("; ").collect();
    let done: Vec<Option<String>> = parts.iter().map(|p| one(p)).collect();
    if done.iter().all(Option::is_none) {
        return text.into();
    }
    parts.iter().zip(done).map(|(p, d)| d.unwrap_or_else(|| p.to_string())).collect::<Vec<_>>().join("; ").into()
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
    fn notes_are_read_back_through_their_templates() {
        let t = |english: &str, korean: &str| {
            let mut t = Template { pieces: Vec::new(), korean: korean.into(), literal: 0 };
            let mut rest = english;
            while let Some(open) = rest.find('{') {
                let close = rest[open..].find('}').unwrap();
                t.pieces.push(rest[..open].to_string());
                t.pieces.push(rest[open + 1..open + close].to_string());
                rest = &rest[open + close + 1..];
            }
            t.pieces.push(rest.to_string());
            t
        };
        let a = t("T1 {t1} s = {share} % of the lease", "");
        assert_eq!(captures(&a, "T1 60 s = 50.0 % of the lease"), Some(vec![("t1", "60"), ("share", "50.0")]));
        assert_eq!(captures(&a, "T1 60 s = 50.0 % of the leases"), None);
        let end = t("answers {verb}", "");
        assert_eq!(captures(&end, "answers EHLO"), Some(vec![("verb", "EHLO")]));
        assert_eq!(captures(&end, "answers "), None, "a placeholder is never empty");
        let start = t("{n} bytes of Ethernet padding", "");
        assert_eq!(captures(&start, "6 bytes of Ethernet padding"), Some(vec![("n", "6")]));
        assert_eq!(localize(Lang::Ko, "nothing like a template"), "nothing like a template");
        assert_eq!(localize(Lang::En, "answers EHLO"), "answers EHLO");
    }

    #[test]
    fn placeholders_fill_in_either_language() {
        assert_eq!(trf(Lang::En, "step {at}/{of}", &[("at", &3), ("of", &9)]), "step 3/9");
        assert_eq!(endpoint(Lang::En, "client 02:00:00:00:00:01"), "client 02:00:00:00:00:01");
        assert_eq!(endpoint(Lang::Ko, "client 02:00:00:00:00:01"), "클라이언트 02:00:00:00:00:01");
        assert_eq!(endpoint(Lang::Ko, "server"), "서버");
    }
}
