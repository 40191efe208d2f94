//! The lease timeline: a DHCP lease from its ACK to its end, with T1 (renew, 50 %) and T2
//! (rebind, 87.5 %) marked, and where the selected step falls on it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

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

pub struct Timeline {
    pub lease: Lease,
    /// The selected step's moment on the lease clock.
    pub now: f64,
}

impl Widget for Timeline {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let l = &self.lease;
        let age = (self.now - l.start).max(0.0);
        let phase = if age >= l.length {
            ("expired", Color::Red)
        } else if age >= l.t2 {
            ("rebinding", Color::Magenta)
        } else if age >= l.t1 {
            ("renewing", Color::Yellow)
        } else {
            ("bound", Color::Green)
        };
        let title = format!(" lease of {} from #{}: {:.0} s · lease clock ×{} ", l.addr, l.seq, l.length, l.speedup);
        let block = Block::new().borders(Borders::ALL).title(title);
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width < 20 || inner.height < 2 {
            return;
        }
        let width = inner.width as usize - 1;
        let col = |t: f64| ((t / l.length).clamp(0.0, 1.0) * width as f64).round() as usize;
        let (c1, c2, now) = (col(l.t1), col(l.t2), col(age));
        // The bar: bound, then renewing after T1, rebinding after T2.
        let mut bar = Vec::with_capacity(width + 1);
        for i in 0..=width {
            let (ch, color) = match i {
                i if i == c1 || i == c2 => ("┼", Color::White),
                i if i < c1 => ("━", Color::Green),
                i if i < c2 => ("━", Color::Yellow),
                _ => ("━", Color::Magenta),
            };
            let style = if i == now {
                Style::new().fg(Color::Black).bg(Color::White).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(color)
            };
            bar.push(Span::styled(if i == now { "●" } else { ch }, style));
        }
        let mut marks = vec![' '; width + 1];
        let mut put = |at: usize, text: &str| {
            for (k, ch) in text.chars().enumerate() {
                if let Some(slot) = marks.get_mut(at + k) {
                    *slot = ch;
                }
            }
        };
        let end = format!("{:.0} s", l.length);
        let (t1, t2) = (format!("T1 {:.0}", l.t1), format!("T2 {:.0}", l.t2));
        // Labels under their marks, moved left where they would run into the next one.
        let end_at = width + 1 - end.len().min(width + 1);
        let t2_at = c2.saturating_sub(2).min(end_at.saturating_sub(t2.len() + 1));
        let t1_at = c1.saturating_sub(2).min(t2_at.saturating_sub(t1.len() + 1));
        put(0, "0");
        put(t1_at, &t1);
        put(t2_at, &t2);
        put(end_at, &end);
        let lines = vec![
            Line::from(bar),
            Line::styled(marks.into_iter().collect::<String>(), Style::new().fg(Color::DarkGray)),
            Line::from(vec![
                Span::raw(format!("at this step: {age:.1} s into the lease, ")),
                Span::styled(phase.0, Style::new().fg(phase.1).add_modifier(Modifier::BOLD)),
            ]),
        ];
        Paragraph::new(lines).render(inner, buf);
    }
}
