//! Drawing the whole screen from the app state: pure, no I/O. The layout function is shared
//! with the mouse handler, so a click lands where the drawing put things.

use super::app::{App, RunState};
use super::keys::{BINDINGS, status_hint};
use super::widgets::{
    details::Details,
    ladder::{HEADER, Ladder},
    timeline::{Lease, Timeline},
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs, Wrap};
use std::time::Instant;

/// Smallest usable terminal.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 16;

/// Where each region goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub tabs: Rect,
    /// The ladder's block, borders included.
    pub ladder: Rect,
    pub details: Rect,
    pub narration: Rect,
    pub status: Rect,
}

impl Areas {
    /// Rows of steps the ladder shows (inside its borders, under its header).
    pub fn ladder_rows(&self) -> usize {
        self.ladder.height.saturating_sub(2 + HEADER) as usize
    }

    /// The step row under a click at row `y`, relative to the first shown row.
    pub fn ladder_row_at(&self, x: u16, y: u16) -> Option<usize> {
        let top = self.ladder.y + 1 + HEADER;
        let inside = x > self.ladder.x && x < self.ladder.right() - 1 && y >= top && y < self.ladder.bottom() - 1;
        inside.then(|| (y - top) as usize)
    }
}

/// Wide screens put details and narration beside the ladder; narrow ones below it.
pub fn layout(area: Rect) -> Areas {
    let [tabs, main, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
    if area.width >= 120 {
        let [ladder, side] = Layout::horizontal([Constraint::Percentage(56), Constraint::Percentage(44)]).areas(main);
        let [details, narration] =
            Layout::vertical([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(side);
        Areas { tabs, ladder, details, narration, status }
    } else {
        let [ladder, lower] = Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(main);
        let [details, narration] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(lower);
        Areas { tabs, ladder, details, narration, status }
    }
}

pub fn draw(frame: &mut Frame, app: &App, now: Instant) {
    let area = frame.area();
    if area.width < MIN_W || area.height < MIN_H {
        let text =
            format!("terminal too small: {}x{}\nprotolab needs at least {MIN_W}x{MIN_H}", area.width, area.height);
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let areas = layout(area);
    let tab = app.tab();

    let titles: Vec<Line> =
        app.tabs.iter().enumerate().map(|(i, t)| Line::from(format!("{} {}", i + 1, t.lab.info().title))).collect();
    frame.render_widget(
        Tabs::new(titles)
            .select(app.active)
            .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD))
            .divider("│"),
        areas.tabs,
    );
    let brand = " protolab ";
    if areas.tabs.width > 40 {
        let x = areas.tabs.right() - brand.len() as u16;
        frame.buffer_mut().set_string(x, areas.tabs.y, brand, Style::new().fg(Color::DarkGray));
    }

    let info = tab.lab.info();
    // A DHCP lease in view gets a timeline under the ladder.
    let lease = lease_at(tab);
    let mut ladder_area = areas.ladder;
    if let Some((lease, now)) = lease.filter(|_| areas.ladder.height >= 14) {
        let [top, bottom] = Layout::vertical([Constraint::Min(0), Constraint::Length(5)]).areas(areas.ladder);
        ladder_area = top;
        frame.render_widget(Timeline { lease, now }, bottom);
    }
    let ladder_block =
        Block::new().borders(Borders::ALL).title(format!(" {} · {} · port {} ", info.title, info.rfcs, info.port));
    let inner = ladder_block.inner(ladder_area);
    frame.render_widget(ladder_block, ladder_area);
    let footer = match &tab.state {
        RunState::Running => None,
        RunState::Completed => {
            Some(("✓ exchange completed — r runs it again".to_string(), Style::new().fg(Color::Green)))
        }
        RunState::Failed(reason) => {
            Some((format!("✗ {reason}"), Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)))
        }
    };
    frame.render_widget(
        Ladder {
            session: &tab.session,
            endpoints: &["client", "server"],
            shown: tab.shown(),
            cursor: tab.cursor,
            scroll: tab.scroll,
            flight: tab.flight,
            now,
            waiting: tab.waiting.as_deref(),
            footer,
            states: states_at(tab),
            layers: tab.layers,
        },
        inner,
    );

    let step = tab.selected();
    frame.render_widget(Details { step, field: tab.field }, areas.details);

    let text = match step {
        Some(s) => tab.narration.explain(s, tab.wire),
        None => format!(
            "{}: {}.\n\nEvery message you will see really crosses a socket on this machine. Press → to let the first one go.",
            info.title, info.about
        ),
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::new().borders(Borders::ALL).title(" what happens ")),
        areas.narration,
    );

    frame.render_widget(status_line(app), areas.status);
    if app.help {
        draw_help(frame, area);
    }
}

