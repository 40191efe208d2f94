//! The TUI's state: one tab per lab, each with its own run, session and cursor. Events come in
//! (keys, mouse, steps from the labs), the state changes, and `ui::draw` shows it.

use super::keys::Action;
use crate::labs::{Lab, run};
use crate::narration::Narration;
use crate::net::{Gate, GateEvent, Release, Wire};
use crate::session::{Session, Step, StepSink};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Play and animation speeds, as multipliers.
pub const SPEEDS: [f32; 6] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
/// How long an arrow takes to cross the ladder at speed ×1.
const FLIGHT: Duration = Duration::from_millis(700);
/// The pause between two messages when playing at ×1.
const PLAY_PAUSE: Duration = Duration::from_millis(1200);

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
    /// The exchange ended: completed, or failed with a one-line reason.
    Done(Result<(), String>),
}

/// Where a lab run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Running,
    Completed,
    Failed(String),
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
    pub fn label(self) -> Option<&'static str> {
        match self {
            Layers::Both => None,
            Layers::Messages => Some("messages only"),
            Layers::Segments => Some("segments only"),
        }
    }
}

/// One lab's tab.
pub struct LabTab {
    pub lab: Arc<dyn Lab>,
    pub narration: Narration,
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
    /// The DHCP lease clock's speed-up in the current run.
    pub lease_speedup: u32,
    gate: Option<Arc<Gate>>,
    task: Option<JoinHandle<()>>,
}

impl LabTab {
    pub fn new(lab: Arc<dyn Lab>) -> Self {
        let narration = Narration::for_lab(lab.narration());
        LabTab {
            lab,
            narration,
            session: Session::default(),
            revealed: 0,
            cursor: 0,
            field: 0,
            scroll: 0,
            flight: None,
            state: RunState::Running,
            waiting: None,
            run: 0,
            wire: Wire::Host,
            layers: Layers::Both,
            lease_speedup: crate::labs::dhcp::DEFAULT_SPEEDUP,
            gate: None,
            task: None,
        }
    }

    /// Selects `index` and, in it, the first field of the step's own protocol (a TCP segment's
    /// `TCP.src_port`, not its Ethernet header).
    fn point_at(&mut self, index: usize) {
        self.cursor = index;
        self.field = self.session.get(index).map_or(0, |s| {
            let own = format!("{}.", s.proto);
            s.fields.iter().position(|f| f.path.starts_with(&own)).unwrap_or(0)
        });
    }

    /// The selected step, if any is shown.
    pub fn selected(&self) -> Option<&Step> {
        let step = self.session.get(self.cursor).filter(|s| self.layers.shows(s))?;
        (self.cursor < self.shown()).then_some(step)
    }

