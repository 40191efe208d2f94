//! The configuration file, `$XDG_CONFIG_HOME/protolab/config.toml` (else
//! `~/.config/protolab/config.toml`; `PROTOLAB_CONFIG` names another): the TUI's defaults,
//! below the command line's flags and above the environment's.
//!
//! ```toml
//! lang = "ko"          # en | ko
//! theme = "light"      # dark | light | high-contrast | no-color
//! speed = 2            # play speed: 0.25 0.5 1 2 4 8
//! wire = "sim"         # every lab on this wire where it can run: sim | host
//! lab = "tcp"          # the tab the TUI opens on
//! present = true       # start in presenter mode
//!
//! [keys]               # an action's keys instead of the table's (names: `config --print`)
//! next = ["Right", "n"]
//! quit = ["Ctrl-q"]
//! ```
//!
//! An unknown key or a wrong value is a usage error: one line naming the file, the line and
//! the key, and exit status 2.

use crate::locale::Lang;
use crate::net::Wire;
use crate::tui::keys::{Key, NAMES, Overrides};
use crate::tui::theme::Theme;
use std::path::PathBuf;

/// What the file may say; anything else is refused.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub lang: Option<Lang>,
    pub theme: Option<Theme>,
    pub speed: Option<f32>,
    pub wire: Option<Wire>,
    pub lab: Option<String>,
    pub present: Option<bool>,
    /// Action name → the keys it answers to instead of the table's.
    pub keys: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// Where the configuration file is looked for.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROTOLAB_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("protolab").join("config.toml"))
}

/// Reads the configuration file; none is the defaults. `Err` is the one line to say.
pub fn load() -> Result<(File, Option<PathBuf>), String> {
    let Some(path) = path() else { return Ok((File::default(), None)) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((File::default(), None)),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let file = parse(&text).map_err(|e| format!("{}:{e}", path.display()))?;
    Ok((file, Some(path)))
}

/// Parses and checks a configuration; `Err` is `LINE: what is wrong`.
pub fn parse(text: &str) -> Result<File, String> {
    let file: File = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        format!("{line}: {}", e.message().trim())
    })?;
    let line_of = |key: &str| text.lines().position(|l| l.trim_start().starts_with(key)).map_or(1, |i| i + 1);
    if let Some(speed) = file.speed
        && !crate::tui::app::SPEEDS.contains(&speed)
    {
        return Err(format!("{}: speed = {speed}: it is one of 0.25, 0.5, 1, 2, 4, 8", line_of("speed")));
    }
    if let Some(lab) = &file.lab
        && crate::labs::find(lab).is_none()
    {
        let names: Vec<_> = crate::labs::registry().iter().map(|l| l.info().name).collect();
        return Err(format!("{}: lab = \"{lab}\": there is no such lab ({})", line_of("lab"), names.join(", ")));
    }
    keys(&file, &line_of)?;
    Ok(file)
}

/// The `[keys]` table as key overrides; `Err` names the line and the action.
fn keys(file: &File, line_of: &dyn Fn(&str) -> usize) -> Result<Overrides, String> {
    let mut out: Overrides = Vec::new();
    for (name, keys) in file.keys.iter().flatten() {
        let Some((_, action)) = NAMES.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            return Err(format!("{}: keys.{name}: there is no such action ({})", line_of(name), names.join(", ")));
        };
        let mut parsed = Vec::new();
        for text in keys {
            let key = Key::parse(text).map_err(|e| format!("{}: keys.{name}: {e}", line_of(name)))?;
            if let Some((other, _)) = out.iter().find(|(_, ks)| ks.contains(&key)) {
                let other = NAMES.iter().find(|(_, a)| a == other).map_or("?", |(n, _)| n);
                return Err(format!("{}: keys.{name}: {text} is already the key of {other}", line_of(name)));
            }
            parsed.push(key);
        }
        out.push((*action, parsed));
    }
    Ok(out)
}

