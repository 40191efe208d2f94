//! The lease timeline: the DHCP lease in force at the selected step, from its ACK to its end,
//! with T1 (renew, 50 %) and T2 (rebind, 87.5 %) marked and where the step falls on it; or, when
//! no lease is in force, why (none yet, released, refused with a NAK).

use crate::locale::{Lang, tr, trf};
use crate::tui::text::fit;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// Rows of the full timeline: a titled rule, the bar, its marks, where the step is.
pub const FULL: u16 = 4;
/// Rows of the compact one: a titled rule that says where the step is, and the bar.
pub const COMPACT: u16 = 2;

/// A lease as the ACK gave it, in seconds on the lease clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// How much faster than the network's the lease clock ran.
    pub speedup: u32,
    pub addr: String,
    /// Which step's ACK granted it.
    pub seq: u64,
    pub start: f64,
    pub t1: f64,
    pub t2: f64,
    pub length: f64,
}

/// What the timeline shows at the selected step.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseView {
    /// A lease is in force; `now` is the step's moment on the lease clock.
    Held { lease: Lease, now: f64 },
    /// No lease is in force: why, in a few words (`no lease yet`, `no lease: released at #14`).
    None(String),
}

pub struct Timeline {
    pub view: LeaseView,
    pub lang: Lang,
}

impl Widget for Timeline {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width < 20 {
            return;
        }
        let dim = Style::new().fg(Color::DarkGray);
        let cols = area.width as usize;
        let lang = self.lang;
        let (l, now) = match self.view {
            LeaseView::None(why) => {
                buf.set_string(area.x, area.y, rule(&why, cols), dim);
                return;
            }
            LeaseView::Held { lease, now } => (lease, now),
        };
        let age = (now - l.start).max(0.0);
        let phase = if age >= l.length {
            (tr(lang, "expired"), Color::Red)
        } else if age >= l.t2 {
            (tr(lang, "rebinding"), Color::Magenta)
        } else if age >= l.t1 {
            (tr(lang, "renewing"), Color::Yellow)
        } else {
            (tr(lang, "bound"), Color::Green)
        };
        let compact = area.height < FULL;
        let (age_s, length) = (format!("{age:.1}"), format!("{:.0}", l.length));
        let args: [(&str, &dyn std::fmt::Display); 6] = [
            ("phase", &phase.0),
            ("age", &age_s),
            ("addr", &l.addr),
            ("seq", &l.seq),
            ("length", &length),
            ("speedup", &l.speedup),
        ];
        let title = if compact {
            trf(lang, "{phase}: {age} s into the lease of {addr} from #{seq} ({length} s, ×{speedup})", &args)
        } else {
            trf(lang, "lease of {addr} from #{seq}: {length} s · lease clock ×{speedup}", &args)
        };
        buf.set_string(area.x, area.y, rule(&title, cols), dim);
        if area.height < 2 {
            return;
        }
        let end = format!(" {:.0} s", l.length);
        let width = cols.saturating_sub(2 + end.len()).max(4) - 1;
        let col = |t: f64| ((t / l.length).clamp(0.0, 1.0) * width as f64).round() as usize;
        let (c1, c2, here) = (col(l.t1), col(l.t2), col(age));
        // The bar: bound, then renewing after T1, rebinding after T2. Compact, the marks carry
        // their names on the bar itself.
        let (t1, t2) = (format!("T1 {:.0}", l.t1), format!("T2 {:.0}", l.t2));
        let mut names = vec![None; width + 1];
        if compact {
            for (at, name) in [(c1, &t1), (c2, &t2)] {
                for (k, ch) in name.chars().enumerate() {
                    if let Some(slot) = names.get_mut(at + 1 + k).filter(|_| at + 1 + k != here) {
                        *slot = Some(ch);
                    }
                }
            }
        }
        let mut bar = vec![Span::styled("0 ", dim)];
        for (i, name) in names.iter().enumerate() {
            if let Some(ch) = name {
                bar.push(Span::styled(ch.to_string(), Style::new().fg(Color::White)));
                continue;
            }
            let (ch, color) = match i {
                i if i == c1 || i == c2 => ("┼", Color::White),
                i if i < c1 => ("━", Color::Green),
                i if i < c2 => ("━", Color::Yellow),
                _ => ("━", Color::Magenta),
            };
            if i == here {
                let style = Style::new().fg(Color::Black).bg(Color::White).add_modifier(Modifier::BOLD);
                bar.push(Span::styled("●", style));
            } else {
                bar.push(Span::styled(ch, Style::new().fg(color)));
            }
        }
        bar.push(Span::styled(end, dim));
        buf.set_line(area.x, area.y + 1, &Line::from(bar), area.width);
        if compact {
            return;
        }
        let mut marks = vec![' '; width + 3];
        let mut put = |at: usize, text: &str| {
            for (k, ch) in text.chars().enumerate() {
                if let Some(slot) = marks.get_mut(at + k) {
                    *slot = ch;
                }
            }
        };
        // Labels under their marks (the bar starts two columns in, after `0 `), moved left where
        // they would run into the next one.
        let t2_at = c2.min((width + 3).saturating_sub(t2.len()));
        let t1_at = c1.min(t2_at.saturating_sub(t1.len() + 1));
        put(t1_at, &t1);
        put(t2_at, &t2);
        let lines = vec![
            Line::styled(marks.into_iter().collect::<String>(), dim),
            Line::from(vec![
                Span::raw(trf(lang, "at this step: {age} s into the lease, ", &args)),
                Span::styled(phase.0, Style::new().fg(phase.1).add_modifier(Modifier::BOLD)),
            ]),
        ];
        Paragraph::new(lines).render(Rect { y: area.y + 2, height: area.height - 2, ..area }, buf);
    }
}

/// `─ text ───…` across `cols` columns.
fn rule(text: &str, cols: usize) -> String {
    let text = fit(text, cols.saturating_sub(4));
    let used = crate::tui::text::width(&text) + 3;
    format!("─ {text} {}", "─".repeat(cols.saturating_sub(used)))
}
