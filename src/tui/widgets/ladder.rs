//! The ladder: a lifeline per endpoint, an arrow per step, the selected step highlighted (and
//! marked `▶`, so it shows without colour) and the newest arrow moving while its bytes are in
//! flight. Only the visible rows are laid out.

use crate::locale::{Lang, endpoint, trf};
use crate::session::{Layer, Session, Step};
use crate::tui::app::{Connections, Flight, Layers};
use crate::tui::text::{fit, width};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;
use std::time::Instant;

/// Width of the time column: the selection marker and ten columns of seconds.
pub const TIME_W: u16 = 11;
/// Rows above the arrows: the endpoints' names, and their states.
pub const HEADER: u16 = 2;
/// Columns from the time column to the first lifeline (the clock's name fits left of the
/// first endpoint's).
const GAP: u16 = 3;
/// Columns right of the last lifeline (half a name).
const RIGHT: u16 = 4;
/// Columns a label needs besides its text: two spaces around it, a bit of shaft each side,
/// the arrow head.
const LABEL_PAD: u16 = 6;
/// The colours of the connections' letters, in turn.
const TAG_COLOURS: [Color; 6] = [Color::Cyan, Color::Magenta, Color::Yellow, Color::Green, Color::Blue, Color::Red];
/// The marker of the selected row.
pub const MARKER: &str = "▶";
/// The presenter's pointer, in the same column, on a step that is not the selected one.
pub const POINTER: &str = "»";

/// Inner width a ladder of two endpoints needs to show a label of `label` columns whole.
pub fn width_for_label(label: u16) -> u16 {
    TIME_W + GAP + 1 + label + LABEL_PAD + RIGHT
}

/// Columns the label of an arrow between lifelines `a` and `b` (of `n`) has in a ladder `width`
/// columns wide (inside its frame): what fits whole, else what the details pane must say.
pub fn label_room(width: u16, n: usize, a: usize, b: usize) -> usize {
    let left = TIME_W + GAP;
    let right = width.saturating_sub(RIGHT).max(left + 1);
    let n = n.max(2) as u16;
    let at = |i: usize| left + (right - left) * (i as u16).min(n - 1) / (n - 1);
    let span = at(a.max(b)).saturating_sub(at(a.min(b))).saturating_sub(1);
    span.saturating_sub(LABEL_PAD - 2) as usize
}

/// An endpoint's state under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointState {
    pub who: String,
    /// What is shown: the state, or `FROM → TO` when it moved on while its frame waits.
    pub text: String,
    /// The selected step changed it (or it moved on): drawn bold.
    pub changed: bool,
}

/// What the ladder draws: a window onto the session.
pub struct Ladder<'a> {
    pub session: &'a Session,
    /// Endpoint names, left to right.
    pub endpoints: &'a [&'a str],
    /// Steps shown (revealed, plus the one in flight).
    pub shown: usize,
    pub cursor: usize,
    /// The first row shown.
    pub scroll: usize,
    pub flight: Option<Flight>,
    pub now: Instant,
    /// Who waits at the gate: drawn as a prompt between the lifelines under the last step.
    pub waiting: Option<&'a str>,
    /// The closing line, once the run is over.
    pub footer: Option<(String, Style)>,
    /// Each endpoint's state at the selected step.
    pub states: Vec<EndpointState>,
    /// Which steps get a row.
    pub layers: Layers,
    /// The run's connections: each row's tag, and the one followed.
    pub conns: &'a Connections,
    /// What the time column counts (`lab clock`, `wall clock`).
    pub clock: &'a str,
    /// The lab's main connection, in a lab that opens more than one (`echo`): steps of the
    /// others are labelled with theirs.
    pub main_conn: Option<&'a str>,
    /// The connection whose states the states row shows (the selected step's), if named.
    pub conn: Option<&'a str>,
    /// The language of the endpoints' names and the prompt.
    pub lang: Lang,
    /// Blank rows between two steps (presenter mode).
    pub gap: u16,
    /// The step the presenter points at (`m`), by `seq`.
    pub pointer: Option<u64>,
}

