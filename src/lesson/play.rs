//! Playing a lesson, sans-IO: the driver (the TUI, or `protolab lesson --answers`) feeds the
//! lab's steps and the student's answers, holds the exchange while [`Play::holding`], and shows
//! what [`Play::drain`] gives. A question opens once the step it waits for has crossed, and is
//! graded by the real step it asks about when that step crosses.

use super::{Kind, Lesson, Match, Part, like, table_lines};
use crate::locale::{Lang, tr, trf};
use crate::session::Step;
use std::collections::VecDeque;
use std::time::Duration;

/// A question being asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    /// 1, 2, 3 ... in the order asked.
    pub number: usize,
    pub kind: Kind,
    /// The question, its `{Path}`s filled from the step it stopped at.
    pub prompt: String,
    /// The choices' text, for `a)`, `b)` ...
    pub choices: Vec<String>,
    /// The `seq` of the step the lesson stopped at, if any (field questions are about it).
    pub at: Option<u64>,
    /// The part it comes from.
    part: usize,
    /// The step it stopped at.
    step: Option<Box<Step>>,
    /// A port quiz row's ports.
    ports: Vec<u16>,
}

impl Ask {
    /// What an answer looks like, for the prompt: `a-c`, `a number`, ...
    pub fn hint(&self, lang: Lang) -> String {
        match self.kind {
            Kind::Choice => {
                trf(lang, "answer {first}-{last}", &[("first", &'a'), ("last", &letter(self.choices.len() - 1))])
            }
            Kind::Number => tr(lang, "answer with a number").into(),
            Kind::Field => tr(lang, "select the field in the details and press Enter, or type its name").into(),
            Kind::Free => tr(lang, "write your answer, then Enter").into(),
            Kind::Ports => tr(lang, "type the port number(s)").into(),
            Kind::Text | Kind::Table => String::new(),
        }
    }
}

/// What the student answered, once it reads.
#[derive(Debug, Clone, PartialEq)]
enum Given {
    Choice(usize),
    Number(u64),
    Field(String),
    Ports(Vec<u16>),
    Free(String),
}

/// The grade of one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub number: usize,
    /// The answer, as the student gave it (`b) 550`).
    pub given: String,
    /// The right answer, from the run (`550`, `a) OFFER`).
    pub expected: String,
    /// `None`: not graded (a free answer, or the run never showed the step asked about).
    pub right: Option<bool>,
    /// The step that decided it, with the field it was read from.
    pub step: Option<(u64, String)>,
    /// Why it was not graded, when it was not.
    pub void: Option<String>,
    pub explain: Option<String>,
    /// What to review when it was wrong.
    pub review: Option<String>,
}

/// What to show, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Show {
    /// Text to read.
    Text(String),
    /// A reference table, as aligned lines.
    Table(Vec<String>),
    /// A question is open: the exchange waits for the answer.
    Ask(Ask),
    /// An answer was taken and waits for the step it is graded by.
    Waiting { number: usize },
    /// A question's grade.
    Graded(Outcome),
    /// The model answer of a free question.
    Model(String),
}

/// An answer waiting for its step.
#[derive(Debug)]
struct Pending {
    ask: Ask,
    given: Given,
    next: Match,
}

/// One lesson being played.
#[derive(Debug)]
pub struct Play {
    pub lesson: Lesson,
    pub lang: Lang,
    /// The next part not reached yet.
    next: usize,
    /// Questions of the part reached that are still to ask (a port quiz has many).
    queue: VecDeque<Ask>,
    open: Option<Ask>,
    pending: Vec<Pending>,
    pub outcomes: Vec<Outcome>,
    shown: VecDeque<Show>,
    /// The lab's exchange is over: parts waiting for steps will not be reached.
    ended: bool,
    asked: usize,
    /// For the port quiz's order.
    seed: u64,
    /// The step that crossed last: the exchange waits after it while a question is open, and
    /// it may stop the lesson for several parts in a row (a field and a number on one OFFER).
    last: Option<Step>,
}

/// The letter of choice `i`: a, b, c ...
pub fn letter(i: usize) -> char {
    (b'a' + (i % 26) as u8) as char
}

impl Play {
    /// Starts `lesson` in `lang`; `seed` orders the port quiz.
    pub fn new(lesson: Lesson, lang: Lang, seed: u64) -> Play {
        let mut play = Play {
            lesson,
            lang,
            next: 0,
            queue: VecDeque::new(),
            open: None,
            pending: Vec::new(),
            outcomes: Vec::new(),
            shown: VecDeque::new(),
            ended: false,
            asked: 0,
            seed,
            last: None,
        };
        play.advance();
        play
    }

