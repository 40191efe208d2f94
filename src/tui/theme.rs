//! Themes: the screen is drawn in the default dark palette, then each cell's colours are
//! mapped to the chosen theme's (light for a white terminal, high contrast for a projector),
//! or taken away under `NO_COLOR`, where reverse video and marker glyphs carry the selection.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// The themes there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Theme {
    /// For a dark terminal (the default).
    #[default]
    Dark,
    /// For a light terminal: dark text colours that read on white.
    Light,
    /// For a projector: white and the brightest colours, all bold.
    HighContrast,
    /// No colour at all (as under `NO_COLOR`).
    NoColor,
}

impl Theme {
    /// Maps every cell of `buf`, drawn in the dark palette, to this theme.
    pub fn apply(self, buf: &mut Buffer) {
        for cell in buf.content.iter_mut() {
            match self {
                Theme::Dark => {}
                Theme::Light => {
                    cell.fg = light(cell.fg);
                    cell.bg = light(cell.bg);
                }
                Theme::HighContrast => {
                    cell.fg = bright(cell.fg);
                    cell.bg = bright(cell.bg);
                    cell.modifier |= Modifier::BOLD;
                }
                Theme::NoColor => {
                    // What a background marked is shown in reverse video, and every other
                    // colour goes, so the terminal never resets the reverse video with it.
                    if cell.bg != Color::Reset {
                        cell.modifier |= Modifier::REVERSED;
                    }
                    cell.fg = Color::Reset;
                    cell.bg = Color::Reset;
                }
            }
        }
    }
}

/// The dark palette's colour, as it reads on a light background.
fn light(c: Color) -> Color {
    match c {
        Color::Yellow => Color::Indexed(130),
        Color::Cyan => Color::Blue,
        Color::Green => Color::Indexed(28),
        Color::Magenta => Color::Indexed(90),
        Color::DarkGray => Color::Indexed(242),
        Color::White => Color::Black,
        other => other,
    }
}

/// The dark palette's colour at its brightest (dim grey becomes white).
fn bright(c: Color) -> Color {
    match c {
        Color::Yellow => Color::LightYellow,
        Color::Cyan => Color::LightCyan,
        Color::Green => Color::LightGreen,
        Color::Red => Color::LightRed,
        Color::Magenta => Color::LightMagenta,
        Color::DarkGray | Color::Gray => Color::White,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn each_theme_maps_the_dark_palette() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        buf.set_string(0, 0, "a", Style::new().fg(Color::DarkGray));
        buf.set_string(1, 0, "b", Style::new().fg(Color::Black).bg(Color::Cyan));
        let mut light = buf.clone();
        Theme::Light.apply(&mut light);
        assert_eq!((light[(0, 0)].fg, light[(1, 0)].bg), (Color::Indexed(242), Color::Blue));
        let mut high = buf.clone();
        Theme::HighContrast.apply(&mut high);
        assert_eq!(high[(0, 0)].fg, Color::White);
        assert!(high[(0, 0)].modifier.contains(Modifier::BOLD));
        let mut none = buf.clone();
        Theme::NoColor.apply(&mut none);
        assert_eq!((none[(1, 0)].fg, none[(1, 0)].bg), (Color::Reset, Color::Reset));
        assert!(none[(1, 0)].modifier.contains(Modifier::REVERSED), "the selection stays visible");
    }
}
