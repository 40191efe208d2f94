//! The hex dump: offset, sixteen bytes, their ASCII; the selected field's bytes highlighted.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use std::ops::Range;

/// Bytes a row that fit in `width` columns: 16, or 8 on a narrow pane.
pub fn per_row(width: u16) -> usize {
    if width >= 72 { 16 } else { 8 }
}

/// The dump's lines, `per` bytes a row, starting at row `first`, at most `rows` of them.
pub fn lines(
    bytes: &[u8],
    highlight: Option<Range<usize>>,
    per: usize,
    first: usize,
    rows: usize,
) -> Vec<Line<'static>> {
    let hi = Style::new().bg(Color::Yellow).fg(Color::Black).add_modifier(Modifier::BOLD);
    let dim = Style::new().fg(Color::DarkGray);
    let lit = |i: usize| highlight.as_ref().is_some_and(|r| r.contains(&i));
    bytes
        .chunks(per)
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(row, chunk)| {
            let base = row * per;
            let mut spans = vec![Span::styled(format!("{base:04x}  "), dim)];
            for col in 0..per {
                let sep = if col == 8 { " " } else { "" };
                match chunk.get(col) {
                    Some(b) => {
                        let style = if lit(base + col) { hi } else { Style::new() };
                        spans.push(Span::raw(sep));
                        spans.push(Span::styled(format!("{b:02x}"), style));
                        spans.push(Span::raw(" "));
                    }
                    None => spans.push(Span::raw(format!("{sep}   "))),
                }
            }
            spans.push(Span::raw(" "));
            for (col, b) in chunk.iter().enumerate() {
                let c = if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '.' };
                let style = if lit(base + col) { hi } else { dim };
                spans.push(Span::styled(c.to_string(), style));
            }
            Line::from(spans)
        })
        .collect()
}

/// The dump row holding byte `at`.
pub fn row_of(at: usize, per: usize) -> usize {
    at / per
}
