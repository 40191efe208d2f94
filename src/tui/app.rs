//! The TUI's state: one tab per lab, each with its own run, session, cursor and play mode.
//! Events come in (keys, mouse, steps from the labs), the state changes, and `ui::draw` shows it.

use super::keys::Action;
use crate::labs::{Lab, run};
use crate::locale::{Lang, tr, trf};
use crate::narration::Narration;
use crate::net::{Gate, GateEvent, Release, Wire};
use crate::session::{Session, Step, StepSink};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The field selected first in a step of each protocol that has a telling one.
const LEAD_FIELDS: [&str; 5] = ["TCP.seq", "DHCP.message_type", "ARP.operation", "ICMP.type", "WebSocket.opcode"];

/// Play and animation speeds, as multipliers.
pub const SPEEDS: [f32; 6] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
/// The speed a tab starts at (×1).
const DEFAULT_SPEED: usize = 2;
/// How long an arrow takes to cross the ladder at speed ×1.
const FLIGHT: Duration = Duration::from_millis(700);
/// The pause between two messages when playing at ×1.
const PLAY_PAUSE: Duration = Duration::from_millis(1200);
/// Presses of → kept while nothing waits at the gate yet.
pub const MAX_QUEUED: u8 = 8;
/// How long a first Ctrl-C waits for the second.
pub const CTRL_C_WINDOW: Duration = Duration::from_secs(2);

/// What a lab run tells the UI, tagged with the tab and the run it belongs to.
#[derive(Debug)]
pub struct LabEvent {
    pub tab: usize,
    /// Which run of the tab: events of an older run are ignored.
    pub run: u32,
    pub kind: LabEventKind,
}

#[derive(Debug)]
pub enum LabEventKind {
    Step(Box<Step>),
    /// An endpoint waits at the gate with its next message.
    Waiting(String),
    /// The embedded server listens here (on the host wire, an ephemeral port).
    Listening(SocketAddr),
    /// The exchange ended: completed, or failed with its reason (the error's chain, outermost first).
    Done(Result<(), Vec<String>>),
}

/// Where a lab run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Running,
    Completed,
    /// Why, as the error's chain: outermost first.
    Failed(Vec<String>),
}

/// An arrow in flight: the step `index` is being revealed.
#[derive(Debug, Clone, Copy)]
pub struct Flight {
    pub index: usize,
    pub start: Instant,
    pub duration: Duration,
}

impl Flight {
    /// 0.0 at the sender, 1.0 at the receiver.
    pub fn progress(&self, now: Instant) -> f32 {
        (now.saturating_duration_since(self.start).as_secs_f32() / self.duration.as_secs_f32()).clamp(0.0, 1.0)
    }
}

/// Which steps the ladder shows: on the lab network, messages and the segments under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layers {
    #[default]
    Both,
    /// Application messages only (reassembled from the stream).
    Messages,
    /// Frames and segments only.
    Segments,
}

impl Layers {
    pub fn shows(self, step: &Step) -> bool {
        match self {
            Layers::Both => true,
            Layers::Messages => !step.frame,
            Layers::Segments => step.frame || step.layer != crate::session::Layer::Application,
        }
    }

    fn next(self) -> Self {
        match self {
            Layers::Both => Layers::Messages,
            Layers::Messages => Layers::Segments,
            Layers::Segments => Layers::Both,
        }
    }

    /// How the status bar says it; nothing for the default.
    pub fn label(self, lang: Lang) -> Option<&'static str> {
        match self {
            Layers::Both => None,
            Layers::Messages => Some(tr(lang, "messages only")),
            Layers::Segments => Some(tr(lang, "segments only")),
        }
    }
}

/// The connections of a run, each with a short tag in the order they appeared (`a`, `b`, …),
/// and the one the ladder is narrowed to (`f`), if any.
#[derive(Debug, Default)]
pub struct Connections {
    order: HashMap<String, usize>,
    /// Only this connection's steps are shown.
    pub only: Option<String>,
}

/// Connections a run tags, at most: later ones go untagged (they can still be followed).
const TAGGED: usize = 4096;
/// The tags, in order; past the last they start again.
const TAGS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl Connections {
    /// Notes the connection of a step just added to `session`.
    fn note(&mut self, session: &Session, step: &Step) {
        if self.order.len() < TAGGED
            && let Some(key) = session.connection_of(step)
        {
            let n = self.order.len();
            self.order.entry(key).or_insert(n);
        }
    }

    /// The step's tag and its number (for its colour), once the run has two connections or more.
    pub fn tag(&self, session: &Session, step: &Step) -> Option<(char, usize)> {
        if self.order.len() < 2 {
            return None;
        }
        let n = *self.order.get(&session.connection_of(step)?)?;
        Some((char::from(TAGS[n % TAGS.len()]), n))
    }

    /// Whether the ladder shows the step: every step, or only the followed connection's.
    pub fn shows(&self, session: &Session, step: &Step) -> bool {
        self.only.as_ref().is_none_or(|only| session.connection_of(step).as_ref() == Some(only))
    }

    fn clear(&mut self) {
        self.order.clear();
        self.only = None;
    }
}

/// What the status bar asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A text to find among the steps' summaries.
    Find,
    /// A step's number, to go to.
    Step,
}

