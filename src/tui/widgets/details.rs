//! The details pane: what the selected step is, who moved on while it crossed, the checks worth
//! seeing (the accept key matches), its decoded fields (one selected, marked `▸`), and its bytes
//! with the selected field's whole range lit and in view. The step's notes and malformed reason
//! are said in the screen's language (the step keeps them in English).

use super::hexdump;
use crate::locale::{Lang, endpoint, localize, localize_reason, tr, trf};
use crate::session::Step;
use crate::tui::text::{fit, wrap};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// The marker of the selected field.
pub const MARKER: &str = "▸";

pub struct Details<'a> {
    pub step: Option<&'a Step>,
    /// Index of the selected field.
    pub field: usize,
    /// Sentences about endpoints that moved on while this step's world stood still at the gate
    /// (`server: CLOSE-WAIT → LAST-ACK, its FIN,ACK waits at the gate`).
    pub moved: Vec<String>,
    pub lang: Lang,
    /// The ladder could not show the step's summary whole (narrow arrows between many
    /// lifelines): the pane says it, under its first line.
    pub summary: bool,
}

/// What the pane could not show for want of room (so its frame can say how to see it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cut {
    /// Lines of notes (and moved sentences) left out.
    pub notes: usize,
}

impl Details<'_> {
    /// Draws the pane's content in `area` (inside its frame); says what did not fit.
    pub fn draw(self, area: Rect, buf: &mut Buffer) -> Cut {
        let Some(step) = self.step else {
            let empty = tr(self.lang, "No step yet. Press → to send the first message.");
            let lines: Vec<Line> = wrap(empty, area.width as usize)
                .into_iter()
                .map(|l| Line::styled(l, Style::new().fg(Color::DarkGray)))
                .collect();
            Paragraph::new(lines).render(area, buf);
            return Cut::default();
        };
        if area.height == 0 || area.width == 0 {
            return Cut::default();
        }
        let cols = area.width as usize;
        let rows = area.height as usize;
        let mut lines = vec![fit_line(
            vec![
                Span::styled(format!("#{} ", step.seq), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!("{} → {}  ", endpoint(self.lang, &step.from), endpoint(self.lang, &step.to))),
                Span::styled(step.proto.clone(), Style::new().fg(Color::Cyan)),
                Span::raw(format!(
                    "  {}{}",
                    trf(self.lang, "{n} bytes", &[("n", &step.len)]),
                    if step.truncated { tr(self.lang, " (first 64 KiB kept)") } else { "" }
                )),
                Span::raw(step.conn.as_ref().map(|c| format!("  conn {c}")).unwrap_or_default()),
            ],
            cols,
        )];
        let mut extra: Vec<Line> = Vec::new();
        if self.summary {
            extra.extend(
                wrap(&step.summary, cols)
                    .into_iter()
                    .map(|l| Line::styled(l, Style::new().add_modifier(Modifier::BOLD))),
            );
        }
        if let Some(reason) = &step.malformed {
            let style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
            let text = format!("{}: {}", tr(self.lang, "malformed"), localize_reason(self.lang, reason));
            extra.extend(wrap(&text, cols).into_iter().map(|l| Line::styled(l, style)));
        }
        for sentence in &self.moved {
            let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
            extra.extend(wrap(sentence, cols).into_iter().map(|l| Line::styled(l, style)));
        }
        for note in &step.notes {
            extra.extend(
                wrap(&localize(self.lang, note), cols)
                    .into_iter()
                    .map(|l| Line::styled(l, Style::new().fg(Color::Green))),
            );
        }

        // The bytes: their share of the pane, down to two rows (or the selected field's whole
        // range, where it fits) when the notes need the room.
        let per = hexdump::per_row(area.width);
        let hex_total = step.bytes.len().div_ceil(per);
        let n_fields = step.fields.len();
        let selected = self.field.min(n_fields.saturating_sub(1));
        let range = step.fields.get(selected).map(|f| f.range[0]..f.range[1].max(f.range[0] + 1));
        let field_rows = range.as_ref().map_or(1, |r| (r.end - 1) / per - r.start / per + 1);
        let hex_min = 2.max(field_rows.min(rows / 2));
        let text_needed = lines.len() + extra.len() + n_fields.min(3);
        let hex_rows = if hex_total == 0 || rows < 4 {
            0
        } else {
            rows.saturating_sub(text_needed).clamp(hex_min, hex_min.max(rows * 2 / 5)).min(hex_total)
        };
        // A rule over the bytes, where there is room for it.
        let rule = hex_rows > 0 && rows >= 14;
        let text_rows = rows - hex_rows - usize::from(rule);

        // The notes come before the fields; the fields keep at least a row (two where there
        // is room) with the selected one in it.
        let min_fields = n_fields.min(if text_rows >= 6 { 2 } else { 1 });
        let room = text_rows.saturating_sub(lines.len() + min_fields);
        let mut cut = Cut::default();
        if extra.len() > room {
            cut.notes = extra.len() - room.saturating_sub(1);
            extra.truncate(room.saturating_sub(1));
            if room > 0 {
                let more = if cut.notes == 1 {
                    tr(self.lang, "… 1 more line: z shows all").to_string()
                } else {
                    trf(self.lang, "… {n} more lines: z shows all", &[("n", &cut.notes)])
                };
                extra.push(Line::styled(more, Style::new().fg(Color::DarkGray)));
            }
        }
        lines.extend(extra);
        let field_room = text_rows.saturating_sub(lines.len());
        let name_w = step.fields.iter().map(|f| f.path.len()).max().unwrap_or(0).min(cols / 2);
        let first = selected.saturating_sub(field_room.saturating_sub(1) / 2).min(n_fields.saturating_sub(field_room));
        for (i, f) in step.fields.iter().enumerate().skip(first).take(field_room) {
            let picked = i == selected;
            let style = if picked { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
            let marker = if picked { MARKER } else { " " };
            lines.push(fit_line(
                vec![
                    Span::styled(format!("{marker}{:<name_w$} ", f.path), style.fg(Color::Yellow)),
                    Span::styled(f.display_value(), style),
                ],
                cols,
            ));
        }
        let text_height = text_rows.min(lines.len()) as u16;
        Paragraph::new(lines).render(Rect { height: text_height, ..area }, buf);
        if hex_rows == 0 {
            return cut;
        }
        // The bytes right under the text, centred on the selected field's range (its start
        // first if it is longer than the window).
        let first_row = match &range {
            Some(r) => {
                let (r0, r1) = (r.start / per, (r.end - 1) / per);
                let span = r1 - r0 + 1;
                let first = if span >= hex_rows { r0 } else { r0.saturating_sub((hex_rows - span) / 2) };
                first.min(hex_total - hex_rows)
            }
            None => 0,
        };
        let mut y = area.y + text_height;
        if rule {
            let (from, to) = (first_row * per, ((first_row + hex_rows) * per).min(step.bytes.len()));
            let args: [(&str, &dyn std::fmt::Display); 3] = [("from", &from), ("to", &to), ("of", &step.bytes.len())];
            let label = fit(&format!("─ {} ", trf(self.lang, "bytes {from}–{to} of {of}", &args)), cols);
            buf.set_string(area.x, y, label, Style::new().fg(Color::DarkGray));
            y += 1;
        }
        for line in hexdump::lines(&step.bytes, range, per, first_row, hex_rows) {
            buf.set_line(area.x, y, &line, area.width);
            y += 1;
        }
        cut
    }
}

/// One line of spans, cut to `cols` columns with `…`.
fn fit_line(spans: Vec<Span<'static>>, cols: usize) -> Line<'static> {
    let mut left = cols;
    let mut out = Vec::new();
    for span in spans {
        if left == 0 {
            break;
        }
        let w = span.width();
        if w <= left {
            left -= w;
            out.push(span);
        } else {
            out.push(Span::styled(fit(&span.content, left), span.style));
            left = 0;
        }
    }
    Line::from(out)
}
