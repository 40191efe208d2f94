//! A lesson playing in a tab (`L`, or `protolab lesson NAME`): the engine, the card of what it
//! has shown (text, questions, grades), the answer being typed, and the summary at the end.

use crate::lesson::Lesson;
use crate::lesson::play::{Ask, Play, Show, grade_lines, letter, summary};
use crate::locale::{Lang, tr, trf};
use crate::session::Step;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use std::time::Instant;

/// Items the card keeps (the oldest go first): a lesson has a few dozen.
const CARD: usize = 200;

/// One tab's lesson.
#[derive(Debug)]
pub struct TabLesson {
    pub play: Play,
    /// What the lesson has shown, oldest first.
    pub card: Vec<Show>,
    /// Where the newest batch of the card starts: the card scrolls there when it comes.
    pub newest: usize,
    /// The answer being typed.
    pub typed: String,
    pub started: Instant,
    /// The end's summary, once every part was played.
    pub summary: Option<Vec<String>>,
    /// The card changed: show its newest batch.
    pub follow: bool,
    /// The card's first line shown (J and K scroll it).
    pub scroll: usize,
    /// Why the last Enter was not an answer (shown under the input until the next key).
    pub error: Option<String>,
}

impl TabLesson {
    pub fn new(lesson: Lesson, lang: Lang, seed: u64) -> Self {
        let mut l = TabLesson {
            play: Play::new(lesson, lang, seed),
            card: Vec::new(),
            newest: 0,
            typed: String::new(),
            started: Instant::now(),
            summary: None,
            follow: true,
            scroll: 0,
            error: None,
        };
        l.take();
        l
    }

    /// The question open now, if any: the exchange waits until it is answered.
    pub fn open(&self) -> Option<&Ask> {
        self.play.open()
    }

    pub fn on_step(&mut self, step: &Step) {
        self.play.on_step(step);
        self.take();
        self.conclude();
    }

    /// The lab's run ended.
    pub fn finish(&mut self) {
        self.play.finish();
        self.take();
        self.conclude();
    }

    /// Submits `answer` to the open question; `Err` is what would be an answer.
    pub fn answer(&mut self, answer: &str) -> Result<(), String> {
        if let Err(e) = self.play.answer(answer) {
            self.error = Some(e.clone());
            self.follow = true;
            return Err(e);
        }
        self.error = None;
        self.typed.clear();
        self.take();
        self.conclude();
        Ok(())
    }

    pub fn skip(&mut self) {
        self.play.skip();
        self.typed.clear();
        self.take();
        self.conclude();
    }

    /// Moves what the engine showed onto the card; at the end, the summary, and the score kept
    /// (`Err` when it could not be).
    fn take(&mut self) {
        let shown = self.play.drain();
        if !shown.is_empty() {
            self.newest = self.card.len();
            self.card.extend(shown);
            self.follow = true;
            if self.card.len() > CARD {
                let cut = self.card.len() - CARD;
                self.card.drain(..cut);
                self.newest = self.newest.saturating_sub(cut);
            }
        }
    }

    /// Once every part was played: the summary (made once) and the score kept (the summary
    /// says so when it could not be).
    pub fn conclude(&mut self) {
        if self.summary.is_some() || !self.play.done() {
            return;
        }
        let took = self.started.elapsed();
        let mut lines = summary(&self.play, took);
        let (right, total) = self.play.score();
        if let Err(e) = crate::lesson::progress::Progress::add(&self.play.lesson.name, right, total, took) {
            lines.push(e);
        }
        self.summary = Some(lines);
        self.follow = true;
    }

