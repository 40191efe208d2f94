//! Measuring and cutting text by display width (a `→` is one column, a `한` two), so nothing is
//! cut in the middle of a character and nothing runs past its pane.

use ratatui::text::Span;

/// Columns `text` takes on screen.
pub fn width(text: &str) -> usize {
    Span::raw(text).width()
}

/// Columns one character takes.
fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    width(c.encode_utf8(&mut buf))
}

/// `text` cut to at most `max` columns, ending in `…` when something was cut.
pub fn fit(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `text` broken into lines of at most `max` columns, at spaces where it can; a blank line
/// between paragraphs (`\n\n`) is kept, a single `\n` breaks the line.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        for raw in paragraph.split('\n') {
            let start = lines.len();
            let mut line = String::new();
            let mut used = 0;
            for word in raw.split(' ').filter(|w| !w.is_empty()) {
                let w = width(word);
                if used > 0 && used + 1 + w <= max {
                    line.push(' ');
                    line.push_str(word);
                    used += 1 + w;
                    continue;
                }
                if used > 0 {
                    lines.push(std::mem::take(&mut line));
                    used = 0;
                }
                // A word longer than the line is cut where the line ends.
                for c in word.chars() {
                    let cw = char_width(c);
                    if used + cw > max && used > 0 {
                        lines.push(std::mem::take(&mut line));
                        used = 0;
                    }
                    line.push(c);
                    used += cw;
                }
            }
            if used > 0 || lines.len() == start {
                lines.push(line);
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_at_display_width() {
        assert_eq!(fit("CLOSE-WAIT → LAST-ACK", 21), "CLOSE-WAIT → LAST-ACK");
        assert_eq!(fit("CLOSE-WAIT → LAST-ACK", 12), "CLOSE-WAIT …");
        assert_eq!(fit("한국어", 4), "한…");
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn wrap_keeps_words_and_paragraphs() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("a\n\nb", 5), ["a", "", "b"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        for line in wrap("base64(SHA-1(\"dGhlIHNhbXBsZSBub25jZQ==\" + \"258EAFA5\"))", 10) {
            assert!(width(&line) <= 10, "{line}");
        }
    }
}
