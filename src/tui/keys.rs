//! The key table: every key maps to one [`Action`]; the help popup and the status bar read
//! the same table, so they can never disagree with what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a presenter can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Move to the next step; at the newest, send the message waiting at the gate.
    StepForward,
    /// Move back through history (nothing is re-sent).
    StepBack,
    First,
    Last,
    PageUp,
    PageDown,
    /// Play: let the gate open by itself at the chosen speed.
    TogglePlay,
    Faster,
    Slower,
    /// Run the lab again from scratch: new key, new message id.
    Rerun,
    /// Run the lab again and let it go on by itself up to the selected step's place in the
    /// story: the same moment, with this new run's numbers.
    RerunTo,
    /// Point at the selected step for the audience ("look here"), or take the pointer away.
    Point,
    /// Show messages, segments, or both (lab network).
    ToggleLayers,
    /// Show only the selected step's connection, or all again.
    Follow,
    /// traceroute: UDP or ICMP probes, from the next run.
    ToggleProbes,
    /// DHCP: run the lease clock slower / faster (from the next run).
    LeaseSlower,
    LeaseFaster,
    /// Let the waiting frame go, but have the cable lose it (sim wire).
    DropFrame,
    /// Let the waiting frame go twice.
    DuplicateFrame,
    /// Let the waiting frame go with a byte flipped.
    CorruptFrame,
    NextTab,
    PrevTab,
    /// The lab in this tab (0 is the first).
    GoTo(usize),
    FieldUp,
    FieldDown,
    /// Scroll the narration.
    ScrollUp,
    ScrollDown,
    /// Details and narration over the whole screen, and back.
    Zoom,
    /// Type a text to find among the steps' summaries (`/`).
    Search,
    /// The next / previous step that matches it.
    SearchNext,
    SearchPrev,
    /// Type a step's number to go to it (`:`).
    GoToStep,
    /// Presenter mode on and off.
    Present,
    /// Blank the screen while talking, and back.
    Blank,
    Help,
    /// Start this lab's lesson (questions graded by the real steps), or close it.
    Lesson,
    /// Close a popup, leave a mode; never quits.
    Back,
    /// Quit at once.
    Quit,
    /// Ctrl-C: the second within a moment quits.
    Interrupt,
}

/// A key as the table writes it: a code and the modifiers held with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn key(code: KeyCode) -> Key {
    Key { code, mods: KeyModifiers::NONE }
}

const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

const fn shift(code: KeyCode) -> Key {
    Key { code, mods: KeyModifiers::SHIFT }
}

const fn ctrl(c: char) -> Key {
    Key { code: KeyCode::Char(c), mods: KeyModifiers::CONTROL }
}