/// The settings the TUI runs with: each from the command line, else the file, else the
/// environment or the default; with where it came from, for `config --print`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub lang: (Lang, &'static str),
    pub theme: (Theme, &'static str),
    pub speed: (f32, &'static str),
    pub wire: (Option<Wire>, &'static str),
    pub lab: (Option<String>, &'static str),
    pub present: (bool, &'static str),
    /// Keys the file gives actions instead of the table's.
    pub keys: Overrides,
}

/// What the command line said, for [`Settings::resolve`].
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub lang: Option<Lang>,
    pub theme: Option<Theme>,
    pub wire: Option<Wire>,
    pub lab: Option<String>,
    pub present: bool,
}

impl Settings {
    pub fn resolve(flags: Flags, file: File) -> Settings {
        fn pick<T>(flag: Option<T>, file: Option<T>, otherwise: (T, &'static str)) -> (T, &'static str) {
            match (flag, file) {
                (Some(v), _) => (v, "the command line"),
                (None, Some(v)) => (v, "the config file"),
                (None, None) => otherwise,
            }
        }
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let env_theme = if no_color { (Theme::NoColor, "NO_COLOR") } else { (Theme::Dark, "the default") };
        let env_lang = Lang::asked().map_or((Lang::En, "the default"), |lang| (lang, "the locale"));
        // Checked when the file was read: what is left is good.
        let keys = keys(&file, &|_| 0).unwrap_or_default();
        Settings {
            lang: pick(flags.lang, file.lang, env_lang),
            theme: pick(flags.theme, file.theme, env_theme),
            speed: pick(None, file.speed, (1.0, "the default")),
            wire: pick(flags.wire.map(Some), file.wire.map(Some), (None, "the default")),
            lab: pick(flags.lab.map(Some), file.lab.map(Some), (None, "the default")),
            present: pick(flags.present.then_some(true), file.present, (false, "the default")),
            keys,
        }
    }

    /// The effective configuration, as a config file would say it, each line saying where its
    /// value came from.
    pub fn print(&self, path: Option<&std::path::Path>) -> String {
        let quoted = |s: &str| format!("\"{s}\"");
        let theme = match self.theme.0 {
            Theme::Dark => "dark",
            Theme::Light => "light",
            Theme::HighContrast => "high-contrast",
            Theme::NoColor => "no-color",
        };
        let wire = match self.wire.0 {
            Some(Wire::Sim) => quoted("sim"),
            Some(Wire::Host) => quoted("host"),
            None => "# each lab's own".into(),
        };
        let lines = [
            ("lang", quoted(self.lang.0.code()), self.lang.1),
            ("theme", quoted(theme), self.theme.1),
            ("speed", self.speed.0.to_string(), self.speed.1),
            ("wire", wire, self.wire.1),
            ("lab", self.lab.0.as_deref().map_or("# the first tab".into(), quoted), self.lab.1),
            ("present", self.present.0.to_string(), self.present.1),
        ];
        let mut out = match path {
            Some(p) => format!("# protolab's effective configuration; the file: {}\n", p.display()),
            None => "# protolab's effective configuration; no config file\n".to_string(),
        };
        for (key, value, from) in lines {
            let line =
                if value.starts_with('#') { format!("# {key} = {}", &value[2..]) } else { format!("{key} = {value}") };
            out.push_str(&format!("{line:<28}# {from}\n"));
        }
        // Every action's keys: the file's, or the table's.
        out.push_str("\n[keys]\n");
        for (name, action) in NAMES {
            let from = if self.keys.iter().any(|(a, _)| a == action) { "the config file" } else { "the default" };
            let keys = crate::tui::keys::keys_with(*action, &self.keys);
            let quoted: Vec<String> = keys.iter().map(|k| format!("\"{}\"", k.config_name())).collect();
            let line = format!("{name} = [{}]", quoted.join(", "));
            out.push_str(&format!("{line:<34} # {from}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_reads_and_a_bad_one_names_its_line_and_key() {
        let file =
            parse("lang = \"ko\"\ntheme = \"high-contrast\"\nspeed = 2\nwire = \"sim\"\nlab = \"tcp\"\n").unwrap();
        assert_eq!((file.lang, file.theme, file.speed), (Some(Lang::Ko), Some(Theme::HighContrast), Some(2.0)));
        let unknown = parse("lang = \"en\"\ncolour = \"red\"\n").unwrap_err();
        assert!(unknown.starts_with("2: ") && unknown.contains("colour"), "{unknown}");
        let value = parse("theme = \"purple\"\n").unwrap_err();
        assert!(value.starts_with("1: ") && value.contains("purple"), "{value}");
        let speed = parse("\nspeed = 3\n").unwrap_err();
        assert_eq!(speed, "2: speed = 3: it is one of 0.25, 0.5, 1, 2, 4, 8");
        let lab = parse("lab = \"ftp\"\n").unwrap_err();
        assert!(lab.starts_with("1: lab = \"ftp\": there is no such lab"), "{lab}");
        let action = parse("[keys]\njump = [\"x\"]\n").unwrap_err();
        assert!(action.starts_with("2: keys.jump: there is no such action (next, previous"), "{action}");
        let key = parse("[keys]\nnext = [\"Rigth\"]\n").unwrap_err();
        assert!(key.starts_with("2: keys.next: `Rigth` is not a key"), "{key}");
        let twice = parse("[keys]\nnext = [\"n\"]\nquit = [\"n\"]\n").unwrap_err();
        assert_eq!(twice, "3: keys.quit: n is already the key of next");
    }

    #[test]
    fn keys_from_the_file_replace_the_tables() {
        use crate::tui::keys::{Action, action_with};
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let file = parse("[keys]\nnext = [\"n\", \"Ctrl-f\"]\nquit = [\"Shift-q\"]\n").unwrap();
        let s = Settings::resolve(Flags::default(), file);
        let press = |code, mods| action_with(KeyEvent::new(code, mods), &s.keys);
        assert_eq!(press(KeyCode::Char('n'), KeyModifiers::NONE), Some(Action::StepForward), "n was search-next");
        assert_eq!(press(KeyCode::Char('f'), KeyModifiers::CONTROL), Some(Action::StepForward));
        assert_eq!(press(KeyCode::Right, KeyModifiers::NONE), None, "next lost the table's keys");
        assert_eq!(press(KeyCode::Char('Q'), KeyModifiers::SHIFT), Some(Action::Quit));
        assert_eq!(press(KeyCode::Char('q'), KeyModifiers::NONE), None);
        assert_eq!(press(KeyCode::Char('c'), KeyModifiers::CONTROL), Some(Action::Interrupt), "Ctrl-C always quits");
        assert_eq!(press(KeyCode::Left, KeyModifiers::NONE), Some(Action::StepBack), "the others keep theirs");
        let printed = s.print(None);
        let line = |start: &str| printed.lines().find(|l| l.starts_with(start)).unwrap_or_default().to_string();
        assert!(line("next = [\"n\", \"Ctrl-f\"]").ends_with("# the config file"), "{printed}");
        assert!(line("previous = [\"Left\", \"h\"]").ends_with("# the default"), "{printed}");
        assert!(line("search-next = []").ends_with("# the default"), "n went to next:\n{printed}");
        // What it prints reads back.
        let body: String = printed.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        assert_eq!(Settings::resolve(Flags::default(), parse(&body).unwrap()).keys.len(), NAMES.len());
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let file = parse("lang = \"ko\"\ntheme = \"light\"\n").unwrap();
        let flags = Flags { lang: Some(Lang::En), ..Flags::default() };
        let s = Settings::resolve(flags, file);
        assert_eq!(s.lang, (Lang::En, "the command line"));
        assert_eq!(s.theme, (Theme::Light, "the config file"));
        assert!(s.print(None).contains("theme = \"light\"             # the config file"), "{}", s.print(None));
    }
}