    /// What to show since the last call.
    pub fn drain(&mut self) -> Vec<Show> {
        self.shown.drain(..).collect()
    }

    /// The question waiting for an answer, if any: while there is one, the exchange must wait.
    pub fn open(&self) -> Option<&Ask> {
        self.open.as_ref()
    }

    /// Whether the exchange must wait (a question is open).
    pub fn holding(&self) -> bool {
        self.open.is_some()
    }

    /// Whether every part was played and every answer graded.
    pub fn done(&self) -> bool {
        self.open.is_none() && self.queue.is_empty() && self.pending.is_empty() && self.next >= self.lesson.parts.len()
    }

    /// Questions that are graded (not free), for the score.
    pub fn score(&self) -> (usize, usize) {
        let graded = self.outcomes.iter().filter(|o| o.right.is_some());
        let total = graded.clone().count();
        (graded.filter(|o| o.right == Some(true)).count(), total)
    }

    /// A step crossed: it may grade an answer, and may be the one a part waits for.
    pub fn on_step(&mut self, step: &Step) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].next.matches(step) {
                let p = self.pending.remove(i);
                let outcome = self.grade(&p.ask, &p.given, Some(step));
                self.record(outcome);
            } else {
                i += 1;
            }
        }
        self.last = Some(step.clone());
        if self.open.is_none() && self.queue.is_empty() {
            self.advance();
        }
    }

    /// The lab's exchange ended: what still waits for a step is not graded, and the parts
    /// that need no step go on.
    pub fn finish(&mut self) {
        self.ended = true;
        for p in std::mem::take(&mut self.pending) {
            let outcome = self.grade(&p.ask, &p.given, None);
            self.record(outcome);
        }
        if self.open.is_none() && self.queue.is_empty() {
            self.advance();
        }
    }

    /// Skips the open question (Esc): not graded, counted as not answered.
    pub fn skip(&mut self) {
        if let Some(ask) = self.open.take() {
            // A free answer is never graded, written or not.
            let free = ask.kind == Kind::Free;
            let outcome = Outcome {
                number: ask.number,
                given: tr(self.lang, "(skipped)").into(),
                expected: String::new(),
                right: (!free).then_some(false),
                step: None,
                void: None,
                explain: None,
                review: if free { None } else { self.review(ask.part) },
            };
            if free {
                self.outcomes.push(outcome);
            } else {
                self.record(outcome);
            }
            self.next_ask();
        }
    }

    /// The student's answer to the open question. `Err`: it does not read as an answer to
    /// this question (the question stays open), with what would.
    pub fn answer(&mut self, input: &str) -> Result<(), String> {
        let Some(ask) = self.open.clone() else { return Err(tr(self.lang, "no question is open").into()) };
        let input = input.trim();
        let given = self.read(&ask, input)?;
        self.open = None;
        let part = &self.lesson.parts[ask.part];
        match (&given, &part.next) {
            (Given::Free(_), _) => {
                let model = part.model.as_ref().map(|m| m.get(self.lang).to_string()).unwrap_or_default();
                self.outcomes.push(Outcome {
                    number: ask.number,
                    given: input.to_string(),
                    expected: String::new(),
                    right: None,
                    step: None,
                    void: None,
                    explain: None,
                    review: None,
                });
                self.shown.push_back(Show::Model(model));
            }
            (Given::Choice(_) | Given::Number(_), Some(next)) if !self.ended => {
                let next = next.clone();
                self.shown.push_back(Show::Waiting { number: ask.number });
                self.pending.push(Pending { ask, given, next });
            }
            (Given::Choice(_) | Given::Number(_), Some(_)) => {
                // The run is over: the step it asks about will not come.
                let outcome = self.grade(&ask, &given, None);
                self.record(outcome);
            }
            _ => {
                let step = ask.step.clone();
                let outcome = self.grade(&ask, &given, step.as_deref());
                self.record(outcome);
            }
        }
        self.next_ask();
        Ok(())
    }

    fn read(&self, ask: &Ask, input: &str) -> Result<Given, String> {
        let lang = self.lang;
        match ask.kind {
            Kind::Choice => {
                let part = &self.lesson.parts[ask.part];
                let mut chars = input.chars();
                let by_letter = match (chars.next(), chars.next()) {
                    (Some(c), None | Some(')')) if c.is_ascii_alphabetic() => {
                        Some((c.to_ascii_lowercase() as u8).wrapping_sub(b'a') as usize)
                    }
                    _ => None,
                };
                let by_value =
                    || part.choices.iter().position(|c| !c.is.contains('*') && c.is.eq_ignore_ascii_case(input));
                match by_letter.filter(|i| *i < ask.choices.len()).or_else(by_value) {
                    Some(i) => Ok(Given::Choice(i)),
                    None => Err(ask.hint(lang)),
                }
            }
            Kind::Number => number(input).map(Given::Number).ok_or_else(|| ask.hint(lang)),
            Kind::Field => {
                let step = ask.step.as_deref();
                field_path(step, input).map(Given::Field).ok_or_else(|| ask.hint(lang))
            }
            Kind::Ports => {
                let ports: Vec<u16> =
                    input.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
                if ports.is_empty() { Err(ask.hint(lang)) } else { Ok(Given::Ports(ports)) }
            }
            Kind::Free => Ok(Given::Free(input.to_string())),
            Kind::Text | Kind::Table => Err(tr(lang, "no question is open").into()),
        }
    }

    /// Grades `given` against `step` (none: the run never showed it).
    fn grade(&self, ask: &Ask, given: &Given, step: Option<&Step>) -> Outcome {
        let lang = self.lang;
        let part = &self.lesson.parts[ask.part];
        let field = part.field.clone().unwrap_or_default();
        let mut out = Outcome {
            number: ask.number,
            given: self.given_text(ask, given),
            expected: String::new(),
            right: None,
            step: step.map(|s| (s.seq, field.clone())),
            void: None,
            explain: part.explain.as_ref().map(|e| e.get(lang).to_string()),
            review: None,
        };
        if let Given::Ports(ports) = given {
            let (mut want, mut got) = (ask.ports.clone(), ports.clone());
            want.sort_unstable();
            got.sort_unstable();
            got.dedup();
            out.expected = ask.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
            out.right = Some(want == got);
        } else if let Some(step) = step {
            let value = step.value(&field);
            match (given, value) {
                (_, None) => {
                    out.void =
                        Some(trf(lang, "step {seq} has no field {field}", &[("seq", &step.seq), ("field", &field)]))
                }
                (Given::Choice(i), Some(value)) => match part.choices.iter().position(|c| like(&c.is, &value)) {
                    Some(right) => {
                        out.expected = format!("{}) {}  ({field} = {value})", letter(right), ask.choices[right]);
                        out.right = Some(*i == right);
                    }
                    None => {
                        out.expected = format!("{field} = {value}");
                        out.void =
                            Some(trf(lang, "the real answer, {value}, is none of the choices", &[("value", &value)]));
                    }
                },
                (Given::Number(n), Some(value)) => {
                    out.expected = value.clone();
                    out.right = Some(number(&value) == Some(*n));
                }
                (Given::Field(path), Some(value)) => {
                    out.expected = format!("{field} = {value}");
                    out.right = Some(*path == field);
                }
                (Given::Free(_) | Given::Ports(_), Some(_)) => {}
            }
        } else {
            out.void = Some(tr(lang, "the run ended before the step this question is about").into());
        }
        if out.right == Some(false) {
            out.review = self.review(ask.part);
        }
        out
    }

    fn given_text(&self, ask: &Ask, given: &Given) -> String {
        match given {
            Given::Choice(i) => format!("{}) {}", letter(*i), ask.choices[*i]),
            Given::Number(n) => n.to_string(),
            Given::Field(path) => path.clone(),
            Given::Ports(p) => p.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
            Given::Free(text) => text.clone(),
        }
    }

    fn review(&self, part: usize) -> Option<String> {
        let lang = self.lang;
        Some(
            self.lesson.parts[part]
                .review
                .as_ref()
                .map_or_else(|| self.lesson.title.get(lang), |r| r.get(lang))
                .to_string(),
        )
    }

    fn record(&mut self, outcome: Outcome) {
        self.shown.push_back(Show::Graded(outcome.clone()));
        self.outcomes.push(outcome);
    }

    /// Opens the next queued question, or goes on to the next parts.
    fn next_ask(&mut self) {
        match self.queue.pop_front() {
            Some(ask) => self.ask(ask),
            None => self.advance(),
        }
    }

    fn ask(&mut self, ask: Ask) {
        self.shown.push_back(Show::Ask(ask.clone()));
        self.open = Some(ask);
    }

    /// Reaches parts until one waits: for a step (`at`) that the last one is not, or for an
    /// answer.
    fn advance(&mut self) {
        let last = self.last.clone();
        while self.open.is_none() && self.queue.is_empty() && self.next < self.lesson.parts.len() {
            let index = self.next;
            let part = self.lesson.parts[index].clone();
            // A part that needs no step (text, a free exercise) waits until the answers given
            // before it are graded: the story reads in the order it happened.
            if part.at.is_none() && part.next.is_none() && !self.pending.is_empty() && !self.ended {
                return;
            }
            let mut at = None;
            if let Some(want) = &part.at {
                match &last {
                    Some(s) if want.matches(s) => at = Some(s),
                    _ if !self.ended => return,
                    // The run is over: this part's step will never come.
                    _ => {
                        self.next += 1;
                        self.unreached(&part, index);
                        continue;
                    }
                }
            }
            self.next += 1;
            self.reach(&part, index, at);
        }
    }

    /// A part whose step never came: its questions are marked so, its text is left out.
    fn unreached(&mut self, part: &Part, index: usize) {
        if part.asks() {
            self.asked += 1;
            self.record(Outcome {
                number: self.asked,
                given: String::new(),
                expected: String::new(),
                right: None,
                step: None,
                void: Some(tr(self.lang, "the run ended before the step this question is about").into()),
                explain: None,
                review: self.review(index),
            });
        }
    }

    fn reach(&mut self, part: &Part, index: usize, at: Option<&Step>) {
        let lang = self.lang;
        let text = match at {
            Some(step) => crate::narration::fill(part.text(lang), step, lang),
            None => part.text(lang).to_string(),
        };
        let base = Ask {
            number: 0,
            kind: part.kind,
            prompt: text.clone(),
            choices: part.choices.iter().map(|c| c.get(lang).to_string()).collect(),
            at: at.map(|s| s.seq),
            part: index,
            step: at.map(|s| Box::new(s.clone())),
            ports: Vec::new(),
        };
        match part.kind {
            Kind::Text => self.shown.push_back(Show::Text(text)),
            Kind::Table => {
                if !text.is_empty() {
                    self.shown.push_back(Show::Text(text));
                }
                let rows = part.table.as_ref().map(|t| t.get(lang).to_vec()).unwrap_or_default();
                self.shown.push_back(Show::Table(table_lines(&rows)));
            }
            Kind::Ports => {
                self.shown.push_back(Show::Text(text));
                for i in shuffled(part.ports.len(), self.seed) {
                    let row = &part.ports[i];
                    self.asked += 1;
                    let name = super::pick(lang, &row.en, &row.ko);
                    self.queue.push_back(Ask {
                        number: self.asked,
                        prompt: trf(lang, "The port number of {service}?", &[("service", name)]),
                        ports: row.ports.clone(),
                        ..base.clone()
                    });
                }
                self.next_ask();
            }
            Kind::Choice | Kind::Number | Kind::Field | Kind::Free => {
                self.asked += 1;
                self.ask(Ask { number: self.asked, ..base });
            }
        }
    }
}

