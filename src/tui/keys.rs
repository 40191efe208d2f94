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
    /// Show messages, segments, or both (lab network).
    ToggleLayers,
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
    FieldUp,
    FieldDown,
    Help,
    Quit,
}

/// One row of the key table.
pub struct Binding {
    pub keys: &'static [KeyCode],
    /// How the keys are written in help and the status bar.
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
}

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[KeyCode::Right, KeyCode::Char(' '), KeyCode::Char('l')],
        label: "→ space",
        action: Action::StepForward,
        help: "next step; at the newest, send the waiting message",
    },
    Binding {
        keys: &[KeyCode::Left, KeyCode::Char('h')],
        label: "←",
        action: Action::StepBack,
        help: "previous step (history only)",
    },
    Binding {
        keys: &[KeyCode::Up, KeyCode::Char('k')],
        label: "↑ ↓",
        action: Action::FieldUp,
        help: "select a field: its bytes light up in the hex dump",
    },
    Binding { keys: &[KeyCode::Down, KeyCode::Char('j')], label: "", action: Action::FieldDown, help: "" },
    Binding {
        keys: &[KeyCode::Home, KeyCode::Char('g')],
        label: "Home End",
        action: Action::First,
        help: "first / last step",
    },
    Binding { keys: &[KeyCode::End, KeyCode::Char('G')], label: "", action: Action::Last, help: "" },
    Binding { keys: &[KeyCode::PageUp], label: "PgUp PgDn", action: Action::PageUp, help: "page through the ladder" },
    Binding { keys: &[KeyCode::PageDown], label: "", action: Action::PageDown, help: "" },
    Binding {
        keys: &[KeyCode::Char('p')],
        label: "p",
        action: Action::TogglePlay,
        help: "play / pause: send each message by itself",
    },
    Binding {
        keys: &[KeyCode::Char('+'), KeyCode::Char('=')],
        label: "+ -",
        action: Action::Faster,
        help: "play and animate faster / slower",
    },
    Binding { keys: &[KeyCode::Char('-'), KeyCode::Char('_')], label: "", action: Action::Slower, help: "" },
    Binding {
        keys: &[KeyCode::Char('r')],
        label: "r",
        action: Action::Rerun,
        help: "run the lab again from scratch (new keys, new ids)",
    },
    Binding {
        keys: &[KeyCode::Char('d')],
        label: "d u c",
        action: Action::DropFrame,
        help: "lab network: drop / duplicate / corrupt the waiting frame",
    },
    Binding { keys: &[KeyCode::Char('u')], label: "", action: Action::DuplicateFrame, help: "" },
    Binding { keys: &[KeyCode::Char('c')], label: "", action: Action::CorruptFrame, help: "" },
    Binding {
        keys: &[KeyCode::Char('[')],
        label: "[ ]",
        action: Action::LeaseSlower,
        help: "DHCP: lease clock slower / faster (next run)",
    },
    Binding { keys: &[KeyCode::Char(']')], label: "", action: Action::LeaseFaster, help: "" },
    Binding {
        keys: &[KeyCode::Char('v')],
        label: "v",
        action: Action::ToggleLayers,
        help: "lab network: show messages + segments, messages, segments",
    },
    Binding { keys: &[KeyCode::Tab], label: "Tab 1-9", action: Action::NextTab, help: "next lab / lab by number" },
    Binding { keys: &[KeyCode::BackTab], label: "", action: Action::PrevTab, help: "" },
    Binding { keys: &[KeyCode::Char('?'), KeyCode::F(1)], label: "?", action: Action::Help, help: "this help" },
    Binding {
        keys: &[KeyCode::Char('q'), KeyCode::Esc],
        label: "q Ctrl-C",
        action: Action::Quit,
        help: "quit (Esc closes help first)",
    },
];

/// The action for a key press, if any. Digits pick tabs and are handled by the caller.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c')) {
        return Some(Action::Quit);
    }
    BINDINGS.iter().find(|b| b.keys.contains(&key.code)).map(|b| b.action)
}

/// The short key list for the status bar.
pub fn status_hint() -> String {
    let pick = |a: Action, word: &str| {
        BINDINGS.iter().find(|b| b.action == a).map(|b| format!("{} {word}", b.label)).unwrap_or_default()
    };
    [
        pick(Action::StepForward, "send/next"),
        pick(Action::StepBack, "back"),
        pick(Action::TogglePlay, "play"),
        pick(Action::Rerun, "re-run"),
        pick(Action::Help, "help"),
        "q quit".to_string(),
    ]
    .join("  ")
}

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
            DropFrame,
            DuplicateFrame,
            CorruptFrame,
            ToggleLayers,
            LeaseSlower,
            LeaseFaster,
            NextTab,
            PrevTab,
            FieldUp,
            FieldDown,
            Help,
            Quit,
        ];
        for a in all {
            match a {
                StepForward | StepBack | First | Last | PageUp | PageDown | TogglePlay | Faster | Slower | Rerun
                | DropFrame | DuplicateFrame | CorruptFrame | ToggleLayers | LeaseSlower | LeaseFaster | NextTab
                | PrevTab | FieldUp | FieldDown | Help | Quit => {}
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
}