/// One lab's tab.
pub struct LabTab {
    pub lab: Arc<dyn Lab>,
    pub narration: Narration,
    /// The language of its notes (the app's).
    pub lang: Lang,
    /// Every step received from the current run.
    pub session: Session,
    /// Steps shown so far (the rest wait for their arrow).
    pub revealed: usize,
    /// The selected step, an index into `session`.
    pub cursor: usize,
    /// The selected field of the selected step.
    pub field: usize,
    /// The first ladder row shown.
    pub scroll: usize,
    /// The first narration line shown; back to the top when another step is selected.
    pub narration_scroll: usize,
    pub flight: Option<Flight>,
    pub state: RunState,
    /// Who waits at the gate now.
    pub waiting: Option<String>,
    /// Counts runs, to drop events of an older run.
    pub run: u32,
    /// The wire of the current run.
    pub wire: Wire,
    /// Which steps the ladder shows.
    pub layers: Layers,
    /// The run's connections, and the one followed (`f`).
    pub conns: Connections,
    /// The DHCP lease clock's speed-up in the current run.
    pub lease_speedup: u32,
    /// Play mode: this lab's gate opens by itself. Each tab plays on its own.
    pub playing: bool,
    /// Index into [`SPEEDS`]: this tab's play and animation speed.
    pub speed: usize,
    /// When play mode last let a message go.
    pub last_play: Instant,
    /// Presses of → given while nothing waited at the gate yet (the peer was still working):
    /// each lets the next waiting message go as soon as it arrives.
    pub queued: u8,
    /// The embedded server's real address in the current run, once it listens.
    pub listening: Option<SocketAddr>,
    /// The widest summary seen on this tab, in columns: the ladder asks for room to show it.
    /// Kept across runs, so a re-run does not reshuffle the screen.
    pub widest: usize,
    /// Whether the session holds frames (whole Ethernet frames) and messages (reassembled from
    /// a stream): `v` only has something to hide when it holds both.
    pub has_frames: bool,
    pub has_messages: bool,
    /// The current run's gate (public for tests that play the peer's part).
    pub gate: Option<Arc<Gate>>,
    /// The lesson playing in this tab (`L`), if any: its questions hold the gate.
    pub lesson: Option<super::lesson::TabLesson>,
    /// The step the presenter points at (`m`), by `seq`: highlighted apart from the selection.
    pub pointer: Option<u64>,
    /// A re-run going by itself up to this many steps (`R`), then stopping there.
    pub replay_to: Option<usize>,
    /// The re-run let a message go and waits for its step before it lets the next one go.
    replay_sent: bool,
    task: Option<JoinHandle<()>>,
}