impl Ladder<'_> {
    /// X position of each lifeline inside `area`.
    fn lifelines(&self, area: Rect) -> Vec<u16> {
        let left = area.x + TIME_W + GAP;
        let right = area.right().saturating_sub(RIGHT).max(left + 1);
        let n = self.endpoints.len().max(2) as u16;
        (0..n).map(|i| left + (right - left) * i / (n - 1)).collect()
    }

    fn column(&self, name: &str) -> usize {
        self.endpoints.iter().position(|e| *e == name).unwrap_or(0)
    }
}

/// Seconds in at most ten columns: microseconds while they fit, fewer digits after that.
pub fn seconds(t_us: u64) -> String {
    let secs = t_us as f64 / 1e6;
    let text = if secs < 100.0 {
        format!("{secs:.6}")
    } else if secs < 10_000.0 {
        format!("{secs:.4}")
    } else {
        format!("{secs:.1}")
    };
    format!("{text:>10}")
}

impl Widget for Ladder<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height < HEADER + 1 || area.width < TIME_W + 10 {
            return;
        }
        let lines = self.lifelines(area);
        let dim = Style::new().fg(Color::DarkGray);
        // Header: which clock the times are on, and the endpoint names on their lifelines.
        buf.set_stringn(area.x + 1, area.y, self.clock, TIME_W as usize - 1, dim);
        for (i, name) in self.endpoints.iter().enumerate() {
            let name = endpoint(self.lang, name);
            let w = width(&name) as u16;
            // Centred on its lifeline, clear of the clock's name.
            let x = lines[i].saturating_sub(w / 2).max(area.x + TIME_W + 1).min(area.right().saturating_sub(w));
            buf.set_string(x, area.y, name, Style::new().add_modifier(Modifier::BOLD));
        }
        // Which connection the states are of, where a lab has several: left of the states.
        if let Some(conn) = self.conn {
            buf.set_stringn(area.x + 1, area.y + 1, conn, TIME_W as usize - 1, dim);
        }
        // Under each name, its state: each in its own slot, so two long ones never overlap.
        for (i, &x) in lines.iter().enumerate() {
            let Some(state) = self.states.iter().find(|s| self.column(&s.who) == i) else {
                buf.set_string(x, area.y + 1, "│", dim);
                continue;
            };
            let slot_start = if i == 0 { area.x + TIME_W } else { (lines[i - 1] + x) / 2 + 1 };
            let slot_end = if i + 1 == lines.len() { area.right() } else { (x + lines[i + 1]) / 2 };
            let room = slot_end.saturating_sub(slot_start) as usize;
            let text = fit(&state.text, room);
            let w = width(&text) as u16;
            let sx = x.saturating_sub(w / 2).max(slot_start).min(slot_end.saturating_sub(w));
            let style = if state.changed {
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(Color::DarkGray)
            };
            buf.set_string(sx, area.y + 1, text, style);
        }
        let body = Rect { y: area.y + HEADER, height: area.height - HEADER, ..area };
        for row in 0..body.height {
            for &x in &lines {
                buf.set_string(x, body.y + row, "│", dim);
            }
        }
        let mut y = body.y;
        let mut last = None;
        let rows = self
            .session
            .range(self.scroll..self.shown)
            .enumerate()
            .filter(|(_, step)| self.shows(step))
            .take(((body.height + self.gap) / (1 + self.gap)) as usize);
        for (offset, step) in rows {
            let index = self.scroll + offset;
            last = Some(index);
            let progress = match self.flight {
                Some(f) if f.index == index => f.progress(self.now),
                _ => 1.0,
            };
            self.arrow(step, index == self.cursor, progress, &lines, Rect { y, height: 1, ..body }, buf);
            y += 1 + self.gap;
        }
        // The prompt and the footer go under the newest step, between the lifelines.
        let after = last.map_or(self.scroll, |i| i + 1);
        let at_end = self.session.range(after..self.shown).all(|s| !self.shows(s));
        if !at_end || self.flight.is_some() || y >= body.bottom() {
            return;
        }
        let (a, b) = (lines[0], lines[lines.len() - 1]);
        let room = b.saturating_sub(a + 3) as usize;
        if let Some(who) = self.waiting {
            let name = endpoint(self.lang, who);
            let long =
                format!("▸ {}", trf(self.lang, "{who} has a message ready: press → to send it", &[("who", &name)]));
            let short = format!("▸ {}", trf(self.lang, "{who}: press →", &[("who", &name)]));
            let text = if width(&long) <= room { long } else { fit(&short, room) };
            let w = width(&text) as u16;
            // Beside the sender's lifeline.
            let x = if self.column(who) + 1 == lines.len() && lines.len() > 1 { b - 1 - w } else { a + 2 };
            buf.set_string(x, y, text, Style::new().fg(Color::Yellow).add_modifier(Modifier::ITALIC));
        } else if let Some((text, style)) = self.footer {
            buf.set_string(a + 2, y, fit(&text, room), style);
        }
    }
}

