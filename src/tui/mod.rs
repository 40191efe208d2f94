//! The terminal lab: one `select!` merges key and mouse events, the labs' steps and, only while
//! an arrow flies or play mode runs, an animation tick. An idle screen draws nothing.

pub mod app;
pub mod keys;
pub mod lesson;
mod signals;
pub mod text;
pub mod theme;
pub mod ui;
pub mod widgets;

use app::{App, LabEvent};
use color_eyre::Result;
use crossterm::cursor::Show;
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, MouseButton, MouseEventKind,
};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use futures_util::StreamExt;
use keys::Action;
use ratatui::backend::CrosstermBackend;
use ratatui::{DefaultTerminal, Terminal};
use signals::Signals;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

use crate::net::Wire;

/// Opens the TUI on `lab`'s tab (or the first), runs until quit, and restores the terminal on
/// every way out, panics included. A terminating signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT) stops
/// the labs, restores the terminal and then ends the process by that same signal.
/// `wire` overrides each lab's own wire.
pub async fn run(settings: crate::config::Settings) -> Result<()> {
    run_with(settings, None).await
}

/// Opens the TUI on `lesson`'s lab, the lesson playing in it.
pub async fn run_lesson(settings: crate::config::Settings, lesson: crate::lesson::Lesson) -> Result<()> {
    run_with(settings, Some(lesson)).await
}

async fn run_with(settings: crate::config::Settings, lesson: Option<crate::lesson::Lesson>) -> Result<()> {
    keys::set_overrides(settings.keys.clone());
    let labs = crate::labs::registry();
    let (wire, lang) = (settings.wire.0, settings.lang.0);
    let active = settings.lab.0.and_then(|name| labs.iter().position(|l| l.info().name == name)).unwrap_or(0);
    let mut app = App::new(labs, wire);
    app.active = active;
    app.set_lang(lang);
    app.present = settings.present.0;
    // Without colour (NO_COLOR), selection shows by reverse video and marker glyphs.
    app.theme = settings.theme.0;
    app.set_speed(settings.speed.0);
    // Host-wire tabs show the kernel's segments where the process may capture; if it may not,
    // the status says so until the first key, and help keeps saying how to enable it.
    let host_tabs = app.tabs.iter().any(|t| t.lab.info().wire_for(wire) == Wire::Host);
    if host_tabs && crate::net::capture::available().is_err() {
        app.capture_off = Some(crate::net::capture::HINT.into());
        app.note = Some(crate::locale::tr(lang, "packet capture is off: ? says how to turn it on").into());
    }

    // A panic on the TUI's own thread restores the terminal before the report; a panic in a
    // lab's task is that lab's failure, shown in its tab, and must not touch the screen.
    let tui_thread = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == tui_thread {
            restore();
        }
        previous(info);
    }));
    // Caught before the terminal changes: from here on, a signal waits for the event loop.
    let mut signals = Signals::catch()?;
    let mut terminal = match enter() {
        Ok(terminal) => terminal,
        Err(e) => {
            restore();
            return Err(e.into());
        }
    };
    let result = event_loop(&mut terminal, &mut app, &mut signals, lesson).await;
    app.shutdown();
    restore();
    match result? {
        End::Quit => Ok(()),
        End::Signal(n) => signals::die_of(n),
    }
}

/// Why the event loop ended.
enum End {
    Quit,
    /// A caught terminating signal, by number.
    Signal(i32),
}

/// Whether the terminal may be in the TUI's modes: set before the first change, cleared by the
/// first [`restore`].
static ENTERED: AtomicBool = AtomicBool::new(false);

/// Raw mode, the alternate screen and mouse reporting. Not `ratatui::init`: its panic hook would
/// restore the terminal on any thread's panic, a lab's included; here [`restore`] is the only
/// way back.
fn enter() -> std::io::Result<DefaultTerminal> {
    // First, so that a failure halfway still restores what was changed.
    ENTERED.store(true, Ordering::SeqCst);
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    Terminal::new(CrosstermBackend::new(std::io::stdout()))
}

/// Gives the terminal back as it was before [`enter`]: mouse reporting off (while raw mode still
/// keeps late reports from echoing), the main screen, the cursor shown, then the saved terminal
/// modes. Every way out calls it (quit, error, the TUI thread's panic, a signal); only the first
/// call after [`enter`] writes anything.
fn restore() {
    if !ENTERED.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
    let _ = crossterm::terminal::disable_raw_mode();
}