impl LabTab {
    /// The ladder's lifelines: the lab network's nodes, or client and server on kernel sockets.
    pub fn lifelines(&self) -> Vec<&'static str> {
        match self.wire {
            Wire::Sim => (self.lab.info().network)().lifelines(),
            Wire::Host => self.lab.host_lifelines(),
        }
    }

    pub fn new(lab: Arc<dyn Lab>) -> Self {
        let narration = Narration::for_lab(Lang::En, lab.as_ref());
        LabTab {
            lab,
            narration,
            lang: Lang::En,
            session: Session::default(),
            revealed: 0,
            cursor: 0,
            field: 0,
            scroll: 0,
            narration_scroll: 0,
            flight: None,
            state: RunState::Running,
            waiting: None,
            run: 0,
            wire: Wire::Host,
            layers: Layers::Both,
            conns: Connections::default(),
            lease_speedup: crate::labs::dhcp::DEFAULT_SPEEDUP,
            playing: false,
            speed: DEFAULT_SPEED,
            last_play: Instant::now(),
            queued: 0,
            listening: None,
            widest: 0,
            has_frames: false,
            has_messages: false,
            gate: None,
            lesson: None,
            pointer: None,
            replay_to: None,
            replay_sent: false,
            task: None,
        }
    }

    /// Whether a lesson's question is open: nothing may cross until it is answered.
    pub fn holding(&self) -> bool {
        self.lesson.as_ref().is_some_and(|l| l.open().is_some())
    }

    /// This tab's speed, as a multiplier.
    pub fn speed(&self) -> f32 {
        SPEEDS[self.speed]
    }

    /// Adds a step to the session, keeping positions and what the layout measures in step
    /// with it. Returns how many of the oldest steps were dropped to make room.
    pub fn push(&mut self, step: Step) -> usize {
        let label = super::text::width(&step.summary) + if step.malformed.is_some() { 3 } else { 0 };
        self.widest = self.widest.max(label);
        self.has_frames |= step.frame;
        self.has_messages |= !step.frame;
        let dropped = self.session.push(step);
        if let Some(added) = self.session.get(self.session.len() - 1) {
            self.conns.note(&self.session, added);
        }
        if dropped > 0 {
            // Positions count from the oldest step kept: shift them with it.
            self.revealed = self.revealed.saturating_sub(dropped);
            self.cursor = self.cursor.saturating_sub(dropped);
            self.scroll = self.scroll.saturating_sub(dropped);
            self.flight = self.flight.and_then(|f| f.index.checked_sub(dropped).map(|index| Flight { index, ..f }));
        }
        dropped
    }

    /// Selects `index` and, in it, the first field of the step's own protocol (a TCP segment's
    /// `TCP.src_port`, not its Ethernet header).
    fn point_at(&mut self, index: usize) {
        if index != self.cursor {
            self.narration_scroll = 0;
        }
        self.cursor = index;
        self.field = self.session.get(index).map_or(0, |s| {
            // The field that says most of what the step is (with its neighbours in view on a
            // small screen: a TCP segment's seq and ack), else the first of its own protocol.
            let lead = LEAD_FIELDS.iter().find_map(|p| s.fields.iter().position(|f| f.path == *p));
            let own = format!("{}.", s.proto);
            lead.or_else(|| s.fields.iter().position(|f| f.path.starts_with(&own))).unwrap_or(0)
        });
    }

    /// The selected step, if any is shown.
    pub fn selected(&self) -> Option<&Step> {
        let step = self.session.get(self.cursor).filter(|s| self.shows(s))?;
        (self.cursor < self.shown()).then_some(step)
    }

    fn visible(&self, index: usize) -> bool {
        self.session.get(index).is_some_and(|s| self.shows(s))
    }

    /// Whether the ladder has a row for `step`: its layer is shown, and its connection.
    pub fn shows(&self, step: &Step) -> bool {
        self.layers.shows(step) && self.conns.shows(&self.session, step)
    }

    /// Follows the selected step's connection alone (`f`), or all of them again; the cursor
    /// stays on a step shown. `Some` says why nothing changed.
    pub fn follow(&mut self) -> Option<String> {
        if self.conns.only.take().is_some() {
            self.set_layers(self.layers);
            return None;
        }
        let Some(step) = self.selected() else { return Some(tr(self.lang, "no steps yet").into()) };
        let Some(conn) = self.session.connection_of(step) else {
            return Some(
                tr(self.lang, "this step belongs to no connection (ARP, ICMP, UDP): f follows a TCP one").into(),
            );
        };
        self.conns.only = Some(conn);
        self.set_layers(self.layers);
        None
    }

    /// The first visible step in `from..end`.
    fn next_visible(&self, from: usize, end: usize) -> Option<usize> {
        (from..end).find(|&i| self.visible(i))
    }

    /// The last visible step before `before`.
    fn prev_visible(&self, before: usize) -> Option<usize> {
        (0..before.min(self.session.len())).rev().find(|&i| self.visible(i))
    }

    /// The visible steps from `from` on, among those shown: the ladder's rows.
    pub fn rows_from(&self, from: usize) -> impl Iterator<Item = usize> + '_ {
        (from..self.shown()).filter(|&i| self.visible(i))
    }

    /// The selected step's place among the visible steps shown, and how many those are:
    /// what the status bar counts (with a layer hidden, only the rows on screen count).
    pub fn position(&self) -> Option<(usize, usize)> {
        let shown = self.shown();
        if shown == 0 {
            return None;
        }
        let cursor = self.cursor.min(shown - 1);
        if self.layers == Layers::Both && self.conns.only.is_none() {
            return Some((cursor + 1, shown));
        }
        let total = self.rows_from(0).count();
        let at = (0..=cursor).filter(|&i| self.visible(i)).count();
        (total > 0).then_some((at.max(1), total))
    }

    /// Whether the session has two layers for `v` to choose between.
    pub fn layered(&self) -> bool {
        self.has_frames && self.has_messages
    }

    /// Shows the next layer choice; the cursor moves to the nearest visible step. A session
    /// of one layer is left alone, with the reason.
    pub fn toggle_layers(&mut self) -> Option<String> {
        if !self.layered() {
            return Some(match (self.has_frames, self.has_messages) {
                (true, _) => tr(self.lang, "every step here is a frame: one layer").into(),
                (_, true) => tr(self.lang, "every step here is a message: one layer").into(),
                _ => tr(self.lang, "no steps yet").into(),
            });
        }
        self.set_layers(self.layers.next());
        None
    }

    fn set_layers(&mut self, layers: Layers) {
        self.layers = layers;
        if !self.visible(self.cursor) {
            let shown = self.shown();
            if let Some(i) = self.prev_visible(self.cursor).or_else(|| self.next_visible(self.cursor, shown)) {
                self.point_at(i);
            }
        }
        self.scroll = self.scroll.min(self.cursor);
    }

    /// Starts a fresh run: the old one is cancelled, its sockets closed.
    pub fn start(&mut self, tab: usize, wire: Wire, events: mpsc::Sender<LabEvent>) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.run += 1;
        self.wire = wire;
        self.lease_speedup = crate::labs::dhcp::speedup();
        self.session.clear();
        self.revealed = 0;
        self.cursor = 0;
        self.field = 0;
        self.scroll = 0;
        self.narration_scroll = 0;
        self.flight = None;
        self.waiting = None;
        self.queued = 0;
        self.listening = None;
        self.has_frames = false;
        self.has_messages = false;
        self.conns.clear();
        self.state = RunState::Running;
        self.pointer = None;
        self.replay_to = None;
        self.replay_sent = false;
        // A lesson starts again with its lab: the questions are about this run's steps.
        if let Some(old) = self.lesson.take() {
            self.lesson = Some(super::lesson::TabLesson::new(old.play.lesson, self.lang, rand::random()));
        }
        let (gate_tx, gate_rx) = mpsc::unbounded_channel();
        let gate = Gate::stepping(gate_tx);
        self.gate = Some(gate.clone());
        let capture = wire == Wire::Host;
        let opts = run::RunOptions { wire, gate, capture, ..run::RunOptions::free(wire) };
        self.task = Some(tokio::spawn(forward(self.lab.clone(), opts, tab, self.run, gate_rx, events)));
    }

    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// A step, a wait or the end arrived from this tab's run.
    pub fn on_event(&mut self, kind: LabEventKind, now: Instant) {
        match kind {
            LabEventKind::Step(step) => {
                if let Some(lesson) = &mut self.lesson {
                    lesson.on_step(&step);
                    if lesson.open().is_some() {
                        // A question opened: presses given ahead must not answer for the student.
                        self.queued = 0;
                    }
                }
                self.push(*step);
                self.waiting = self.gate.as_ref().and_then(|g| g.waiting());
                self.launch_next(now);
                self.spend_queued();
                self.replay_sent = false;
                self.replay();
            }
            LabEventKind::Waiting(from) => {
                // The gate knows best: a press kept from earlier may have let this wait go
                // before its event arrived here.
                self.waiting = match &self.gate {
                    Some(g) => g.waiting(),
                    None => Some(from),
                };
                self.spend_queued();
                self.replay();
            }
            LabEventKind::Listening(addr) => self.listening = Some(addr),
            LabEventKind::Done(result) => {
                self.waiting = None;
                self.queued = 0;
                if let Some(lesson) = &mut self.lesson {
                    lesson.finish();
                }
                self.state = match result {
                    Ok(()) => RunState::Completed,
                    Err(reason) => RunState::Failed(reason),
                };
            }
        }
    }

    /// A re-run up to a step (`R`): lets the waiting message go until the session has as many
    /// steps as asked, then shows them all and stops, the newest selected.
    fn replay(&mut self) {
        let Some(want) = self.replay_to else { return };
        if self.session.len() >= want || self.state != RunState::Running {
            self.replay_to = None;
            self.catch_up();
            if let Some(index) = want.checked_sub(1).filter(|i| *i < self.session.len()) {
                self.point_at(index);
            }
            return;
        }
        // One message at a time: its step comes before the next one goes, so the run stops
        // where it should and not a message later.
        if !self.replay_sent && !self.holding() && self.gate.as_ref().is_some_and(|g| g.open_one()) {
            self.replay_sent = true;
            self.waiting = self.gate.as_ref().and_then(|g| g.waiting());
        }
    }

    /// Lets presses given early go, one for each message now waiting at the gate.
    fn spend_queued(&mut self) {
        let mut spent = false;
        while self.queued > 0 && !self.holding() && self.gate.as_ref().is_some_and(|g| g.open_one()) {
            self.queued -= 1;
            spent = true;
        }
        if spent {
            self.waiting = self.gate.as_ref().and_then(|g| g.waiting());
        }
    }

    /// Starts the next arrow if none is flying and a received step is not shown yet. Steps the
    /// ladder hides are revealed at once, without an arrow.
    fn launch_next(&mut self, now: Instant) {
        while self.flight.is_none() && self.revealed < self.session.len() {
            let index = self.revealed;
            // Going by itself to a step (`R`): no arrows on the way.
            if self.replay_to.is_some() {
                self.revealed += 1;
                continue;
            }
            // Follow the newest step if the presenter was looking at the newest.
            let following = self.next_visible(self.cursor + 1, index).is_none() || !self.visible(self.cursor);
            if !self.visible(index) {
                self.revealed += 1;
                continue;
            }
            self.flight = Some(Flight { index, start: now, duration: FLIGHT.div_f32(self.speed()) });
            if following {
                self.point_at(index);
            }
        }
    }

    /// Advances the arrow in flight and, in play mode, opens the gate when it is time; true
    /// while something still moves or the screen changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        let mut changed = false;
        if let Some(f) = self.flight
            && f.progress(now) >= 1.0
        {
            self.flight = None;
            self.revealed = self.revealed.max(f.index + 1);
            self.launch_next(now);
            changed = true;
        }
        if self.playing {
            if now.duration_since(self.last_play) >= PLAY_PAUSE.div_f32(self.speed()) && self.open_gate() {
                self.last_play = now;
            }
            // Nothing more will come: stop playing, so an idle screen uses no CPU.
            if self.state != RunState::Running && self.flight.is_none() && self.revealed == self.session.len() {
                self.playing = false;
                changed = true;
            }
        }
        changed || self.flight.is_some()
    }

    /// Everything received so far lands at once, the cursor on the newest step: a press at
    /// the newest step catches up with the exchange before it sends.
    fn catch_up(&mut self) {
        if self.flight.is_none() && self.revealed == self.session.len() {
            return;
        }
        self.flight = None;
        self.revealed = self.session.len();
        if let Some(newest) = self.prev_visible(self.revealed) {
            self.point_at(newest);
        }
    }

    /// Whether the cursor is on the newest step shown (so → sends rather than walks history).
    fn at_newest(&self) -> bool {
        !self.visible(self.cursor) || self.next_visible(self.cursor + 1, self.shown()).is_none()
    }

    /// → : history first; at the newest step, the arrows in flight land (with any step that
    /// still waited for its arrow) and the press sends the message waiting at the gate. When
    /// nothing waits yet (the peer is still working), the press is kept and spent as soon as
    /// something does. Returns a short note for the status bar when nothing could happen.
    pub fn step_forward(&mut self) -> Option<String> {
        if !self.at_newest() {
            if let Some(next) = self.next_visible(self.cursor + 1, self.shown()) {
                self.point_at(next);
            }
            return None;
        }
        self.catch_up();
        if self.state != RunState::Running {
            return Some(tr(self.lang, "the exchange is over: r runs it again").into());
        }
        if self.holding() {
            return Some(tr(self.lang, "answer the question first (Esc skips it)").into());
        }
        if self.gate.as_ref().is_some_and(|g| g.open_one()) {
            self.waiting = self.gate.as_ref().and_then(|g| g.waiting());
            return None;
        }
        if self.queued >= MAX_QUEUED {
            return Some(trf(self.lang, "{n} presses are already waiting for the peer", &[("n", &MAX_QUEUED)]));
        }
        self.queued += 1;
        None
    }

    /// Lets the waiting frame go with a fault on the cable (the lab network only).
    pub fn release(&mut self, release: Release) -> Option<&'static str> {
        if self.wire != Wire::Sim {
            return Some(tr(self.lang, "faults happen on the lab network: this lab runs on kernel sockets"));
        }
        if !self.at_newest() {
            return Some(tr(self.lang, "go to the newest step first (End)"));
        }
        if self.holding() {
            return Some(tr(self.lang, "answer the question first (Esc skips it)"));
        }
        self.catch_up();
        match &self.gate {
            Some(g) if g.release_one(release) => None,
            _ => Some(tr(self.lang, "no frame is waiting at the gate")),
        }
    }

    /// Steps visible in the ladder, counting the one in flight.
    pub fn shown(&self) -> usize {
        self.flight.map_or(self.revealed, |f| f.index + 1)
    }

    pub fn move_cursor(&mut self, action: Action, page: usize) {
        let shown = self.shown();
        if shown == 0 {
            return;
        }
        let cursor = self.cursor.min(shown - 1);
        let back = |n: usize| (0..cursor).rev().filter(|&i| self.visible(i)).take(n).last();
        let ahead = |n: usize| self.rows_from(cursor + 1).take(n).last();
        let to = match action {
            Action::StepBack => back(1),
            Action::First => self.next_visible(0, shown),
            Action::Last => self.prev_visible(shown),
            Action::PageUp => back(page.max(1)),
            Action::PageDown => ahead(page.max(1)),
            _ => None,
        };
        if let Some(to) = to {
            self.point_at(to);
        }
    }

    pub fn select(&mut self, index: usize) {
        if index < self.shown() {
            self.point_at(index);
        }
    }

    pub fn move_field(&mut self, down: bool) {
        let n = self.selected().map_or(0, |s| s.fields.len());
        if n == 0 {
            return;
        }
        self.field = if down { (self.field + 1).min(n - 1) } else { self.field.saturating_sub(1) };
    }

    /// Whether the ladder draws a line under its newest step (the gate's prompt, or the end).
    pub fn has_last_line(&self) -> bool {
        self.flight.is_none() && (self.waiting.is_some() || self.state != RunState::Running)
    }

    /// Keeps the cursor inside a ladder window of `rows` rows (of visible steps); at the newest
    /// step, the line under it (the gate's prompt) stays in view too.
    pub fn scroll_to_cursor(&mut self, rows: usize) {
        let at_end = self.next_visible(self.cursor + 1, self.shown()).is_none();
        let room = rows.saturating_sub(usize::from(self.has_last_line())).max(1);
        let rows = if at_end { room } else { rows.max(1) };
        // A window with room below its last step (the screen grew) moves up to fill it.
        if let Some(top) = (0..self.shown()).rev().filter(|&i| self.visible(i)).take(room).last() {
            self.scroll = self.scroll.min(top);
        }
        if self.cursor < self.scroll {
            self.scroll = self.cursor;
            return;
        }
        let above = (self.scroll..=self.cursor).filter(|&i| self.visible(i)).take(rows + 1).count();
        if above > rows {
            // Put the cursor on the last row.
            let top = (0..=self.cursor).rev().filter(|&i| self.visible(i)).take(rows).last();
            self.scroll = top.unwrap_or(self.cursor);
        }
    }

    /// Lets the waiting message go (play mode).
    pub fn open_gate(&mut self) -> bool {
        self.flight.is_none()
            && self.revealed == self.session.len()
            && !self.holding()
            && self.gate.as_ref().is_some_and(|g| g.open_one())
    }
}

