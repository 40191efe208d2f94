//! The details pane: what the selected step is, its decoded fields (one selected), the checks
//! worth seeing (the accept key matches), and its bytes with the selected field lit.

use super::hexdump;
use crate::session::Step;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

pub struct Details<'a> {
    pub step: Option<&'a Step>,
    /// Index of the selected field.
    pub field: usize,
}

impl Widget for Details<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let block = Block::new().borders(Borders::ALL).title(" details ");
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(step) = self.step else {
            Paragraph::new("No step yet. Press → to send the first message.")
                .style(Style::new().fg(Color::DarkGray))
                .wrap(Wrap { trim: true })
                .render(inner, buf);
            return;
        };
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("#{} ", step.seq), Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{} → {}  ", step.from, step.to)),
            Span::styled(step.proto.clone(), Style::new().fg(Color::Cyan)),
            Span::raw(format!("  {} bytes{}", step.len, if step.truncated { " (first 64 KiB kept)" } else { "" })),
        ])];
        if let Some(reason) = &step.malformed {
            lines.push(Line::styled(
                format!("malformed: {reason}"),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
        // One budget for the pane: the hex dump keeps a few rows; the header comes first, then
        // the checks (notes), then a window of fields that always holds the selected one.
        let cols = inner.width.max(1) as usize;
        let rows_of = |l: &Line| l.width().max(1).div_ceil(cols);
        let per = hexdump::per_row(inner.width);
        let hex_rows = step.bytes.len().div_ceil(per);
        let hex_reserve = if hex_rows == 0 { 0 } else { (hex_rows + 1).min(5) };
        let budget = (inner.height as usize).saturating_sub(hex_reserve).max(1);
        let head_rows: usize = lines.iter().map(rows_of).sum();
        let min_fields = step.fields.len().min(3);
        let mut note_budget = budget.saturating_sub(head_rows + min_fields);
        for note in &step.notes {
            let line = Line::styled(note.clone(), Style::new().fg(Color::Green));
            let rows = rows_of(&line);
            if rows > note_budget {
                break;
            }
            note_budget -= rows;
            lines.push(line);
        }
        let used: usize = lines.iter().map(rows_of).sum();
        let room = budget.saturating_sub(used).max(1);
        let width = step.fields.iter().map(|f| f.path.len()).max().unwrap_or(0).min(inner.width as usize / 2);
        let selected = self.field.min(step.fields.len().saturating_sub(1));
        let first = selected.saturating_sub(room.saturating_sub(1) / 2).min(step.fields.len().saturating_sub(room));
        for (i, f) in step.fields.iter().enumerate().skip(first).take(room) {
            let style = if i == selected { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
            // One row a field: the value is cut to fit.
            let room_for_value = cols.saturating_sub(width + 1).max(8);
            let mut value = f.display_value();
            if value.chars().count() > room_for_value {
                value = value.chars().take(room_for_value - 1).chain(std::iter::once('…')).collect();
            }
            lines.push(Line::from(vec![
                Span::styled(format!("{:<width$} ", f.path), style.fg(Color::Yellow)),
                Span::styled(value, style),
            ]));
        }
        let text_rows = lines.iter().map(rows_of).sum::<usize>().min(budget) as u16;
        let [top, bottom] = Layout::vertical([Constraint::Length(text_rows), Constraint::Min(0)]).areas(inner);
        Paragraph::new(lines).wrap(Wrap { trim: false }).render(top, buf);
        if bottom.height == 0 || step.bytes.is_empty() {
            return;
        }
        let range = step.fields.get(selected).map(|f| f.range[0]..f.range[1]);
        // Scroll the dump so the selected field's first byte is in view.
        let rows = bottom.height as usize - 1;
        let want = range.as_ref().map_or(0, |r| hexdump::row_of(r.start, per));
        let first = want.saturating_sub(rows.saturating_sub(1));
        let mut hex = vec![Line::styled("─ bytes ─", Style::new().fg(Color::DarkGray))];
        hex.extend(hexdump::lines(&step.bytes, range, per, first, rows));
        Paragraph::new(hex).render(bottom, buf);
    }
}