/// Lab events waiting for the UI, across all tabs: past it, the labs' own queues hold (and
/// bound) what the screen has not taken yet.
const LAB_EVENTS: usize = 1024;

async fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    signals: &mut Signals,
    lesson: Option<crate::lesson::Lesson>,
) -> Result<End> {
    let (tx, mut rx) = mpsc::channel::<LabEvent>(LAB_EVENTS);
    app.start_all(&tx);
    if let Some(lesson) = lesson {
        app.start_lesson(app.active, lesson, &tx);
    }
    let mut input = EventStream::new();
    let mut areas = ui::settle(app, terminal.size()?.into());
    let mut dirty = true;
    while !app.quit {
        let now = Instant::now();
        let busy = app.tick(now);
        if dirty || busy {
            areas = ui::settle(app, terminal.size()?.into());
            terminal.draw(|frame| ui::draw(frame, app, now))?;
            dirty = false;
        }
        let tick = app.next_tick(now);
        tokio::select! {
            // Between two draws: never in the middle of an escape sequence.
            n = signals.recv() => return Ok(End::Signal(n)),
            event = input.next() => match event {
                Some(Ok(event)) => dirty = on_terminal_event(app, event, &areas, &tx),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(event) = rx.recv() => {
                app.on_lab_event(event, Instant::now());
                // Take whatever else already arrived before drawing once.
                while let Ok(event) = rx.try_recv() {
                    app.on_lab_event(event, Instant::now());
                }
                dirty = true;
            }
            _ = tokio::time::sleep(tick.unwrap_or_default()), if tick.is_some() => {}
        }
    }
    Ok(End::Quit)
}

/// Applies a key, mouse or resize event; true when the screen must be redrawn.
fn on_terminal_event(app: &mut App, event: Event, areas: &ui::Areas, tx: &mpsc::Sender<LabEvent>) -> bool {
    let rows = areas.ladder_rows();
    let now = Instant::now();
    match event {
        // While the status bar asks for something, keys are the answer.
        Event::Key(key) if key.kind != KeyEventKind::Release && app.prompt.is_some() => app.prompt_key(key.code),
        // Blanked, any key brings the screen back.
        Event::Key(key) if key.kind != KeyEventKind::Release && app.blank => app.blank = false,
        // While a lesson asks a question, typing is the answer.
        Event::Key(key) if key.kind != KeyEventKind::Release && !app.help && app.lesson_key(key) => {}
        Event::Key(key) if key.kind != KeyEventKind::Release => match keys::action_for(key) {
            Some(action) => app.act(action, rows, tx, now),
            // An unbound key closes help, and otherwise does nothing.
            None if app.help => app.help = false,
            None => return false,
        },
        Event::Mouse(mouse) => {
            let (x, y) = (mouse.column, mouse.row);
            match mouse.kind {
                MouseEventKind::Down(MouseButton::Left) => {
                    if app.help {
                        app.help = false;
                    } else if y == areas.tabs.y {
                        if let Some(i) = ui::tab_at(app, areas, x) {
                            app.act(Action::GoTo(i), rows, tx, now);
                        }
                    } else if let Some(row) = areas.ladder_row_at(x, y) {
                        let tab = app.tab_mut();
                        let index = tab.rows_from(tab.scroll).nth(row);
                        if let Some(index) = index {
                            tab.select(index);
                        }
                    }
                }
                MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                    let down = mouse.kind == MouseEventKind::ScrollDown;
                    let action = if app.help || in_rect(areas.narration, x, y) {
                        if down { Action::ScrollDown } else { Action::ScrollUp }
                    } else if in_rect(areas.details, x, y) {
                        if down { Action::FieldDown } else { Action::FieldUp }
                    } else if down {
                        Action::PageDown
                    } else {
                        Action::PageUp
                    };
                    // The wheel moves through the ladder three steps at a time.
                    app.act(action, 3, tx, now);
                }
                _ => return false,
            }
        }
        Event::Resize(..) => {}
        _ => return false,
    }
    true
}
fn in_rect(r: ratatui::layout::Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.right() && y >= r.y && y < r.bottom()
}