impl super::Choice {
    pub fn get(&self, lang: Lang) -> &str {
        super::pick(lang, &self.en, &self.ko)
    }
}

/// A typed number: decimal, or hex with `0x`.
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.replace(['_', ','], "").parse().ok(),
    }
}

/// The path of the field an answer names: its path (`DHCP.yiaddr`), the name after the dot
/// when only one field has it (`yiaddr`), or its number in the details (from 1).
fn field_path(step: Option<&Step>, input: &str) -> Option<String> {
    let step = step?;
    if let Ok(n) = input.parse::<usize>() {
        return step.fields.get(n.checked_sub(1)?).map(|f| f.path.clone());
    }
    if let Some(f) = step.fields.iter().find(|f| f.path.eq_ignore_ascii_case(input)) {
        return Some(f.path.clone());
    }
    let mut by_name = step
        .fields
        .iter()
        .filter(|f| f.path.rsplit_once('.').is_some_and(|(_, name)| name.eq_ignore_ascii_case(input)));
    match (by_name.next(), by_name.next()) {
        (Some(f), None) => Some(f.path.clone()),
        _ => None,
    }
}

/// 0..n in an order that `seed` decides (a small xorshift: the quiz's order need not be
/// secret, only different from one try to the next).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

/// A grade: its line (the mark, the answers, the step that decided), and why, if the lesson
/// says. `None` for a free answer (its model answer is shown instead).
pub fn grade_lines(o: &Outcome, lang: Lang) -> (String, Option<String>) {
    let n = o.number;
    let from =
        o.step.as_ref().map(|(seq, _)| format!(" {}", trf(lang, "(step {seq})", &[("seq", seq)]))).unwrap_or_default();
    let mark = match (o.right, &o.void) {
        (Some(true), _) => trf(lang, "✓ {n}. right: {expected}", &[("n", &n), ("expected", &o.expected)]) + &from,
        (Some(false), _) if o.expected.is_empty() => trf(lang, "✗ {n}. not answered", &[("n", &n)]),
        // Graded by a step of this run, or (the port table) by the lesson's own table.
        (Some(false), _) if o.step.is_some() => {
            trf(
                lang,
                "✗ {n}. wrong: you said {given}; the run says {expected}",
                &[("n", &n), ("given", &o.given), ("expected", &o.expected)],
            ) + &from
        }
        (Some(false), _) => trf(
            lang,
            "✗ {n}. wrong: you said {given}; the answer is {expected}",
            &[("n", &n), ("given", &o.given), ("expected", &o.expected)],
        ),
        (None, Some(why)) => trf(lang, "· {n}. not graded: {why}", &[("n", &n), ("why", why)]),
        (None, None) => String::new(),
    };
    let mark = if mark.is_empty() { mark } else { format!("  {mark}") };
    (mark, o.explain.clone().filter(|_| o.right.is_some()))
}