/// Runs one exchange and forwards its steps, gate waits, server address and end to the UI.
async fn forward(
    lab: Arc<dyn Lab>,
    mut opts: run::RunOptions,
    tab: usize,
    run_no: u32,
    mut gate_rx: mpsc::UnboundedReceiver<GateEvent>,
    events: mpsc::Sender<LabEvent>,
) {
    // The UI's channel is bounded too: while the screen is behind, steps wait in the run's
    // queue (which drops the newest past its bound) instead of piling up in between.
    let send = async |kind| {
        let _ = events.send(LabEvent { tab, run: run_no, kind }).await;
    };
    // Bounded: a lab that floods the screen has its newest steps dropped, never the UI's memory.
    let (sink, queue) = StepSink::queued(lab.info().name, crate::session::Bounds::default());
    let (run_tx, mut run_rx) = mpsc::unbounded_channel();
    opts.events = Some(run_tx);
    let exchange = run::exchange(lab.clone(), opts, sink);
    tokio::pin!(exchange);
    let result = loop {
        tokio::select! {
            biased;
            Some(run::RunEvent::Listening(addr)) = run_rx.recv() => send(LabEventKind::Listening(addr)).await,
            Some(step) = queue.next() => send(LabEventKind::Step(Box::new(step))).await,
            Some(GateEvent::Waiting { from }) = gate_rx.recv() => send(LabEventKind::Waiting(from)).await,
            result = &mut exchange => break result,
        }
    };
    // The last steps (the FINs) may still be in the queue.
    while let crate::session::Polled::Step(step) = queue.next_blocking(Duration::ZERO) {
        send(LabEventKind::Step(step)).await;
    }
    let reason = result.map_err(|e| e.chain().map(|c| c.to_string()).collect());
    send(LabEventKind::Done(reason)).await;
}