    fn visible(&self, index: usize) -> bool {
        self.session.get(index).is_some_and(|s| self.layers.shows(s))
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

    /// Shows the next layer choice; the cursor moves to the nearest visible step.
    pub fn toggle_layers(&mut self) {
        self.layers = self.layers.next();
        if !self.visible(self.cursor) {
            let shown = self.shown();
            if let Some(i) = self.prev_visible(self.cursor).or_else(|| self.next_visible(self.cursor, shown)) {
                self.point_at(i);
            }
        }
        self.scroll = self.scroll.min(self.cursor);
    }

    /// Starts a fresh run: the old one is cancelled, its sockets closed.
    pub fn start(&mut self, tab: usize, wire: Wire, events: mpsc::UnboundedSender<LabEvent>) {
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
        self.flight = None;
        self.waiting = None;
        self.state = RunState::Running;
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
    pub fn on_event(&mut self, kind: LabEventKind, speed: f32, now: Instant) {
        match kind {
            LabEventKind::Step(step) => {
                let dropped = self.session.push(*step);
                if dropped > 0 {
                    // Positions count from the oldest step kept: shift them with it.
                    self.revealed = self.revealed.saturating_sub(dropped);
                    self.cursor = self.cursor.saturating_sub(dropped);
                    self.scroll = self.scroll.saturating_sub(dropped);
                    self.flight =
                        self.flight.and_then(|f| f.index.checked_sub(dropped).map(|index| Flight { index, ..f }));
                }
                self.waiting = self.gate.as_ref().and_then(|g| g.waiting());
                self.launch_next(speed, now);
            }
            LabEventKind::Waiting(from) => self.waiting = Some(from),
            LabEventKind::Done(result) => {
                self.waiting = None;
                self.state = match result {
                    Ok(()) => RunState::Completed,
                    Err(reason) => RunState::Failed(reason),
                };
            }
        }
    }

    /// Starts the next arrow if none is flying and a received step is not shown yet. Steps the
    /// ladder hides are revealed at once, without an arrow.
    fn launch_next(&mut self, speed: f32, now: Instant) {
        while self.flight.is_none() && self.revealed < self.session.len() {
            let index = self.revealed;
            // Follow the newest step if the presenter was looking at the newest.
            let following = self.next_visible(self.cursor + 1, index).is_none() || !self.visible(self.cursor);
            if !self.visible(index) {
                self.revealed += 1;
                continue;
            }
            self.flight = Some(Flight { index, start: now, duration: FLIGHT.div_f32(speed) });
            if following {
                self.point_at(index);
            }
        }
    }

    /// Advances the arrow in flight; true while something still moves.
    pub fn tick(&mut self, speed: f32, now: Instant) -> bool {
        if let Some(f) = self.flight
            && f.progress(now) >= 1.0
        {
            self.flight = None;
            self.revealed = self.revealed.max(f.index + 1);
            self.launch_next(speed, now);
        }
        self.flight.is_some()
    }

    /// Lands the arrow in flight at once.
    fn land(&mut self) {
        if let Some(f) = self.flight.take() {
            self.revealed = self.revealed.max(f.index + 1);
        }
    }

    /// → : history first, then the arrow in flight, then the message at the gate.
    /// Returns a short note for the status bar when nothing could happen.
    pub fn step_forward(&mut self, speed: f32, now: Instant) -> Option<&'static str> {
        let shown = self.shown();
        if let Some(next) = self.next_visible(self.cursor + 1, shown).filter(|_| self.visible(self.cursor)) {
            self.point_at(next);
            return None;
        }
        if self.flight.is_some() {
            self.land();
            self.launch_next(speed, now);
            return None;
        }
        if self.revealed < self.session.len() {
            self.launch_next(speed, now);
            return None;
        }
        if self.gate.as_ref().is_some_and(|g| g.open_one()) {
            return None;
        }
        match self.state {
            RunState::Running => Some("waiting for the peer…"),
            _ => Some("the exchange is over: r runs it again"),
        }
    }

    /// Lets the waiting frame go with a fault on the cable (the lab network only).
    pub fn release(&mut self, release: Release) -> Option<&'static str> {
        if self.wire != Wire::Sim {
            return Some("faults happen on the lab network: this lab runs on kernel sockets");
        }
        if self.flight.is_some()
            || self.revealed < self.session.len()
            || self.next_visible(self.cursor + 1, self.shown()).is_some()
        {
            return Some("go to the newest step first (End)");
        }
        match &self.gate {
            Some(g) if g.release_one(release) => None,
            _ => Some("no frame is waiting at the gate"),
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

    /// Keeps the cursor inside a ladder window of `rows` rows (of visible steps).
    pub fn scroll_to_cursor(&mut self, rows: usize) {
        let rows = rows.max(1);
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
        self.flight.is_none() && self.revealed == self.session.len() && self.gate.as_ref().is_some_and(|g| g.open_one())
    }
}

/// Runs one exchange and forwards its steps, gate waits and end to the UI.
async fn forward(
    lab: Arc<dyn Lab>,
    opts: run::RunOptions,
    tab: usize,
    run_no: u32,
    mut gate_rx: mpsc::UnboundedReceiver<GateEvent>,
    events: mpsc::UnboundedSender<LabEvent>,
) {
    let send = |kind| {
        let _ = events.send(LabEvent { tab, run: run_no, kind });
    };
    let (step_tx, mut step_rx) = mpsc::unbounded_channel();
    let exchange = run::exchange(lab.clone(), opts, StepSink::new(lab.info().name, step_tx));
    tokio::pin!(exchange);
    let result = loop {
        tokio::select! {
            biased;
            Some(step) = step_rx.recv() => send(LabEventKind::Step(Box::new(step))),
            Some(GateEvent::Waiting { from }) = gate_rx.recv() => send(LabEventKind::Waiting(from)),
            result = &mut exchange => break result,
        }
    };
    // The last steps (the FINs) may still be in the channel.
    while let Ok(step) = step_rx.try_recv() {
        send(LabEventKind::Step(Box::new(step)));
    }
    let reason = result.map_err(|e| e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": "));
    send(LabEventKind::Done(reason));
}

/// The whole TUI's state.
pub struct App {
    pub tabs: Vec<LabTab>,
    pub active: usize,
    pub help: bool,
    /// Index into [`SPEEDS`].
    pub speed: usize,
    pub playing: bool,
    /// When play mode last let a message go.
    pub last_play: Instant,
    /// A short note for the status bar ("waiting for the peer…").
    pub note: Option<String>,
    pub quit: bool,
    /// Runs every lab on this wire instead of its own.
    pub wire: Option<Wire>,
}

impl App {
    pub fn new(labs: Vec<Arc<dyn Lab>>, wire: Option<Wire>) -> Self {
        App {
            tabs: labs.into_iter().map(LabTab::new).collect(),
            active: 0,
            help: false,
            speed: 2,
            playing: false,
            last_play: Instant::now(),
            note: None,
            quit: false,
            wire,
        }
    }