impl Key {
    /// How help writes the key.
    pub fn name(&self) -> String {
        let code = match self.code {
            KeyCode::Right => "→".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Char(' ') => "space".into(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{}", code.to_uppercase())
        } else if self.mods.contains(KeyModifiers::SHIFT) {
            format!("Shift-{code}")
        } else {
            code
        }
    }
}

/// One row of the key table. Rows with an empty `help` belong to the row above: help shows
/// them on one line, under that row's `label`.
pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys of this row and the rows that follow it are written in help.
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
}

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[key(KeyCode::Right), ch(' '), ch('l')],
        label: "→ space l",
        action: Action::StepForward,
        help: "next step; at the newest, send the waiting message (pressed early: queued)",
    },
    Binding { keys: &[key(KeyCode::Left), ch('h')], label: "← h", action: Action::StepBack, help: "previous step" },
    Binding {
        keys: &[key(KeyCode::Up), ch('k')],
        label: "↑ ↓ k j",
        action: Action::FieldUp,
        help: "select a field: its bytes light up in the hex dump",
    },
    Binding { keys: &[key(KeyCode::Down), ch('j')], label: "", action: Action::FieldDown, help: "" },
    Binding {
        keys: &[key(KeyCode::Home), ch('g')],
        label: "Home End g G",
        action: Action::First,
        help: "first / last step",
    },
    Binding { keys: &[key(KeyCode::End), ch('G')], label: "", action: Action::Last, help: "" },
    Binding {
        keys: &[key(KeyCode::PageUp)],
        label: "PgUp PgDn",
        action: Action::PageUp,
        help: "a page of steps back / ahead",
    },
    Binding { keys: &[key(KeyCode::PageDown)], label: "", action: Action::PageDown, help: "" },
    Binding {
        keys: &[ch('K'), shift(KeyCode::Up)],
        label: "K J Shift-↑↓",
        action: Action::ScrollUp,
        help: "scroll the narration (the wheel over it, too)",
    },
    Binding { keys: &[ch('J'), shift(KeyCode::Down)], label: "", action: Action::ScrollDown, help: "" },
    Binding {
        keys: &[ch('z')],
        label: "z",
        action: Action::Zoom,
        help: "zoom: details and narration take the screen (all notes, more bytes)",
    },
    Binding {
        keys: &[ch('p')],
        label: "p",
        action: Action::TogglePlay,
        help: "play / pause this lab: each message goes by itself",
    },
    Binding {
        keys: &[ch('+'), ch('=')],
        label: "+ - = _",
        action: Action::Faster,
        help: "this lab plays and animates faster / slower",
    },
    Binding { keys: &[ch('-'), ch('_')], label: "", action: Action::Slower, help: "" },
    Binding {
        keys: &[ch('r')],
        label: "r",
        action: Action::Rerun,
        help: "run the lab again from scratch (new keys, new ids)",
    },
    Binding {
        keys: &[ch('R')],
        label: "R",
        action: Action::RerunTo,
        help: "run the lab again up to the selected step (the same moment, new numbers)",
    },
    Binding {
        keys: &[ch('m')],
        label: "m",
        action: Action::Point,
        help: "point at the selected step for the audience (m on it again takes the pointer away)",
    },
    Binding {
        keys: &[ch('d')],
        label: "d u c",
        action: Action::DropFrame,
        help: "lab network: drop / duplicate / corrupt the waiting frame",
    },
    Binding { keys: &[ch('u')], label: "", action: Action::DuplicateFrame, help: "" },
    Binding { keys: &[ch('c')], label: "", action: Action::CorruptFrame, help: "" },
    Binding {
        keys: &[ch('v')],
        label: "v",
        action: Action::ToggleLayers,
        help: "messages + segments, messages only, segments only",
    },
    Binding {
        keys: &[ch('f')],
        label: "f",
        action: Action::Follow,
        help: "follow the selected step's connection alone (each has its letter left of the ladder); f again shows all",
    },
    Binding {
        keys: &[ch('[')],
        label: "[ ]",
        action: Action::LeaseSlower,
        help: "DHCP: lease clock slower / faster (from the next run)",
    },
    Binding { keys: &[ch(']')], label: "", action: Action::LeaseFaster, help: "" },
    Binding {
        keys: &[ch('i')],
        label: "i",
        action: Action::ToggleProbes,
        help: "traceroute: UDP probes or ICMP echo requests (traceroute -I), from the next run",
    },
    Binding {
        keys: &[key(KeyCode::Tab)],
        label: "Tab Shift-Tab 1-9 0",
        action: Action::NextTab,
        help: "next / previous lab, lab by number",
    },
    Binding { keys: &[key(KeyCode::BackTab)], label: "", action: Action::PrevTab, help: "" },
    Binding { keys: &[ch('1')], label: "", action: Action::GoTo(0), help: "" },
    Binding { keys: &[ch('2')], label: "", action: Action::GoTo(1), help: "" },
    Binding { keys: &[ch('3')], label: "", action: Action::GoTo(2), help: "" },
    Binding { keys: &[ch('4')], label: "", action: Action::GoTo(3), help: "" },
    Binding { keys: &[ch('5')], label: "", action: Action::GoTo(4), help: "" },
    Binding { keys: &[ch('6')], label: "", action: Action::GoTo(5), help: "" },
    Binding { keys: &[ch('7')], label: "", action: Action::GoTo(6), help: "" },
    Binding { keys: &[ch('8')], label: "", action: Action::GoTo(7), help: "" },
    Binding { keys: &[ch('9')], label: "", action: Action::GoTo(8), help: "" },
    Binding { keys: &[ch('0')], label: "", action: Action::GoTo(9), help: "" },
    Binding {
        keys: &[ch('/')],
        label: "/ n N",
        action: Action::Search,
        help: "find a step by its summary (Enter); n and N: the next and the previous match",
    },
    Binding { keys: &[ch('n')], label: "", action: Action::SearchNext, help: "" },
    Binding { keys: &[ch('N')], label: "", action: Action::SearchPrev, help: "" },
    Binding { keys: &[ch(':')], label: ":", action: Action::GoToStep, help: "go to step N (type it, then Enter)" },
    Binding {
        keys: &[ch('P')],
        label: "P",
        action: Action::Present,
        help: "presenter mode: the ladder takes the screen, the narration a subtitle band",
    },
    Binding { keys: &[ch('b')], label: "b", action: Action::Blank, help: "blank the screen while you talk, and back" },
    Binding {
        keys: &[ch('L')],
        label: "L",
        action: Action::Lesson,
        help: "this lab's lesson: questions answered before the real step crosses (L again closes it)",
    },
    Binding { keys: &[ch('?'), key(KeyCode::F(1))], label: "? F1", action: Action::Help, help: "this help" },
    Binding {
        keys: &[key(KeyCode::Esc)],
        label: "Esc",
        action: Action::Back,
        help: "back: close help, leave zoom, show every layer again",
    },
    Binding { keys: &[ch('q')], label: "q", action: Action::Quit, help: "quit" },
    Binding { keys: &[ctrl('c')], label: "Ctrl-C Ctrl-C", action: Action::Interrupt, help: "quit (press it twice)" },
];