/// The whole TUI's state.
pub struct App {
    pub tabs: Vec<LabTab>,
    pub active: usize,
    pub help: bool,
    /// The first help line shown (help scrolls on small screens).
    pub help_scroll: usize,
    /// Details and narration take the whole screen.
    pub zoom: bool,
    /// A short note for the status bar ("waiting for the peer…").
    pub note: Option<String>,
    /// The language everything on screen is in (see [`App::set_lang`]).
    pub lang: Lang,
    /// What is being typed in the status bar, while it is: a text to find (`/`) or a step's
    /// number (`:`).
    pub prompt: Option<(Ask, String)>,
    /// Presenter mode: the ladder takes the screen, the narration is a subtitle band.
    pub present: bool,
    /// The screen is blanked (presenter mode's `b`), the labs going on behind it.
    pub blank: bool,
    /// The last text searched for, for `n` and `N`.
    pub found: Option<String>,
    pub quit: bool,
    /// Runs every lab on this wire instead of its own (where the lab can).
    pub wire: Option<Wire>,
    /// When the first Ctrl-C came: a second one before [`CTRL_C_WINDOW`] is over quits.
    pub interrupted: Option<Instant>,
    /// The colours the screen is drawn in (`NO_COLOR` makes it [`Theme::NoColor`]).
    pub theme: super::theme::Theme,
    /// Why host-wire tabs show no kernel segments, when packet capture is unavailable.
    pub capture_off: Option<String>,
}

impl App {
    pub fn new(labs: Vec<Arc<dyn Lab>>, wire: Option<Wire>) -> Self {
        App {
            tabs: labs.into_iter().map(LabTab::new).collect(),
            active: 0,
            help: false,
            help_scroll: 0,
            zoom: false,
            note: None,
            lang: Lang::En,
            prompt: None,
            present: false,
            blank: false,
            found: None,
            quit: false,
            wire,
            interrupted: None,
            theme: super::theme::Theme::Dark,
            capture_off: None,
        }
    }

