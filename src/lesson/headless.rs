//! A lesson without the TUI: `protolab lesson NAME --answers a,42,…` (or `--answers -`, one
//! answer a line on stdin as each question comes). The lab's real exchange runs in lockstep
//! with the lesson: a message waits at the gate while a question is open, so every answer is
//! given before the step it is graded by has crossed.

use super::play::{Ask, Play, Show, letter, summary};
use super::{Kind, Lesson};
use crate::labs::run::{RunOptions, exchange};
use crate::locale::{Lang, tr, trf};
use crate::net::Gate;
use crate::session::{StepSink, text_line};
use color_eyre::Result;
use color_eyre::eyre::eyre;
use std::io::Write;
use std::time::Instant;
use tokio::sync::mpsc;

/// Where answers come from: `None` when there are no more (the question is skipped).
pub type Answers<'a> = dyn FnMut(&Ask) -> Option<String> + Send + 'a;

/// Plays `lesson` to its end, printing to `out`; the played lesson, for its score.
pub async fn play(
    lesson: Lesson,
    lang: Lang,
    seed: u64,
    answers: &mut Answers<'_>,
    out: &mut dyn Write,
) -> Result<Play> {
    let started = Instant::now();
    let lab = match &lesson.lab {
        Some(name) => {
            Some(crate::labs::find_telling(name, lesson.tls_mode()).ok_or_else(|| eyre!("no lab named {name}"))?)
        }
        None => None,
    };
    let wire = lesson.wire;
    let mut play = Play::new(lesson, lang, seed);
    writeln!(out, "== {} ==", play.lesson.title.get(lang))?;
    let mut failed = None;
    if let Some(lab) = lab {
        let (events, mut waiting) = mpsc::unbounded_channel();
        let gate = Gate::stepping(events);
        let (tx, mut steps) = mpsc::unbounded_channel();
        let sink = StepSink::new(lab.info().name, tx);
        let wire = lab.info().wire_for(wire);
        let opts = RunOptions { gate: gate.clone(), ..RunOptions::free(wire) };
        let mut run = tokio::spawn(exchange(lab, opts, sink));
        let mut running = true;
        loop {
            show(&mut play, answers, out)?;
            // Every step caused before a sender came to the gate is in the channel by then:
            // take them all before deciding to let the sender go.
            while let Ok(step) = steps.try_recv() {
                writeln!(out, "{}", text_line(&step, false))?;
                play.on_step(&step);
                show(&mut play, answers, out)?;
            }
            if !play.holding() && gate.waiting().is_some() {
                gate.open_one();
            }
            tokio::select! {
                step = steps.recv() => match step {
                    Some(step) => {
                        writeln!(out, "{}", text_line(&step, false))?;
                        play.on_step(&step);
                    }
                    None => break,
                },
                Some(_) = waiting.recv() => {}
                done = &mut run, if running => {
                    running = false;
                    match done {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failed = Some(e),
                        Err(e) => failed = Some(eyre!("the lab's task failed: {e}")),
                    }
                }
            }
        }
        if running {
            match run.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = Some(e),
                Err(e) => failed = Some(eyre!("the lab's task failed: {e}")),
            }
        }
    }
    play.finish();
    show(&mut play, answers, out)?;
    writeln!(out)?;
    for line in summary(&play, started.elapsed()) {
        writeln!(out, "{line}")?;
    }
    match failed {
        Some(e) => Err(e.wrap_err(tr(lang, "the lab's exchange failed"))),
        None => Ok(play),
    }
}

/// Prints what the lesson has to show, and answers its questions until none is open.
fn show(play: &mut Play, answers: &mut Answers<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    loop {
        for shown in play.drain() {
            print(&shown, play.lang, out)?;
        }
        let Some(ask) = play.open().cloned() else { return Ok(()) };
        out.flush()?;
        match answers(&ask) {
            None => {
                writeln!(out, "  > {}", tr(play.lang, "(skipped)"))?;
                play.skip();
            }
            Some(given) => {
                writeln!(out, "  > {given}")?;
                if let Err(hint) = play.answer(&given) {
                    writeln!(out, "  {}", trf(play.lang, "not an answer here ({hint})", &[("hint", &hint)]))?;
                    if ask.kind != Kind::Free {
                        // A list of answers cannot be asked again: this one counts as skipped.
                        play.skip();
                    }
                }
            }
        }
    }
}

/// Columns the lesson's text is wrapped to.
const WIDTH: usize = 96;

/// Paragraphs wrapped to [`WIDTH`], each line after `indent`.
fn para(out: &mut dyn Write, text: &str, indent: &str) -> std::io::Result<()> {
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        for line in crate::tui::text::wrap(paragraph, WIDTH - indent.len()) {
            writeln!(out, "{indent}{line}")?;
        }
    }
    Ok(())
}

fn print(shown: &Show, lang: Lang, out: &mut dyn Write) -> std::io::Result<()> {
    match shown {
        Show::Text(text) => {
            writeln!(out)?;
            para(out, text, "")?;
            writeln!(out)
        }
        Show::Table(lines) => {
            for line in lines {
                writeln!(out, "  {line}")?;
            }
            writeln!(out)
        }
        Show::Ask(ask) => {
            para(out, &format!("? {}. {}", ask.number, ask.prompt), "")?;
            for (i, choice) in ask.choices.iter().enumerate() {
                writeln!(out, "     {}) {choice}", letter(i))?;
            }
            writeln!(out, "  ({})", ask.hint(lang))
        }
        Show::Waiting { number } => {
            writeln!(
                out,
                "  {}",
                trf(lang, "({number}: graded when the step it asks about crosses)", &[("number", number)])
            )
        }
        Show::Graded(o) => {
            let (mark, why) = super::play::grade_lines(o, lang);
            if !mark.is_empty() {
                writeln!(out, "{mark}")?;
            }
            match why {
                Some(why) => para(out, &why, "    "),
                None => Ok(()),
            }
        }
        Show::Model(model) => {
            writeln!(out, "  {}", tr(lang, "A model answer:"))?;
            para(out, model, "    ")
        }
    }
}

/// Answers from a list (`--answers a,42,b`): one per question, in order; an empty one or the
/// end of the list skips.
pub fn from_list(list: &str) -> impl FnMut(&Ask) -> Option<String> + Send + use<> {
    let mut items: std::collections::VecDeque<String> = list.split(',').map(|s| s.trim().to_string()).collect();
    move |_| items.pop_front().filter(|s| !s.is_empty())
}

/// Answers typed on stdin, a line each, read as each question comes; the end of input skips.
pub fn from_stdin() -> impl FnMut(&Ask) -> Option<String> + Send {
    move |_| {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
        }
    }
}