    pub fn speed(&self) -> f32 {
        SPEEDS[self.speed]
    }

    pub fn tab(&self) -> &LabTab {
        &self.tabs[self.active]
    }

    pub fn tab_mut(&mut self) -> &mut LabTab {
        &mut self.tabs[self.active]
    }

    /// Starts every lab; each waits at its gate for the first press.
    pub fn start_all(&mut self, events: &mpsc::UnboundedSender<LabEvent>) {
        for (i, tab) in self.tabs.iter_mut().enumerate() {
            let wire = tab.lab.info().wire_for(self.wire);
            tab.start(i, wire, events.clone());
        }
    }

    pub fn on_lab_event(&mut self, event: LabEvent, now: Instant) {
        let speed = self.speed();
        if let Some(tab) = self.tabs.get_mut(event.tab)
            && tab.run == event.run
        {
            tab.on_event(event.kind, speed, now);
        }
    }

    /// Performs an action. `page` is the ladder's height in rows.
    pub fn act(&mut self, action: Action, page: usize, events: &mpsc::UnboundedSender<LabEvent>, now: Instant) {
        self.note = None;
        if self.help && action != Action::Quit && action != Action::Help {
            self.help = false;
            return;
        }
        let speed = self.speed();
        match action {
            Action::Quit if self.help => self.help = false,
            Action::Quit => self.quit = true,
            Action::Help => self.help = !self.help,
            Action::StepForward => self.note = self.tab_mut().step_forward(speed, now).map(Into::into),
            Action::StepBack | Action::First | Action::Last | Action::PageUp | Action::PageDown => {
                self.tab_mut().move_cursor(action, page)
            }
            Action::DropFrame => self.note = self.tab_mut().release(Release::Drop).map(Into::into),
            Action::DuplicateFrame => self.note = self.tab_mut().release(Release::Duplicate).map(Into::into),
            Action::CorruptFrame => self.note = self.tab_mut().release(Release::Corrupt).map(Into::into),
            Action::ToggleLayers => self.tab_mut().toggle_layers(),
            Action::LeaseSlower | Action::LeaseFaster => {
                use crate::labs::dhcp::{SPEEDUPS, set_speedup, speedup};
                let at = SPEEDUPS.iter().position(|&s| s >= speedup()).unwrap_or(2);
                let to =
                    if action == Action::LeaseFaster { (at + 1).min(SPEEDUPS.len() - 1) } else { at.saturating_sub(1) };
                set_speedup(SPEEDUPS[to]);
                self.note = Some(format!("lease clock ×{} from the next run (r)", SPEEDUPS[to]));
            }
            Action::FieldUp => self.tab_mut().move_field(false),
            Action::FieldDown => self.tab_mut().move_field(true),
            Action::TogglePlay => {
                self.playing = !self.playing;
                self.last_play = now - PLAY_PAUSE;
            }
            Action::Faster => self.speed = (self.speed + 1).min(SPEEDS.len() - 1),
            Action::Slower => self.speed = self.speed.saturating_sub(1),
            Action::Rerun => {
                let i = self.active;
                let wire = self.tabs[i].lab.info().wire_for(self.wire);
                self.tabs[i].start(i, wire, events.clone());
            }
            Action::NextTab => self.active = (self.active + 1) % self.tabs.len(),
            Action::PrevTab => self.active = (self.active + self.tabs.len() - 1) % self.tabs.len(),
        }
        let rows = page;
        self.tab_mut().scroll_to_cursor(rows);
    }

    /// Moves arrows and, in play mode, opens the gate; true when the screen changed (an arrow
    /// moved or landed).
    pub fn tick(&mut self, now: Instant) -> bool {
        let speed = self.speed();
        let mut busy = false;
        for tab in &mut self.tabs {
            busy |= tab.flight.is_some();
            tab.tick(speed, now);
        }
        if self.playing {
            let tab = &mut self.tabs[self.active];
            if now.duration_since(self.last_play) >= PLAY_PAUSE.div_f32(speed) && tab.open_gate() {
                self.last_play = now;
            }
            // Nothing more will come: stop playing, so an idle screen uses no CPU.
            if tab.state != RunState::Running && tab.flight.is_none() && tab.revealed == tab.session.len() {
                self.playing = false;
                busy = true;
            }
        }
        busy
    }

    /// How long until the next tick is useful; `None` when idle (no CPU used).
    pub fn next_tick(&self) -> Option<Duration> {
        let flying = self.tabs.iter().any(|t| t.flight.is_some());
        if flying {
            Some(Duration::from_millis(33))
        } else if self.playing {
            Some(Duration::from_millis(100))
        } else {
            None
        }
    }

    pub fn shutdown(&mut self) {
        for tab in &mut self.tabs {
            tab.stop();
        }
    }
}