    /// Every tab plays at `speed` (one of [`SPEEDS`]; another is left alone).
    pub fn set_speed(&mut self, speed: f32) {
        if let Some(i) = SPEEDS.iter().position(|&s| s == speed) {
            for tab in &mut self.tabs {
                tab.speed = i;
            }
        }
    }

    /// Speaks `lang` from now on: on screen and in every tab's narration.
    pub fn set_lang(&mut self, lang: Lang) {
        self.lang = lang;
        for tab in &mut self.tabs {
            tab.lang = lang;
            tab.narration = Narration::for_lab(lang, tab.lab.as_ref());
        }
    }

    pub fn tab(&self) -> &LabTab {
        &self.tabs[self.active]
    }

    pub fn tab_mut(&mut self) -> &mut LabTab {
        &mut self.tabs[self.active]
    }

    /// Whether `tab` runs on the lab network although every lab was asked to run on kernel
    /// sockets (a lab that cannot run there, such as DHCP).
    pub fn moved_to_lab_network(&self, tab: &LabTab) -> bool {
        self.wire.is_some_and(|w| !tab.lab.info().runs_on(w))
    }

    /// Starts every lab; each waits at its gate for the first press.
    pub fn start_all(&mut self, events: &mpsc::Sender<LabEvent>) {
        for (i, tab) in self.tabs.iter_mut().enumerate() {
            let wire = tab.lab.info().wire_for(self.wire);
            tab.start(i, wire, events.clone());
        }
    }

    pub fn on_lab_event(&mut self, event: LabEvent, now: Instant) {
        if let Some(tab) = self.tabs.get_mut(event.tab)
            && tab.run == event.run
        {
            tab.on_event(event.kind, now);
        }
    }

    /// Performs an action. `page` is the ladder's height in rows.
    pub fn act(&mut self, action: Action, page: usize, events: &mpsc::Sender<LabEvent>, now: Instant) {
        self.note = None;
        if action != Action::Interrupt {
            self.interrupted = None;
        }
        if self.help {
            match action {
                Action::FieldUp | Action::ScrollUp | Action::StepBack => {
                    self.help_scroll = self.help_scroll.saturating_sub(1)
                }
                Action::FieldDown | Action::ScrollDown => self.help_scroll += 1,
                Action::PageUp => self.help_scroll = self.help_scroll.saturating_sub(page.max(1)),
                Action::PageDown => self.help_scroll += page.max(1),
                Action::First => self.help_scroll = 0,
                Action::Quit => self.quit = true,
                Action::Interrupt => self.interrupt(now),
                // Any other key closes help, and does nothing else.
                _ => self.help = false,
            }
            return;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Interrupt => self.interrupt(now),
            Action::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            Action::Back => {
                if self.zoom {
                    self.zoom = false;
                } else if self.tab().conns.only.is_some() {
                    self.tab_mut().follow();
                } else if self.tab().layers != Layers::Both {
                    self.tab_mut().set_layers(Layers::Both);
                } else {
                    self.note = Some(tr(self.lang, "nothing to go back from: q quits").into());
                }
            }
            Action::Zoom => self.zoom = !self.zoom,
            Action::StepForward => self.note = self.tab_mut().step_forward(),
            Action::StepBack | Action::First | Action::Last | Action::PageUp | Action::PageDown => {
                self.tab_mut().move_cursor(action, page)
            }
            Action::DropFrame => self.note = self.tab_mut().release(Release::Drop).map(Into::into),
            Action::DuplicateFrame => self.note = self.tab_mut().release(Release::Duplicate).map(Into::into),
            Action::CorruptFrame => self.note = self.tab_mut().release(Release::Corrupt).map(Into::into),
            Action::ToggleLayers => self.note = self.tab_mut().toggle_layers(),
            Action::Follow => self.note = self.tab_mut().follow(),
            Action::LeaseSlower | Action::LeaseFaster => self.note = Some(self.lease_clock(action)),
            Action::ToggleProbes => self.note = Some(self.toggle_probes()),
            Action::FieldUp => self.tab_mut().move_field(false),
            Action::FieldDown => self.tab_mut().move_field(true),
            // With a lesson playing, J and K scroll its card.
            Action::ScrollUp => match &mut self.tabs[self.active] {
                LabTab { lesson: Some(lesson), .. } => lesson.scroll = lesson.scroll.saturating_sub(1),
                tab => tab.narration_scroll = tab.narration_scroll.saturating_sub(1),
            },
            Action::ScrollDown => match &mut self.tabs[self.active] {
                LabTab { lesson: Some(lesson), .. } => lesson.scroll += 1,
                tab => tab.narration_scroll += 1,
            },
            Action::TogglePlay => {
                let tab = self.tab_mut();
                tab.playing = !tab.playing;
                tab.last_play = now - PLAY_PAUSE;
            }
            Action::Faster => {
                let tab = self.tab_mut();
                tab.speed = (tab.speed + 1).min(SPEEDS.len() - 1);
            }
            Action::Slower => {
                let tab = self.tab_mut();
                tab.speed = tab.speed.saturating_sub(1);
            }
            Action::Rerun => {
                let i = self.active;
                let wire = self.tabs[i].wire;
                self.tabs[i].start(i, wire, events.clone());
            }
            Action::RerunTo => {
                let i = self.active;
                let tab = &mut self.tabs[i];
                if tab.lesson.is_some() {
                    self.note = Some(tr(self.lang, "R runs the lab alone: L closes the lesson first").into());
                } else if tab.session.is_empty() {
                    self.note = Some(tr(self.lang, "no step yet to run again to: → sends the first").into());
                } else {
                    let want = tab.cursor + 1;
                    let wire = tab.wire;
                    tab.start(i, wire, events.clone());
                    tab.replay_to = Some(want);
                    self.note = Some(trf(self.lang, "running again up to step {n}…", &[("n", &want)]));
                }
            }
            Action::Point => {
                let tab = self.tab_mut();
                let seq = tab.selected().map(|s| s.seq);
                tab.pointer = if tab.pointer == seq { None } else { seq };
            }
            Action::NextTab => self.active = (self.active + 1) % self.tabs.len(),
            Action::PrevTab => self.active = (self.active + self.tabs.len() - 1) % self.tabs.len(),
            Action::GoTo(i) if i < self.tabs.len() => self.active = i,
            Action::GoTo(i) => self.note = Some(trf(self.lang, "there is no lab {n}", &[("n", &(i + 1))])),
            Action::Search => self.prompt = Some((Ask::Find, String::new())),
            Action::GoToStep => self.prompt = Some((Ask::Step, String::new())),
            Action::Present => self.present = !self.present,
            Action::Blank => self.blank = !self.blank,
            Action::SearchNext | Action::SearchPrev => self.find(action == Action::SearchNext),
            Action::Lesson => self.toggle_lesson(events),
        }
        let rows = page;
        self.tab_mut().scroll_to_cursor(rows);
    }