/// The names of the actions the configuration file may bind to other keys (`[keys]`), as
/// `next = ["Right", "n"]`. Ctrl-C is not among them: it always quits.
pub const NAMES: &[(&str, Action)] = &[
    ("next", Action::StepForward),
    ("previous", Action::StepBack),
    ("first", Action::First),
    ("last", Action::Last),
    ("page-up", Action::PageUp),
    ("page-down", Action::PageDown),
    ("play", Action::TogglePlay),
    ("faster", Action::Faster),
    ("slower", Action::Slower),
    ("rerun", Action::Rerun),
    ("rerun-to", Action::RerunTo),
    ("point", Action::Point),
    ("layers", Action::ToggleLayers),
    ("follow", Action::Follow),
    ("probes", Action::ToggleProbes),
    ("lease-slower", Action::LeaseSlower),
    ("lease-faster", Action::LeaseFaster),
    ("drop", Action::DropFrame),
    ("duplicate", Action::DuplicateFrame),
    ("corrupt", Action::CorruptFrame),
    ("next-tab", Action::NextTab),
    ("previous-tab", Action::PrevTab),
    ("field-up", Action::FieldUp),
    ("field-down", Action::FieldDown),
    ("scroll-up", Action::ScrollUp),
    ("scroll-down", Action::ScrollDown),
    ("zoom", Action::Zoom),
    ("search", Action::Search),
    ("search-next", Action::SearchNext),
    ("search-previous", Action::SearchPrev),
    ("go-to-step", Action::GoToStep),
    ("present", Action::Present),
    ("blank", Action::Blank),
    ("help", Action::Help),
    ("lesson", Action::Lesson),
    ("close", Action::Back),
    ("quit", Action::Quit),
];