/// The summary at the end of a lesson: score, time, what to review.
pub fn summary(play: &Play, took: Duration) -> Vec<String> {
    let lang = play.lang;
    let (right, total) = play.score();
    let secs = took.as_secs();
    let mut lines = vec![trf(
        lang,
        "Score {right}/{total} in {min}:{sec}",
        &[("right", &right), ("total", &total), ("min", &(secs / 60)), ("sec", &format!("{:02}", secs % 60))],
    )];
    let mut review: Vec<&str> = Vec::new();
    for o in &play.outcomes {
        if let Some(r) = o.review.as_deref().filter(|_| o.right == Some(false))
            && !review.contains(&r)
        {
            review.push(r);
        }
    }
    if review.is_empty() {
        lines.push(tr(lang, "Nothing to review: well done.").into());
    } else {
        lines.push(trf(lang, "To review: {topics}", &[("topics", &review.join("; "))]));
    }
    let void = play.outcomes.iter().filter(|o| o.void.is_some()).count();
    if void > 0 {
        lines.push(trf(lang, "{n} question(s) not graded: this run did not show what they ask about", &[("n", &void)]));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Field;

    fn lesson() -> Lesson {
        super::super::parse(
            "t",
            r#"
            lab = "tcp"
            title = { en = "TCP", ko = "TCP" }
            about = { en = "a", ko = "a" }
            [[part]]
            kind = "text"
            en = "Hello"
            ko = "안녕"
            [[part]]
            kind = "number"
            at = "tcp.syn"
            next = "tcp.syn-ack"
            field = "TCP.ack"
            en = "The SYN has seq={TCP.seq}. Which ack?"
            ko = "?"
            review = { en = "ISN + 1", ko = "ISN + 1" }
            [[part]]
            kind = "choice"
            next = "tcp.ack"
            field = "TCP.flags"
            en = "Flags?"
            ko = "?"
            choices = [{ is = "*RST*", en = "a reset", ko = "r" }, { is = "ACK", en = "an ACK", ko = "a" }]
            [[part]]
            kind = "field"
            at = "tcp.ack"
            field = "TCP.ack"
            en = "Which field acknowledges?"
            ko = "?"
            [[part]]
            kind = "free"
            en = "Why three?"
            ko = "?"
            model = { en = "Because.", ko = "왜냐하면." }
            "#,
        )
        .unwrap()
    }

    fn seg(seq: u64, kind: &str, fields: &[(&str, serde_json::Value)]) -> Step {
        Step {
            seq,
            kind: kind.into(),
            fields: fields.iter().map(|(p, v)| Field::new(*p, v.clone(), 0..0)).collect(),
            ..Step::default()
        }
    }

    #[test]
    fn questions_open_at_their_step_and_are_graded_by_the_step_they_ask_about() {
        let mut play = Play::new(lesson(), Lang::En, 1);
        assert_eq!(play.drain(), vec![Show::Text("Hello".into())]);
        assert!(!play.holding(), "the text waits for nothing");
        play.on_step(&seg(1, "arp.request", &[]));
        assert!(!play.holding());
        play.on_step(&seg(2, "tcp.syn", &[("TCP.seq", 41.into())]));
        assert!(play.holding(), "the exchange waits for the answer");
        let Some(Show::Ask(ask)) = play.drain().pop() else { panic!("a question") };
        assert_eq!(ask.prompt, "The SYN has seq=41. Which ack?");
        assert!(play.answer("forty-two").is_err(), "not a number: asked again");
        play.answer("7").unwrap();
        // The next question needs no step: it is asked at once, and waits for its answer.
        assert!(play.holding());
        assert_eq!(play.drain()[0], Show::Waiting { number: 1 });
        // The SYN-ACK of this run acknowledges 42: the answer 7 is wrong, whatever the file says.
        play.on_step(&seg(3, "tcp.syn-ack", &[("TCP.ack", 42.into())]));
        let graded = play.outcomes[0].clone();
        assert_eq!(
            (graded.right, graded.expected.as_str(), graded.step),
            (Some(false), "42", Some((3, "TCP.ack".into())))
        );
        assert_eq!(graded.review.as_deref(), Some("ISN + 1"));
        play.answer("b").unwrap();
        play.on_step(&seg(4, "tcp.ack.handshake", &[("TCP.flags", "ACK".into()), ("TCP.ack", 43.into())]));
        assert_eq!(play.outcomes[1].right, Some(true));
        assert!(play.outcomes[1].expected.starts_with("b) an ACK"));
        // The field question opened at that same ACK, and is about it.
        assert_eq!(play.open().map(|a| a.at), Some(Some(4)));
        assert!(play.answer("TCP.window").is_err(), "the step has no such field");
        play.answer("ack").unwrap();
        assert_eq!(play.outcomes[2].right, Some(true));
        play.answer("my own words").unwrap();
        assert!(play.drain().contains(&Show::Model("Because.".into())));
        assert!(play.done());
        assert_eq!(play.score(), (2, 3), "the free answer is not graded");
        let lines = summary(&play, Duration::from_secs(75));
        assert_eq!(lines[0], "Score 2/3 in 1:15");
        assert_eq!(lines[1], "To review: ISN + 1");
    }

    #[test]
    fn a_run_that_ends_early_grades_nothing_it_did_not_show() {
        let mut play = Play::new(lesson(), Lang::En, 1);
        play.on_step(&seg(2, "tcp.syn", &[("TCP.seq", 41.into())]));
        play.answer("42").unwrap();
        play.finish();
        assert_eq!(play.outcomes[0].right, None);
        assert!(play.outcomes[0].void.is_some());
        // The choice question needs no step to be asked; then the field question is unreached.
        play.answer("a").unwrap();
        assert_eq!(play.outcomes.last().unwrap().right, None, "graded by a step that never came");
        assert!(play.outcomes.iter().any(|o| o.void.as_deref().is_some_and(|v| v.contains("ended"))));
        play.answer("words").unwrap();
        assert!(play.done());
        assert_eq!(play.score(), (0, 0));
    }

    #[test]
    fn a_choice_the_run_does_not_offer_is_not_graded() {
        let mut play = Play::new(lesson(), Lang::En, 1);
        play.on_step(&seg(2, "tcp.syn", &[("TCP.seq", 41.into())]));
        play.answer("42").unwrap();
        play.on_step(&seg(3, "tcp.syn-ack", &[("TCP.ack", 42.into())]));
        play.answer("a").unwrap();
        play.on_step(&seg(4, "tcp.ack", &[("TCP.flags", "FIN,ACK".into())]));
        let o = &play.outcomes[1];
        assert_eq!(o.right, None);
        assert!(o.void.as_deref().unwrap().contains("FIN,ACK"));
    }

    #[test]
    fn the_quiz_order_is_a_permutation() {
        let mut order = shuffled(12, 99);
        assert_ne!(order, (0..12).collect::<Vec<_>>());
        order.sort_unstable();
        assert_eq!(order, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn numbers_read_as_typed() {
        assert_eq!(number("1355263648"), Some(1355263648));
        assert_eq!(number("0x10"), Some(16));
        assert_eq!(number("1,000"), Some(1000));
        assert_eq!(number("x"), None);
    }
}