fn status_line(app: &App) -> Paragraph<'static> {
    let tab = app.tab();
    let shown = tab.shown();
    let position =
        if shown == 0 { "no steps".to_string() } else { format!("step {}/{}", tab.cursor.min(shown - 1) + 1, shown) };
    let state = match (&tab.state, &tab.waiting, &app.note) {
        (_, _, Some(note)) => note.clone(),
        (RunState::Running, Some(who), _) => format!("{who} waits at the gate"),
        (RunState::Running, None, _) => "running".into(),
        (RunState::Completed, _, _) => "completed".into(),
        (RunState::Failed(_), _, _) => "failed".into(),
    };
    let state = match tab.layers.label() {
        Some(layers) => format!("{state} · {layers}"),
        None => state,
    };
    let play = if app.playing { format!("▶ ×{}", app.speed()) } else { format!("❚❚ ×{}", app.speed()) };
    Paragraph::new(Line::from(vec![
        Span::styled(format!(" {position} "), Style::new().fg(Color::Black).bg(Color::Cyan)),
        Span::styled(format!(" {state} "), Style::new().fg(Color::Yellow)),
        Span::raw(format!("{play}  ")),
        Span::styled(status_hint(), Style::new().fg(Color::DarkGray)),
    ]))
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let mut lines = vec![Line::styled("keys", Style::new().add_modifier(Modifier::BOLD)), Line::raw("")];
    for b in BINDINGS.iter().filter(|b| !b.label.is_empty()) {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10}", b.label), Style::new().fg(Color::Yellow)),
            Span::raw(b.help),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("{:<10}", "mouse"), Style::new().fg(Color::Yellow)),
        Span::raw("click a step to select it; the wheel scrolls"),
    ]));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Each message waits at the gate until you press →; then it really goes.",
        Style::new().fg(Color::DarkGray),
    ));
    let w = 74.min(area.width.saturating_sub(2));
    let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" help — any key closes ")),
        popup,
    );
}

/// The endpoints' states after the selected step, each marked when that step changed it.
fn states_at(tab: &super::app::LabTab) -> Vec<(String, String, bool)> {
    let Some(step) = tab.selected().filter(|s| !s.states.is_empty()) else { return Vec::new() };
    // The states before it: from the nearest earlier step that has them (looking back a little,
    // so a frame costs the same in a long session).
    let from = tab.cursor.saturating_sub(64);
    let before = tab.session.range(from..tab.cursor).rev().find(|s| !s.states.is_empty()).map(|s| &s.states);
    step.states
        .iter()
        .map(|(name, state)| {
            let was = before.and_then(|b| b.iter().find(|(n, _)| n == name)).map(|(_, s)| s);
            (name.clone(), state.clone(), was.is_some_and(|w| w != state) || (was.is_none() && state != "CLOSED"))
        })
        .collect()
}

/// The DHCP lease in force at the selected step (the latest ACK with a lease before it), and
/// the step's moment on the lease clock. Looks back a bounded way, so a frame costs the same in
/// a long session.
fn lease_at(tab: &super::app::LabTab) -> Option<(Lease, f64)> {
    let step = tab.selected()?;
    let speedup = f64::from(tab.lease_speedup);
    let secs = |s: &crate::session::Step| Some(s.t_us as f64 / 1e6 * speedup);
    let now = secs(step)?;
    let from = tab.cursor.saturating_sub(256);
    let ack = tab
        .session
        .range(from..tab.cursor + 1)
        .rev()
        .find(|s| s.kind.starts_with("dhcp.ack") && s.field("DHCP.lease_time").is_some())?;
    let num = |path: &str| ack.value(path).and_then(|v| v.parse::<f64>().ok());
    let length = num("DHCP.lease_time")?;
    let lease = Lease {
        speedup: tab.lease_speedup,
        addr: ack.value("DHCP.yiaddr").unwrap_or_default(),
        seq: ack.seq,
        start: secs(ack)?,
        t1: num("DHCP.renewal_time").unwrap_or(length * 0.5),
        t2: num("DHCP.rebinding_time").unwrap_or(length * 0.875),
        length,
    };
    Some((lease, now))
}