/// Keys the configuration file gives actions instead of the table's: each replaces all the
/// keys of its action.
pub type Overrides = Vec<(Action, Vec<Key>)>;

static OVERRIDES: std::sync::OnceLock<Overrides> = std::sync::OnceLock::new();

/// Uses `overrides` from now on (once, at start: the configuration's `[keys]`).
pub fn set_overrides(overrides: Overrides) {
    let _ = OVERRIDES.set(overrides);
}

fn overrides() -> &'static [(Action, Vec<Key>)] {
    OVERRIDES.get().map_or(&[], Vec::as_slice)
}

impl Key {
    /// How the configuration file writes the key (read back by [`Key::parse`]).
    pub fn config_name(&self) -> String {
        let code = match self.code {
            KeyCode::Right => "Right".into(),
            KeyCode::Left => "Left".into(),
            KeyCode::Up => "Up".into(),
            KeyCode::Down => "Down".into(),
            KeyCode::PageUp => "PageUp".into(),
            KeyCode::PageDown => "PageDown".into(),
            KeyCode::BackTab => "BackTab".into(),
            KeyCode::Enter => "Enter".into(),
            _ => Key { mods: KeyModifiers::NONE, ..*self }.name(),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{code}")
        } else if self.mods.contains(KeyModifiers::SHIFT) {
            format!("Shift-{code}")
        } else {
            code
        }
    }

    /// A key as the configuration file writes it: a character (`n`, `?`), `space`, a name
    /// (`Right`, `PageDown`, `Esc`, `Enter`, `F2`; the arrows `→ ← ↑ ↓` too), with `Ctrl-` or
    /// `Shift-` before it. `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1 && (lower.starts_with("ctrl-") || lower.starts_with("ctrl+")) {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if rest.chars().count() > 1 && (lower.starts_with("shift-") || lower.starts_with("shift+")) {
                mods |= KeyModifiers::SHIFT;
                rest = &rest[6..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if mods.contains(KeyModifiers::CONTROL) => KeyCode::Char(c.to_ascii_lowercase()),
            (Some('→'), None) => KeyCode::Right,
            (Some('←'), None) => KeyCode::Left,
            (Some('↑'), None) => KeyCode::Up,
            (Some('↓'), None) => KeyCode::Down,
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "space" => KeyCode::Char(' '),
                "right" => KeyCode::Right,
                "left" => KeyCode::Left,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdn" => KeyCode::PageDown,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "esc" | "escape" => KeyCode::Esc,
                "enter" | "return" => KeyCode::Enter,
                "backspace" => KeyCode::Backspace,
                "insert" => KeyCode::Insert,
                "delete" => KeyCode::Delete,
                f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
                    KeyCode::F(f[1..].parse().unwrap_or(1))
                }
                _ => {
                    return Err(format!(
                        "`{text}` is not a key (write a character, space, Right, PageDown, Esc, Enter, F2,                          with Ctrl- or Shift- before it)"
                    ));
                }
            },
        };
        // Shift with a character is the character itself (`Shift-a` is `A`).
        if let KeyCode::Char(c) = code
            && mods == KeyModifiers::SHIFT
        {
            return Ok(ch(c.to_ascii_uppercase()));
        }
        if code == KeyCode::Tab && mods == KeyModifiers::SHIFT {
            return Ok(key(KeyCode::BackTab));
        }
        Ok(Key { code, mods })
    }
}

/// The action for a key press, if any.
pub fn action_for(event: KeyEvent) -> Option<Action> {
    action_with(event, overrides())
}