    /// A key while the status bar asks for something: text, Backspace, Enter to do it, Esc to
    /// give up.
    pub fn prompt_key(&mut self, code: crossterm::event::KeyCode) {
        use crossterm::event::KeyCode;
        let Some((ask, text)) = self.prompt.as_mut() else { return };
        match code {
            KeyCode::Char(c) if *ask == Ask::Find || c.is_ascii_digit() => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let Some((ask, text)) = self.prompt.take() else { return };
                match ask {
                    Ask::Find => {
                        if !text.is_empty() {
                            self.found = Some(text);
                        }
                        self.find(true);
                    }
                    Ask::Step => self.go_to_step(&text),
                }
            }
            KeyCode::Esc => self.prompt = None,
            _ => {}
        }
    }

    /// `L`: the lesson of this tab's lab starts (the lab runs again, from its first step, with
    /// the lesson's questions), or, playing, closes.
    fn toggle_lesson(&mut self, events: &mpsc::Sender<LabEvent>) {
        if self.tab_mut().lesson.take().is_some() {
            self.note = Some(tr(self.lang, "lesson closed: the lab goes on without it").into());
            return;
        }
        let name = self.tab().lab.info().name;
        // The lesson of the story this tab tells: in the clear, or with TLS (`--starttls`).
        let story = crate::tls::story().0;
        let lessons = crate::lesson::all();
        match lessons.into_iter().find(|l| l.lab.as_deref() == Some(name) && l.tls_mode() == story) {
            Some(lesson) => self.start_lesson(self.active, lesson, events),
            None => self.note = Some(tr(self.lang, "this lab has no lesson yet: protolab lesson lists them").into()),
        }
    }

    /// Plays `lesson` in tab `i`: its lab runs again from the first step, on the lesson's wire.
    pub fn start_lesson(&mut self, i: usize, lesson: crate::lesson::Lesson, events: &mpsc::Sender<LabEvent>) {
        let tab = &mut self.tabs[i];
        let wire = tab.lab.info().wire_for(lesson.wire.or(self.wire));
        tab.lesson = Some(super::lesson::TabLesson::new(lesson, self.lang, rand::random()));
        tab.narration_scroll = 0;
        tab.start(i, wire, events.clone());
    }

    /// A key while the active tab's lesson asks a question: typed text, Backspace, Enter to
    /// answer (for a field question: the field selected in the details), Esc to skip. False
    /// when the key is not the answer's (arrows, Tab, ...): it does what it always does.
    pub fn lesson_key(&mut self, key: crossterm::event::KeyEvent) -> bool {
        use crossterm::event::{KeyCode, KeyModifiers};
        let lang = self.lang;
        let tab = &mut self.tabs[self.active];
        let field_path = tab.selected().and_then(|s| s.fields.get(tab.field)).map(|f| f.path.clone());
        let Some(lesson) = tab.lesson.as_mut() else { return false };
        let Some(kind) = lesson.open().map(|a| a.kind) else { return false };
        let by_field = kind == crate::lesson::Kind::Field;
        // What each kind of answer is typed with; other keys keep their use (J and K scroll).
        let takes = |c: char| match kind {
            crate::lesson::Kind::Choice => c.is_ascii_lowercase(),
            crate::lesson::Kind::Number => c.is_ascii_digit(),
            crate::lesson::Kind::Ports => c.is_ascii_digit() || matches!(c, ' ' | ',' | '/'),
            crate::lesson::Kind::Free => true,
            _ => false,
        };
        lesson.error = None;
        match key.code {
            KeyCode::Char(c) if takes(c) && !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if kind == crate::lesson::Kind::Choice {
                    // One letter is the whole answer: another replaces it.
                    lesson.typed.clear();
                }
                lesson.typed.push(c)
            }
            KeyCode::Backspace if !by_field => {
                lesson.typed.pop();
            }
            KeyCode::Enter => {
                let answer = if by_field { field_path.unwrap_or_default() } else { lesson.typed.clone() };
                if lesson.answer(&answer).is_ok() && lesson.open().is_none() {
                    self.note = Some(tr(lang, "answered: → shows what really happens").into());
                }
            }
            KeyCode::Esc => lesson.skip(),
            _ => return false,
        }
        true
    }

    /// Selects step number `text` of the tab's session (as the status bar counts them).
    fn go_to_step(&mut self, text: &str) {
        let lang = self.lang;
        let tab = self.tab_mut();
        let rows: Vec<usize> = tab.rows_from(0).collect();
        self.note = match text.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| rows.get(i)) {
            Some(&index) => {
                tab.select(index);
                None
            }
            None => Some(trf(lang, "there is no step {n}: 1 to {of}", &[("n", &text), ("of", &rows.len())])),
        };
    }

    /// Selects the next (or previous) visible step whose summary or kind holds the last text
    /// searched for, case aside, going round the ends; says so when none does.
    fn find(&mut self, forward: bool) {
        let Some(text) = self.found.clone() else {
            self.note = Some(tr(self.lang, "/ to search first").into());
            return;
        };
        let lang = self.lang;
        let tab = self.tab_mut();
        let needle = text.to_lowercase();
        let matches = |s: &Step| s.summary.to_lowercase().contains(&needle) || s.kind.contains(&needle);
        let shown = tab.shown();
        let order: Vec<usize> = if forward {
            (tab.cursor + 1..shown).chain(0..=tab.cursor.min(shown.saturating_sub(1))).collect()
        } else {
            (0..tab.cursor).rev().chain((tab.cursor..shown).rev()).collect()
        };
        let hit = order.into_iter().find(|&i| tab.visible(i) && tab.session.get(i).is_some_and(matches));
        self.note = match hit {
            Some(i) => {
                tab.select(i);
                None
            }
            None => Some(trf(lang, "no step matches “{text}”", &[("text", &text)])),
        };
    }

    /// Ctrl-C: the first one asks for a second; the second within the window quits.
    fn interrupt(&mut self, now: Instant) {
        match self.interrupted {
            Some(first) if now.duration_since(first) < CTRL_C_WINDOW => self.quit = true,
            _ => {
                self.interrupted = Some(now);
                self.note = Some(tr(self.lang, "press Ctrl-C again to quit").into());
            }
        }
    }

    /// `[` and `]`: the next slower or faster lease clock of the table, for the DHCP lab's next
    /// run. A value outside the table (from `--lease-speedup`) moves to its nearest neighbour
    /// in the asked direction, never the other way.
    /// traceroute's probes: UDP datagrams, or ICMP echo requests (traceroute -I), from the next run.
    fn toggle_probes(&mut self) -> String {
        use crate::labs::traceroute::{icmp, set_icmp};
        if self.tab().lab.info().name != "traceroute" {
            return tr(self.lang, "i sets traceroute's probes: on the traceroute tab").into();
        }
        set_icmp(!icmp());
        let said = if icmp() {
            tr(self.lang, "probes: ICMP echo requests (traceroute -I) from the next run (r)")
        } else {
            tr(self.lang, "probes: UDP datagrams (traceroute's default) from the next run (r)")
        };
        said.into()
    }

    fn lease_clock(&mut self, action: Action) -> String {
        use crate::labs::dhcp::{SPEEDUPS, set_speedup, speedup};
        if self.tab().lab.info().name != "dhcp" {
            return tr(self.lang, "[ ] set the DHCP lease clock: on the DHCP tab").into();
        }
        let now = speedup();
        let to = if action == Action::LeaseFaster {
            SPEEDUPS.iter().copied().filter(|&s| s > now).min()
        } else {
            SPEEDUPS.iter().copied().filter(|&s| s < now).max()
        };
        match to {
            Some(to) => {
                set_speedup(to);
                trf(self.lang, "lease clock ×{n} from the next run (r)", &[("n", &to)])
            }
            None if action == Action::LeaseFaster => {
                trf(self.lang, "lease clock ×{n}: the fastest there is", &[("n", &now)])
            }
            None => trf(self.lang, "lease clock ×{n}: the slowest there is", &[("n", &now)]),
        }
    }

    /// Moves arrows, plays the tabs that play, and lets an unanswered Ctrl-C lapse; true when
    /// the screen changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        let mut busy = false;
        for tab in &mut self.tabs {
            busy |= tab.tick(now);
        }
        if let Some(first) = self.interrupted
            && now.duration_since(first) >= CTRL_C_WINDOW
        {
            self.interrupted = None;
            if self.note.as_deref() == Some(tr(self.lang, "press Ctrl-C again to quit")) {
                self.note = None;
            }
            busy = true;
        }
        busy
    }

    /// How long until the next tick is useful; `None` when idle (no CPU used).
    pub fn next_tick(&self, now: Instant) -> Option<Duration> {
        if self.tabs.iter().any(|t| t.flight.is_some()) {
            Some(Duration::from_millis(33))
        } else if self.tabs.iter().any(|t| t.playing) {
            Some(Duration::from_millis(100))
        } else {
            self.interrupted.map(|first| (first + CTRL_C_WINDOW).saturating_duration_since(now))
        }
    }

    pub fn shutdown(&mut self) {
        for tab in &mut self.tabs {
            tab.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `i` sets traceroute's probes on its tab, from the next run, and says so; elsewhere it says
    /// where it works. (No other test of the library runs traceroute.)
    #[test]
    fn i_switches_traceroute_between_udp_and_icmp_probes() {
        let mut app = App::new(crate::labs::registry(), None);
        let events = mpsc::channel(4).0;
        let now = Instant::now();
        app.act(Action::ToggleProbes, 10, &events, now);
        assert!(app.note.as_deref().unwrap_or_default().contains("on the traceroute tab"));
        assert!(!crate::labs::traceroute::icmp());
        app.active = app.tabs.iter().position(|t| t.lab.info().name == "traceroute").unwrap();
        app.act(Action::ToggleProbes, 10, &events, now);
        assert!(crate::labs::traceroute::icmp());
        assert!(app.note.as_deref().unwrap_or_default().starts_with("probes: ICMP echo requests"));
        app.act(Action::ToggleProbes, 10, &events, now);
        assert!(!crate::labs::traceroute::icmp());
        assert!(app.note.as_deref().unwrap_or_default().starts_with("probes: UDP datagrams"));
    }
}
