//! The ladder: a lifeline per endpoint, an arrow per step, the selected step highlighted and
//! the newest arrow moving while its bytes are in flight. Only the visible rows are laid out.

use crate::session::{Layer, Session, Step};
use crate::tui::app::{Flight, Layers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::Widget;
use std::time::Instant;

/// Width of the time column (`  0.001234 `).
const TIME_W: u16 = 11;
/// Rows above the arrows: the endpoints' names, and their states.
pub const HEADER: u16 = 2;

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
    /// Who waits at the gate: drawn as a hint row under the last step.
    pub waiting: Option<&'a str>,
    /// The closing line, once the run is over.
    pub footer: Option<(String, Style)>,
    /// Each endpoint's state after the selected step, and whether that step changed it.
    pub states: Vec<(String, String, bool)>,
    /// Which steps get a row.
    pub layers: Layers,
}

impl Ladder<'_> {
    /// X position of each lifeline inside `area`.
    fn lifelines(&self, area: Rect) -> Vec<u16> {
        let left = area.x + TIME_W + 2;
        let right = area.right().saturating_sub(5).max(left + 1);
        let n = self.endpoints.len().max(2) as u16;
        (0..n).map(|i| left + (right - left) * i / (n - 1)).collect()
    }

    fn column(&self, name: &str) -> usize {
        self.endpoints.iter().position(|e| *e == name).unwrap_or(0)
    }
}

impl Widget for Ladder<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height < HEADER + 1 || area.width < TIME_W + 10 {
            return;
        }
        let lines = self.lifelines(area);
        let dim = Style::new().fg(Color::DarkGray);
        // Header: endpoint names centred on their lifelines.
        for (i, name) in self.endpoints.iter().enumerate() {
            let x = lines[i]
                .saturating_sub(name.len() as u16 / 2)
                .max(area.x)
                .min(area.right().saturating_sub(name.len() as u16));
            buf.set_string(x, area.y, name, Style::new().add_modifier(Modifier::BOLD));
        }
        // Under each name, its state after the selected step (bold when that step changed it).
        for (name, state, changed) in &self.states {
            let i = self.column(name);
            let w = state.chars().count() as u16;
            let x = lines[i].saturating_sub(w / 2).max(area.x).min(area.right().saturating_sub(w));
            let style = if *changed {
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(Color::DarkGray)
            };
            buf.set_string(x, area.y + 1, state, style);
        }
        let body = Rect { y: area.y + HEADER, height: area.height - HEADER, ..area };
        if self.states.is_empty() {
            for &x in &lines {
                buf.set_string(x, area.y + 1, "│", dim);
            }
        }
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
            .filter(|(_, step)| self.layers.shows(step))
            .take(body.height as usize);
        for (offset, step) in rows {
            let index = self.scroll + offset;
            last = Some(index);
            let progress = match self.flight {
                Some(f) if f.index == index => f.progress(self.now),
                _ => 1.0,
            };
            self.arrow(step, index == self.cursor, progress, &lines, Rect { y, height: 1, ..body }, buf);
            y += 1;
        }
        let below = |y: u16| y < body.bottom();
        // The hint and the footer go under the newest step, once it is in view.
        let after = last.map_or(self.scroll, |i| i + 1);
        let at_end = self.session.range(after..self.shown).all(|s| !self.layers.shows(s));
        if let Some(who) = self.waiting.filter(|_| at_end && self.flight.is_none())
            && below(y)
        {
            let x = lines[self.column(who)];
            let hint = format!("▸ {who} has a message ready: press → to send it");
            let w = hint.chars().count() as u16;
            // Beside the sender's lifeline, on the side where there is room.
            let hx = if x + 1 + w <= area.right() { x + 1 } else { x.saturating_sub(w + 1).max(area.x) };
            buf.set_stringn(
                hx,
                y,
                hint,
                (area.right() - hx) as usize,
                Style::new().fg(Color::Yellow).add_modifier(Modifier::ITALIC),
            );
            y += 1;
        }
        if let Some((text, style)) = self.footer.filter(|_| at_end && self.flight.is_none())
            && below(y)
        {
            buf.set_string(area.x + 1, y, text, style);
        }
    }
}

impl Ladder<'_> {
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
        if selected {
            style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
        }
        let secs = step.t_us as f64 / 1e6;
        let time_style =
            if selected { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new().fg(Color::DarkGray) };
        buf.set_string(row.x, row.y, format!("{secs:>10.6}"), time_style);
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
        label.push_str(&step.summary);
        let room = full.saturating_sub(4) as usize;
        if room > 3 && reach > 2 {
            let text: String = if label.chars().count() > room {
                label.chars().take(room - 1).chain(std::iter::once('…')).collect()
            } else {
                label
            };
            let w = text.chars().count() as u16;
            let x = if rightward { a + 2 } else { b - 1 - w - 1 };
            Span::styled(format!(" {text} "), style)
                .render(Rect { x: x.saturating_sub(1), y: row.y, width: w + 2, height: 1 }, buf);
        }
    }
}