impl Ladder<'_> {
    fn shows(&self, step: &Step) -> bool {
        self.layers.shows(step) && self.conns.shows(self.session, step)
    }

    fn arrow(&self, step: &Step, selected: bool, progress: f32, lines: &[u16], row: Rect, buf: &mut Buffer) {
        let from = lines[self.column(&step.from)];
        let to = lines[self.column(&step.to)];
        let rightward = to >= from;
        let (a, b) = if rightward { (from, to) } else { (to, from) };
        // Dim: an event the socket API reports without its bytes (a FIN seen on the host wire).
        let unseen = step.bytes.is_empty() && step.layer == Layer::Transport;
        let mut style = match (step.malformed.is_some(), unseen) {
            (true, _) => Style::new().fg(Color::Red),
            (false, true) => Style::new().fg(Color::DarkGray),
            (false, false) if rightward => Style::new().fg(Color::Cyan),
            (false, false) => Style::new().fg(Color::Green),
        };
        // The presenter's pointer: black on yellow, apart from the selection's reverse video.
        let pointed = self.pointer == Some(step.seq);
        if pointed {
            style = Style::new().fg(Color::Black).bg(Color::Yellow).add_modifier(Modifier::BOLD);
        }
        if selected {
            style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
        }
        let time_style = if selected {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else if pointed {
            style
        } else {
            Style::new().fg(Color::DarkGray)
        };
        let marker = match (selected, pointed) {
            (true, _) => MARKER,
            (false, true) => POINTER,
            _ => " ",
        };
        buf.set_string(row.x, row.y, format!("{marker}{}", seconds(step.t_us)), time_style);
        // The connection's letter, in its colour, between the time and the first lifeline.
        if let Some((tag, n)) = self.conns.tag(self.session, step) {
            let colour = TAG_COLOURS[n % TAG_COLOURS.len()];
            buf.set_string(row.x + TIME_W + 1, row.y, tag.to_string(), Style::new().fg(colour));
        }
        // The shaft runs between the lifelines; in flight, only up to the arrow's head.
        let span = (b - a).saturating_sub(1);
        // A lost frame gets only halfway, and ends in a cross.
        let full = if step.fate.lost() { span / 2 } else { span };
        let reach = ((full as f32) * progress).round() as u16;
        let line = if unseen { "╌" } else { "─" };
        if reach > 0 {
            // Shaft and head as one string: drawn from the sender up to the head.
            let reach = reach.min(span);
            let shaft = line.repeat(reach as usize - 1);
            let (right, left) = if step.fate.lost() { ("✗", "✗") } else { ("▶", "◀") };
            let (x, text) =
                if rightward { (a + 1, format!("{shaft}{right}")) } else { (b - reach, format!("{left}{shaft}")) };
            buf.set_string(x, row.y, text, style);
        }
        // The label sits inside the shaft, near the sender, once the arrow has left.
        let mut label = String::new();
        if step.malformed.is_some() {
            label.push_str("!! ");
        }
        if let Some(conn) = step.conn.as_deref().filter(|c| Some(*c) != self.main_conn) {
            label.push_str(&format!("[{conn}] "));
        }
        label.push_str(&step.summary);
        let room = full.saturating_sub(LABEL_PAD - 2) as usize;
        if room > 3 && reach > 2 {
            let text = fit(&label, room);
            let w = width(&text) as u16;
            let x = if rightward { a + 2 } else { b - 1 - w - 1 };
            buf.set_string(x.saturating_sub(1), row.y, format!(" {text} "), style);
        }
    }
}