/// The action for a key press with `overrides` over the table: an action given keys of its own
/// loses the table's, and a key given to an action leaves the one the table gave it.
pub fn action_with(event: KeyEvent, overrides: &[(Action, Vec<Key>)]) -> Option<Action> {
    let mut mods = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
    // A capital letter or a back-tab comes with Shift on some terminals and not on others.
    if matches!(event.code, KeyCode::Char(_) | KeyCode::BackTab) {
        mods.remove(KeyModifiers::SHIFT);
    }
    let hit = |k: &Key| k.code == event.code && k.mods == mods;
    if let Some((action, _)) = overrides.iter().find(|(_, keys)| keys.iter().any(hit)) {
        return Some(*action);
    }
    BINDINGS
        .iter()
        .filter(|b| b.action == Action::Interrupt || !overrides.iter().any(|(a, _)| *a == b.action))
        .find(|b| b.keys.iter().any(hit))
        .map(|b| b.action)
}

/// The keys an action answers to now, in the table's order (or the configuration's).
pub fn keys_of(action: Action) -> Vec<Key> {
    keys_with(action, overrides())
}

/// The keys an action answers to with `overrides`: its own there, else the table's that no
/// override took.
pub fn keys_with(action: Action, overrides: &[(Action, Vec<Key>)]) -> Vec<Key> {
    match overrides.iter().find(|(a, _)| *a == action) {
        Some((_, keys)) => keys.clone(),
        None => BINDINGS
            .iter()
            .filter(|b| b.action == action)
            .flat_map(|b| b.keys.iter().copied())
            .filter(|k| !overrides.iter().any(|(_, keys)| keys.contains(k)))
            .collect(),
    }
}

/// Help's lines: each row of the table with its followers, as (label, help); a row whose keys
/// the configuration changed is labelled with the keys it has now.
pub fn help_rows() -> Vec<(String, &'static str)> {
    let mut rows = Vec::new();
    for (i, b) in BINDINGS.iter().enumerate() {
        if b.help.is_empty() {
            continue;
        }
        let group: Vec<Action> = std::iter::once(b.action)
            .chain(BINDINGS[i + 1..].iter().take_while(|f| f.help.is_empty()).map(|f| f.action))
            .collect();
        let table = |a: &Action| keys_with(*a, &[]);
        let label = if group.iter().any(|a| keys_of(*a) != table(a)) {
            let mut names: Vec<String> = Vec::new();
            for action in group {
                for k in keys_of(action) {
                    if !names.contains(&k.name()) {
                        names.push(k.name());
                    }
                }
            }
            names.join(" ")
        } else {
            b.label.to_string()
        };
        rows.push((label, b.help));
    }
    rows
}

/// A status-bar hint as shown: its key is the action's first key now (`→ send/next`, or
/// `n send/next` when the configuration moved it).
pub fn hint_text(hint: &Hint, text: &str) -> String {
    match overrides().iter().find(|(a, _)| *a == hint.action).and_then(|(_, keys)| keys.first()) {
        Some(first) => match text.split_once(' ') {
            Some((_, rest)) => format!("{} {rest}", first.name()),
            None => text.to_string(),
        },
        None => text.to_string(),
    }
}

/// A key hint for the status bar: its long and short forms, and how much it is wanted.
pub struct Hint {
    pub action: Action,
    pub long: &'static str,
    pub short: &'static str,
    /// Hints with a lower rank go first when the line is short; 0 is never left out.
    pub rank: u8,
}