    /// The card as lines `width` columns wide, and the line to bring into view: where the
    /// newest batch starts, or its question.
    pub fn lines(&self, width: usize) -> (Vec<Line<'static>>, usize) {
        let lang = self.play.lang;
        let wrap = |text: &str, style: Style, indent: &str, out: &mut Vec<Line<'static>>| {
            for (i, paragraph) in text.split("\n\n").enumerate() {
                if i > 0 {
                    out.push(Line::default());
                }
                for line in super::text::wrap(paragraph, width.saturating_sub(indent.len()).max(8)) {
                    out.push(Line::styled(format!("{indent}{line}"), style));
                }
            }
        };
        let (right, total) = self.play.score();
        let mut out = vec![Line::from(vec![
            Span::styled(self.play.lesson.title.get(lang).to_string(), Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(
                trf(lang, " · score {right}/{total}", &[("right", &right), ("total", &total)]),
                Style::new().fg(Color::Cyan),
            ),
        ])];
        let mut newest = 0;
        // A question in the newest batch is what must be seen: the card scrolls to it.
        let mut newest_ask = None;
        let open = self.play.open().map(|a| a.number);
        for (i, shown) in self.card.iter().enumerate() {
            if i == self.newest {
                newest = out.len();
            }
            match shown {
                Show::Text(text) => {
                    out.push(Line::default());
                    wrap(text, Style::new(), "", &mut out);
                }
                Show::Table(lines) => {
                    for line in lines {
                        out.push(Line::raw(super::text::fit(&format!(" {line}"), width)));
                    }
                }
                Show::Ask(ask) => {
                    if i >= self.newest && newest_ask.is_none() {
                        newest_ask = Some(out.len());
                    }
                    out.push(Line::default());
                    let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
                    wrap(&format!("? {}. {}", ask.number, ask.prompt), style, "", &mut out);
                    for (c, choice) in ask.choices.iter().enumerate() {
                        wrap(&format!("{}) {choice}", letter(c)), Style::new(), "  ", &mut out);
                    }
                    if open == Some(ask.number) {
                        let typed = if ask.kind == crate::lesson::Kind::Field {
                            tr(lang, "(j k select a field in the details)").to_string()
                        } else {
                            format!("{}▏", self.typed)
                        };
                        out.push(Line::styled(format!("> {typed}"), Style::new().fg(Color::Cyan)));
                        if let Some(error) = &self.error {
                            let text = trf(lang, "not an answer here ({hint})", &[("hint", error)]);
                            wrap(&text, Style::new().fg(Color::Red), "  ", &mut out);
                        }
                        // A field is picked in the details here, not typed.
                        let hint = match ask.kind {
                            crate::lesson::Kind::Field => tr(lang, "Enter answers, Esc skips").to_string(),
                            _ => format!("{} · {}", ask.hint(lang), tr(lang, "Enter answers, Esc skips")),
                        };
                        wrap(&hint, Style::new().fg(Color::DarkGray), "  ", &mut out);
                    }
                }
                Show::Waiting { number } => wrap(
                    &trf(
                        lang,
                        "({number}: graded when the step it asks about crosses: press →)",
                        &[("number", number)],
                    ),
                    Style::new().fg(Color::DarkGray),
                    "  ",
                    &mut out,
                ),
                Show::Graded(o) => {
                    let (mark, why) = grade_lines(o, lang);
                    let color = match o.right {
                        Some(true) => Color::Green,
                        Some(false) => Color::Red,
                        None => Color::DarkGray,
                    };
                    if !mark.is_empty() {
                        wrap(mark.trim_start(), Style::new().fg(color).add_modifier(Modifier::BOLD), "", &mut out);
                    }
                    if let Some(why) = why {
                        wrap(&why, Style::new(), "  ", &mut out);
                    }
                }
                Show::Model(model) => {
                    out.push(Line::styled(tr(lang, "A model answer:").to_string(), Style::new().fg(Color::Cyan)));
                    wrap(model, Style::new(), "  ", &mut out);
                }
            }
        }
        if let Some(summary) = &self.summary {
            newest = out.len();
            out.push(Line::default());
            for line in summary {
                wrap(line, Style::new().add_modifier(Modifier::BOLD), "", &mut out);
            }
            wrap(
                tr(lang, "L closes the lesson; r plays the lab again"),
                Style::new().fg(Color::DarkGray),
                "",
                &mut out,
            );
        }
        (out, newest_ask.filter(|_| self.summary.is_none()).unwrap_or(newest))
    }
}