/// The status bar's key hints, in the order shown; help and quit are always there.
pub const HINTS: &[Hint] = &[
    Hint { action: Action::StepForward, long: "→ send/next", short: "→ next", rank: 5 },
    Hint { action: Action::StepBack, long: "← back", short: "← back", rank: 3 },
    Hint { action: Action::TogglePlay, long: "p play", short: "p play", rank: 4 },
    Hint { action: Action::Zoom, long: "z zoom", short: "z zoom", rank: 2 },
    Hint { action: Action::Rerun, long: "r re-run", short: "r rerun", rank: 1 },
    Hint { action: Action::Help, long: "? help", short: "? help", rank: 0 },
    Hint { action: Action::Quit, long: "q quit", short: "q quit", rank: 0 },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action, listed by an exhaustive match: a new action cannot be forgotten here.
    fn every_action() -> Vec<Action> {
        use Action::*;
        let all = [
            StepForward,
            StepBack,
            First,
            Last,
            PageUp,
            PageDown,
            TogglePlay,
            Faster,
            Slower,
            Rerun,
            RerunTo,
            Point,
            DropFrame,
            DuplicateFrame,
            CorruptFrame,
            ToggleLayers,
            Follow,
            ToggleProbes,
            LeaseSlower,
            LeaseFaster,
            NextTab,
            PrevTab,
            GoTo(0),
            FieldUp,
            FieldDown,
            ScrollUp,
            ScrollDown,
            Zoom,
            Search,
            SearchNext,
            SearchPrev,
            GoToStep,
            Present,
            Blank,
            Help,
            Lesson,
            Back,
            Quit,
            Interrupt,
        ];
        for a in all {
            match a {
                StepForward | StepBack | First | Last | PageUp | PageDown | TogglePlay | Faster | Slower | Rerun
                | RerunTo | Point | DropFrame | DuplicateFrame | CorruptFrame | ToggleLayers | Follow
                | ToggleProbes | LeaseSlower | LeaseFaster | NextTab | PrevTab | GoTo(_) | FieldUp | FieldDown
                | ScrollUp | ScrollDown | Zoom | Search | SearchNext | SearchPrev | GoToStep | Present | Blank
                | Help | Lesson | Back | Quit | Interrupt => {}
            }
        }
        all.to_vec()
    }

    #[test]
    fn every_action_has_a_key() {
        for action in every_action() {
            assert!(BINDINGS.iter().any(|b| b.action == action), "{action:?} has no key");
        }
    }

    #[test]
    fn no_key_does_two_things() {
        let mut seen = std::collections::HashSet::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(seen.insert(format!("{k:?}")), "{k:?} is bound twice");
            }
        }
    }

    /// Help writes every key that works: each key's name is in the label of its group.
    #[test]
    fn every_key_is_in_its_help_label() {
        let mut label = "";
        for b in BINDINGS {
            if !b.help.is_empty() {
                label = b.label;
            }
            for k in b.keys {
                let name = k.name();
                let digit = matches!(k.code, KeyCode::Char('1'..='9'));
                let shown = if digit {
                    label.contains("1-9")
                } else if let Some(arrow) = name.strip_prefix("Shift-").filter(|a| a.chars().count() == 1) {
                    label.contains(&format!("Shift-{arrow}")) || label.contains("Shift-↑↓")
                } else {
                    label.split(' ').any(|word| word == name)
                };
                assert!(shown, "{name} is missing from help's {label:?}");
            }
        }
    }

    #[test]
    fn keys_map_as_people_expect() {
        let press = |code, mods| action_for(KeyEvent::new(code, mods));
        assert_eq!(press(KeyCode::Esc, KeyModifiers::NONE), Some(Action::Back));
        assert_eq!(press(KeyCode::Char('q'), KeyModifiers::NONE), Some(Action::Quit));
        assert_eq!(press(KeyCode::Char('c'), KeyModifiers::CONTROL), Some(Action::Interrupt));
        assert_eq!(press(KeyCode::Char('c'), KeyModifiers::NONE), Some(Action::CorruptFrame));
        assert_eq!(press(KeyCode::Char('G'), KeyModifiers::SHIFT), Some(Action::Last));
        assert_eq!(press(KeyCode::Down, KeyModifiers::SHIFT), Some(Action::ScrollDown));
        assert_eq!(press(KeyCode::Down, KeyModifiers::NONE), Some(Action::FieldDown));
        assert_eq!(press(KeyCode::BackTab, KeyModifiers::SHIFT), Some(Action::PrevTab));
        assert_eq!(press(KeyCode::Char('3'), KeyModifiers::NONE), Some(Action::GoTo(2)));
    }
}
