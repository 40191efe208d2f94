//! Drawing the whole screen from the app state: pure, no I/O. The layout function is shared
//! with the mouse handler, so a click lands where the drawing put things.
//!
//! The layout gives each pane what it needs by priority, the ladder first: it takes the width
//! its widest summary needs, and the details and narration go beside it only when they get a
//! useful width there; otherwise they go below it, so a wider screen never shows less.

use super::app::{App, Ask, LabTab, RunState};
use super::keys::{HINTS, help_rows};
use super::text::{fit, width, wrap};
use super::theme::Theme;
use super::widgets::{
    details::Details,
    ladder::{EndpointState, HEADER, Ladder, width_for_label},
    map::{self, Map},
    timeline::{self, Lease, LeaseView, Timeline},
};
use crate::locale::{Lang, endpoint, localize, localize_failure, tr, trf};
use crate::net::Wire;
use crate::session::Step;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::merge::MergeStrategy;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Tabs, Wrap};
use std::time::Instant;

/// Smallest usable terminal.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 16;
/// The side column (details over narration) goes beside the ladder only from this width on.
const SIDE_MIN: u16 = 50;
/// Past this width the side column leaves the rest to the ladder.
const SIDE_MAX: u16 = 84;
/// The ladder asks for room for summaries this wide at least, and at most.
const LABEL_MIN: usize = 45;
const LABEL_MAX: usize = 83;

/// Where each region goes. Neighbouring panes share their border lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub tabs: Rect,
    /// The ladder's block, borders included (no height when zoomed).
    pub ladder: Rect,
    /// Rows at the bottom of the ladder's block for the DHCP lease timeline.
    pub timeline_rows: u16,
    /// Rows above them for the lab network's map (labs of more than two nodes).
    pub map_rows: u16,
    pub details: Rect,
    pub narration: Rect,
    pub status: Rect,
    /// Blank rows between two steps of the ladder (presenter mode spaces them out).
    pub gap: u16,
}

impl Areas {
    /// Rows of steps the ladder shows (inside its borders, under its header).
    pub fn ladder_rows(&self) -> usize {
        let lines = self.ladder.height.saturating_sub(2 + HEADER + self.timeline_rows + self.map_rows);
        // The last step needs no gap under it.
        ((lines + self.gap) / (1 + self.gap)) as usize
    }

    /// The step row under a click at row `y`, relative to the first shown row.
    pub fn ladder_row_at(&self, x: u16, y: u16) -> Option<usize> {
        let top = self.ladder.y + 1 + HEADER;
        let bottom = top + (self.ladder_rows() as u16 * (1 + self.gap));
        let inside = x > self.ladder.x && x + 1 < self.ladder.right() && y >= top && y < bottom;
        let on_a_step = y.saturating_sub(top).is_multiple_of(1 + self.gap);
        (inside && on_a_step).then(|| ((y - top) / (1 + self.gap)) as usize)
    }
}

/// Rows for the map of a tab's lab network: on the lab network, when it has more than two nodes.
fn map_rows(tab: &LabTab) -> u16 {
    if tab.wire == Wire::Sim && map::worth_it(&(tab.lab.info().network)()) { map::ROWS } else { 0 }
}

/// Whether a tab shows a lease timeline under its ladder.
fn has_timeline(tab: &LabTab) -> bool {
    tab.lab.info().name == "dhcp"
}

/// The width the ladder's block asks for: its widest summary whole (within bounds).
fn ladder_want(tab: &LabTab) -> u16 {
    width_for_label(tab.widest.clamp(LABEL_MIN, LABEL_MAX) as u16) + 2
}

/// Details (left) and narration (right) side by side in `r`, sharing a border.
fn beside(r: Rect) -> (Rect, Rect) {
    let dw = (r.width / 2).clamp(42.min(r.width), 76);
    (Rect { width: dw, ..r }, Rect { x: r.x + dw - 1, width: r.width + 1 - dw, ..r })
}

/// The screen's regions for the active tab.
pub fn layout(area: Rect, app: &App) -> Areas {
    let [tabs, main, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
    let tab = app.tab();
    if app.zoom {
        let (details, narration) = beside(main);
        return Areas {
            tabs,
            ladder: Rect { height: 0, ..main },
            timeline_rows: 0,
            map_rows: 0,
            details,
            narration,
            status,
            gap: 0,
        };
    }
    if app.present {
        // The ladder takes the screen, its steps spaced out; the narration is a subtitle band
        // under it; the details fold into the ladder's bottom line (z opens them).
        let band = (main.height / 3).clamp(4, 12);
        let ladder = Rect { height: main.height - band + 1, ..main };
        let narration = Rect { y: ladder.bottom() - 1, height: band, ..main };
        let timeline_rows = if has_timeline(tab) { timeline::COMPACT } else { 0 };
        let gap = u16::from(main.height >= 30);
        let details = Rect { height: 0, ..narration };
        return Areas { tabs, ladder, timeline_rows, map_rows: map_rows(tab), details, narration, status, gap };
    }
    let timeline_rows = if !has_timeline(tab) {
        0
    } else if main.height >= 30 {
        timeline::FULL
    } else {
        timeline::COMPACT
    };
    let want = ladder_want(tab);
    if main.width >= want + SIDE_MIN {
        let side_w = (main.width - want).min(SIDE_MAX);
        let ladder = Rect { width: main.width - side_w + 1, ..main };
        let side = Rect { x: ladder.right() - 1, width: side_w, ..main };
        // A lesson's card shares the narration's place: it gets the larger part.
        let details_h = if tab.lesson.is_some() { side.height * 2 / 5 } else { side.height * 3 / 5 };
        let details = Rect { height: details_h, ..side };
        let narration = Rect { y: side.y + details_h - 1, height: side.height + 1 - details_h, ..side };
        return Areas { tabs, ladder, timeline_rows, map_rows: map_rows(tab), details, narration, status, gap: 0 };
    }
    // Stacked: the lower panes get two fifths of what is left besides borders, and at small
    // heights about half, up to eight rows.
    let t = main.height.saturating_sub(5);
    let mut content = (t * 2 / 5).max(t.div_ceil(2).saturating_sub(1).min(8));
    if tab.lesson.is_some() {
        // The lesson's questions need room to be read.
        content = content.max(t * 3 / 5);
    }
    let ladder = Rect { height: main.height.saturating_sub(content + 1), ..main };
    let lower = Rect { y: ladder.bottom().saturating_sub(1), height: content + 2, ..main };
    let (details, narration) = beside(lower);
    Areas { tabs, ladder, timeline_rows, map_rows: map_rows(tab), details, narration, status, gap: 0 }
}

/// Before drawing: lays out the screen, keeps the cursor in the ladder's view and the scrolled
/// texts within their length. Returns the layout, for the mouse.
pub fn settle(app: &mut App, area: Rect) -> Areas {
    let areas = layout(area, app);
    app.tab_mut().scroll_to_cursor(areas.ladder_rows());
    let (card, _) = lesson_split(areas.narration, app.tab());
    let (w, h) = (card.width.saturating_sub(2), card.height.saturating_sub(2));
    let tab = app.tab_mut();
    if let Some(lesson) = &mut tab.lesson {
        // J and K scroll the lesson's card; what it shows new comes into view by itself.
        let (lines, newest) = lesson.lines(w as usize);
        let last = lines.len().saturating_sub(h as usize);
        if lesson.follow {
            lesson.follow = false;
            lesson.scroll = newest.min(last);
        }
        lesson.scroll = lesson.scroll.min(last);
    } else {
        let lines = wrap(&narration_text(app, app.tab()), w as usize).len();
        let tab = app.tab_mut();
        tab.narration_scroll = tab.narration_scroll.min(lines.saturating_sub(h as usize));
    }
    let popup = help_popup(area);
    let lines = help_lines(app, popup.width.saturating_sub(2)).len();
    app.help_scroll = app.help_scroll.min(lines.saturating_sub(popup.height.saturating_sub(2) as usize));
    areas
}

fn bordered<'a>() -> Block<'a> {
    Block::bordered().merge_borders(MergeStrategy::Exact)
}

pub fn draw(frame: &mut Frame, app: &App, now: Instant) {
    let area = frame.area();
    if area.width < MIN_W || area.height < MIN_H {
        let (w, h) = (area.width, area.height);
        let text = format!(
            "{}\n{}",
            trf(app.lang, "terminal too small: {w}x{h}", &[("w", &w), ("h", &h)]),
            trf(app.lang, "protolab needs at least {w}x{h}", &[("w", &MIN_W), ("h", &MIN_H)])
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let lang = app.lang;
    if app.blank {
        // Presenter's blank: nothing but how to come back, dim in a corner.
        let hint = tr(lang, "b: back");
        let x = area.right().saturating_sub(width(hint) as u16 + 1);
        frame.buffer_mut().set_string(x, area.bottom() - 1, hint, Style::new().fg(Color::DarkGray));
        return;
    }
    let areas = layout(area, app);
    let tab = app.tab();
    draw_tabs(frame, app, areas.tabs);

    if areas.ladder.height > 0 {
        let block = bordered().title(ladder_title(app, tab, areas.ladder.width.saturating_sub(4) as usize));
        let inner = block.inner(areas.ladder);
        frame.render_widget(block, areas.ladder);
        let rows = areas.timeline_rows.min(inner.height);
        let map_h = areas.map_rows.min(inner.height - rows);
        let ladder_area = Rect { height: inner.height - rows - map_h, ..inner };
        let footer = match &tab.state {
            RunState::Running => None,
            RunState::Completed => {
                Some((tr(lang, "✓ exchange completed — r runs it again").to_string(), Style::new().fg(Color::Green)))
            }
            RunState::Failed(reason) => Some((
                format!("✗ {}", localize_failure(lang, reason)),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )),
        };
        frame.render_widget(
            Ladder {
                session: &tab.session,
                endpoints: &tab.lifelines(),
                shown: tab.shown(),
                cursor: tab.cursor,
                scroll: tab.scroll,
                flight: tab.flight,
                now,
                // While a lesson's question is open, nothing is sent: no "press →" then.
                waiting: tab.waiting.as_deref().filter(|_| !tab.holding()),
                footer,
                states: states_at(tab, lang),
                layers: tab.layers,
                conns: &tab.conns,
                clock: if tab.wire == Wire::Sim { tr(lang, "lab clock") } else { tr(lang, "wall clock") },
                main_conn: tab.lab.info().conn,
                conn: tab.selected().and_then(|s| s.conn.as_deref()),
                lang,
                gap: areas.gap,
                pointer: tab.pointer,
            },
            ladder_area,
        );
        if map_h > 0 {
            let topology = (tab.lab.info().network)();
            let crossed = tab.selected().map(|s| (s.from.as_str(), s.to.as_str()));
            let area = Rect { y: ladder_area.bottom(), height: map_h, ..inner };
            frame.render_widget(Map { topology: &topology, crossed, lang }, area);
        }
        if rows > 0 {
            let area = Rect { y: ladder_area.bottom() + map_h, height: rows, ..inner };
            frame.render_widget(Timeline { view: lease_view(tab, lang), lang }, area);
        }
    }

    if areas.details.height > 0 {
        let title = if app.zoom { tr(lang, " details · zoom, Esc goes back ") } else { tr(lang, " details ") };
        let block = bordered().title(title);
        let inner = block.inner(areas.details);
        frame.render_widget(block, areas.details);
        let step = tab.selected();
        // Zoomed, there is no ladder to show the summary.
        let ladder = if areas.ladder.height == 0 { 0 } else { areas.ladder.width.saturating_sub(2) };
        let summary = step.is_some_and(|s| summary_cut(tab, s, ladder));
        Details { step, field: tab.field, moved: moved_sentences(tab, lang), lang, summary }
            .draw(inner, frame.buffer_mut());
    }

    draw_narration(frame, app, areas.narration);
    frame.render_widget(status_line(app, areas.status.width as usize), areas.status);
    if app.help {
        draw_help(frame, app, area);
    }
    // A projector washes colours out: presenting in the default theme is presenting in high
    // contrast.
    let theme = if app.present && app.theme == Theme::Dark { Theme::HighContrast } else { app.theme };
    theme.apply(frame.buffer_mut());
}

/// The tabs' labels, as drawn (`1 DHCP`, with `▶` while that lab plays).
pub fn tab_labels(app: &App) -> Vec<String> {
    app.tabs
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}{}", i + 1, tr(app.lang, t.lab.info().title), if t.playing { " ▶" } else { "" }))
        .collect()
}

/// The tabs the tab bar shows in `width` columns: all if they fit, else a window that holds the
/// active one, `‹` before it when tabs are left out on the left, `›` after it on the right.
/// Returns the first tab shown and the labels shown.
fn visible_tabs(app: &App, columns: u16) -> (usize, Vec<String>) {
    let labels = tab_labels(app);
    // Tabs are drawn as ` label `, one `│` between two.
    let span = |from: usize, to: usize| -> usize {
        labels[from..=to].iter().map(|l| width(l) + 2).sum::<usize>() + (to - from)
    };
    let n = labels.len();
    let room = usize::from(columns);
    if n == 0 || span(0, n - 1) <= room {
        return (0, labels);
    }
    let active = app.active.min(n - 1);
    for first in 0..=active {
        let marks = |last: usize| usize::from(first > 0) + usize::from(last + 1 < n);
        let fits = (active..n).rev().find(|&last| span(first, last) + marks(last) <= room);
        if let Some(last) = fits {
            return (first, labels[first..=last].to_vec());
        }
    }
    (active, labels[active..=active].to_vec())
}

/// The tab under column `x` of the tab bar. Tabs are drawn as ` label ` separated by `│`.
pub fn tab_at(app: &App, areas: &Areas, x: u16) -> Option<usize> {
    let (first, labels) = visible_tabs(app, areas.tabs.width);
    let mut left = areas.tabs.x + u16::from(first > 0);
    for (i, label) in labels.iter().enumerate() {
        let w = width(label) as u16 + 2;
        if x >= left && x < left + w {
            return Some(first + i);
        }
        left += w + 1;
    }
    None
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let (first, labels) = visible_tabs(app, area.width);
    let (shown, all) = (labels.len(), app.tabs.len());
    let used: usize = labels.iter().map(|l| width(l) + 3).sum();
    let dim = Style::new().fg(Color::DarkGray);
    let mut tabs_area = area;
    if first > 0 {
        frame.buffer_mut().set_string(area.x, area.y, "‹", dim);
        tabs_area.x += 1;
        tabs_area.width = tabs_area.width.saturating_sub(1);
    }
    frame.render_widget(
        Tabs::new(labels.into_iter().map(Line::from).collect::<Vec<_>>())
            .select(app.active - first)
            .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD))
            .divider("│"),
        tabs_area,
    );
    if first + shown < all {
        frame.buffer_mut().set_string(area.right().saturating_sub(1), area.y, "›", dim);
        return;
    }
    let brand = " protolab ";
    if first == 0 && used + brand.len() <= area.width as usize {
        let x = area.right() - brand.len() as u16;
        frame.buffer_mut().set_string(x, area.y, brand, dim);
    }
}

/// The ladder's title: the lab, its RFCs, the server's real port, the wire, and what the
/// capture could not do. Parts are left out, least needed first, until it fits `max`.
fn ladder_title(app: &App, tab: &LabTab, max: usize) -> Line<'static> {
    let info = tab.lab.info();
    let lang = app.lang;
    let plain = Style::new();
    let warn = Style::new().fg(Color::Yellow);
    // (text, style, how much it is needed: higher stays longer)
    let mut parts: Vec<(String, Style, u8)> =
        vec![(tr(lang, info.title).to_string(), plain, 9), (info.rfcs.to_string(), plain, 1)];
    let port = match (tab.listening, tab.wire) {
        (Some(addr), _) => Some(addr.port()),
        (None, Wire::Sim) => Some(info.port).filter(|&p| p != 0),
        (None, Wire::Host) => None,
    };
    if let Some(port) = port {
        parts.push((trf(lang, "port {port}", &[("port", &port)]), plain, 6));
    }
    if app.moved_to_lab_network(tab) {
        parts.push((tr(lang, "runs on the lab network").into(), warn, 7));
    } else {
        let wire = if tab.wire == Wire::Sim { tr(lang, "lab network") } else { tr(lang, "kernel sockets") };
        parts.push((wire.into(), plain, 4));
    }
    if tab.wire == Wire::Host {
        let lost = crate::net::capture::lost();
        if lost > 0 {
            let style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
            // The kernel counts what the capture socket lost on the whole loopback interface.
            let text = if lost == 1 {
                tr(lang, "capture lost 1 loopback frame").to_string()
            } else {
                trf(lang, "capture lost {n} loopback frames", &[("n", &lost)])
            };
            parts.push((text, style, 8));
        } else if app.capture_off.is_some() {
            parts.push((tr(lang, "no capture: ? says why").into(), warn, 3));
        }
    }
    let total = |parts: &[(String, Style, u8)]| parts.iter().map(|p| width(&p.0) + 3).sum::<usize>() + 1;
    while total(&parts) > max && parts.len() > 1 {
        let least = parts.iter().enumerate().min_by_key(|(_, p)| p.2).map(|(i, _)| i).unwrap_or(0);
        parts.remove(least);
    }
    let mut spans = vec![Span::raw(" ")];
    for (i, (text, style, _)) in parts.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::styled(fit(&text, max.saturating_sub(2)), style));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// The narration of the selected step, or what the lab is before its first step.
fn narration_text(app: &App, tab: &LabTab) -> String {
    if let Some(step) = tab.selected() {
        let text = tab.narration.explain(step, tab.wire);
        if app.present {
            // The details, folded into one line over the subtitle (z opens them).
            return format!("{}\n\n{text}", details_line(step, tab.field, app.lang));
        }
        return text;
    }
    let info = tab.lab.info();
    let lang = app.lang;
    let wire = if app.moved_to_lab_network(tab) {
        tr(
            lang,
            "This lab runs on the lab network (it cannot run on kernel sockets): an in-process network where \
             every Ethernet frame waits at the gate until you press →.",
        )
    } else if tab.wire == Wire::Sim {
        tr(
            lang,
            "It runs on the lab network: an in-process network where every Ethernet frame waits at the gate \
             until you press →.",
        )
    } else {
        tr(lang, "Every message really crosses a socket on this machine, and waits at the gate until you press →.")
    };
    format!(
        "{}: {}.\n\n{}\n\n{}",
        tr(lang, info.title),
        tr(lang, info.about),
        wire,
        tr(lang, "Press → to let the first one go.")
    )
}

/// With a lesson playing, its card takes the top of the narration's area and the step's
/// narration the rest, where there is room for both: (card, narration).
fn lesson_split(area: Rect, tab: &LabTab) -> (Rect, Rect) {
    if tab.lesson.is_none() || area.height < 14 {
        return (area, Rect { height: 0, ..area });
    }
    let card = area.height * 3 / 5;
    (Rect { height: card, ..area }, Rect { y: area.y + card - 1, height: area.height + 1 - card, ..area })
}

/// A bordered pane of `lines` under `title`, from line `scroll` (kept within the text), with
/// a hint of which way there is more (K up, J down); `None`: from the top, J and K scroll
/// something else.
fn scrolled(
    frame: &mut Frame,
    lang: Lang,
    area: Rect,
    title: String,
    lines: Vec<Line<'static>>,
    scroll: Option<usize>,
) {
    let inner = bordered().inner(area);
    let rows = inner.height as usize;
    let last = lines.len().saturating_sub(rows);
    let scrolls = scroll.is_some();
    let scroll = scroll.unwrap_or(0).min(last);
    let mut block = bordered().title(title);
    let hint = match (scroll > 0, scroll < last) {
        _ if !scrolls => None,
        (false, true) => Some(tr(lang, " ↓ more: J ")),
        (true, true) => Some(tr(lang, " ↑↓ more: K J ")),
        (true, false) => Some(" ↑ K "),
        (false, false) => None,
    };
    if let Some(hint) = hint {
        block = block.title_bottom(Line::styled(hint, Style::new().fg(Color::Yellow)).right_aligned());
    }
    frame.render_widget(block, area);
    let shown: Vec<Line> = lines.into_iter().skip(scroll).take(rows).collect();
    frame.render_widget(Paragraph::new(shown), inner);
}

/// The narration of the selected step; with a lesson playing, the lesson's card (its text,
/// questions and grades, scrolled with J and K) over it, or instead of it where there is no
/// room for both.
fn draw_narration(frame: &mut Frame, app: &App, area: Rect) {
    let tab = app.tab();
    let lang = app.lang;
    let step_lines = |area: Rect| -> Vec<Line<'static>> {
        wrap(&narration_text(app, tab), bordered().inner(area).width as usize).into_iter().map(Line::from).collect()
    };
    let what = tr(lang, " what happens ").to_string();
    match &tab.lesson {
        Some(lesson) => {
            let (card, rest) = lesson_split(area, tab);
            let (lines, _) = lesson.lines(bordered().inner(card).width as usize);
            let title = trf(lang, " lesson · {name} · L closes ", &[("name", &lesson.play.lesson.name)]);
            scrolled(frame, lang, card, title, lines, Some(lesson.scroll));
            if rest.height > 0 {
                // The step's own narration, from its top (J and K scroll the card).
                scrolled(frame, lang, rest, what, step_lines(rest), None);
            }
        }
        None => scrolled(frame, lang, area, what, step_lines(area), Some(tab.narration_scroll)),
    }
}

/// The status line: where the cursor is, what the run does, play mode; then the key hints
/// that fit, always keeping `? help` and `q quit`.
fn status_line(app: &App, cols: usize) -> Line<'static> {
    let tab = app.tab();
    let lang = app.lang;
    let position = match tab.position() {
        // For a projector: the count big enough to read from the back, with what the step is.
        Some((at, of)) if app.present => {
            let what = tab.selected().map(|s| s.summary.split("  ").next().unwrap_or_default()).unwrap_or_default();
            format!(" {at} / {of} · {} ", fit(what, cols / 3))
        }
        Some((at, of)) => trf(lang, " step {at}/{of} ", &[("at", &at), ("of", &of)]),
        None => tr(lang, " no steps ").into(),
    };
    let mut state = match (&tab.state, &tab.waiting, &app.note) {
        _ if let Some((ask, text)) = &app.prompt => match ask {
            Ask::Find => format!("/{text}▏ {}", tr(lang, "Enter finds, Esc cancels")),
            Ask::Step => format!(":{text}▏ {}", tr(lang, "a step's number, Enter goes there")),
        },
        // An open question is what matters now; a wrong form of answer is said in the card.
        _ if let Some(ask) = tab.lesson.as_ref().and_then(|l| l.open()) => {
            trf(lang, "question {n} waits for your answer (Enter; Esc skips)", &[("n", &ask.number)])
        }
        (_, _, Some(note)) => note.clone(),
        (RunState::Running, Some(who), _) => trf(lang, "{who} waits at the gate", &[("who", &endpoint(lang, who))]),
        (RunState::Running, None, _) => tr(lang, "running").into(),
        (RunState::Completed, _, _) => tr(lang, "completed").into(),
        (RunState::Failed(_), _, _) => tr(lang, "failed").into(),
    };
    if let Some(layers) = tab.layers.label(lang) {
        state = format!("{state} · {layers}");
    }
    if let Some(conn) = &tab.conns.only {
        state = format!("{state} · {}", trf(lang, "only {conn}", &[("conn", conn)]));
    }
    let mut play = if tab.playing { format!("▶ ×{}", tab.speed()) } else { format!("❚❚ ×{}", tab.speed()) };
    if tab.queued > 0 {
        play = format!("{play} · {}", trf(lang, "→ ×{n} queued", &[("n", &tab.queued)]));
    }
    let fixed = width(&position) + width(&play) + 4;
    // The most hints that fit beside the state, long forms first, then short ones; help and
    // quit always. The state keeps a few words; a note (the answer to a key) keeps them all.
    let hints = |min_rank: u8, short: bool| {
        HINTS
            .iter()
            .filter(|h| h.rank == 0 || h.rank >= min_rank)
            .map(|h| super::keys::hint_text(h, tr(lang, if short { h.short } else { h.long })))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let narrowed = tab.layers.label(lang).is_some() || tab.conns.only.is_some();
    let keep = if app.note.is_some() || app.prompt.is_some() || narrowed { 60 } else { 24 };
    let want_state = width(&state).min(keep);
    let mut chosen = hints(u8::MAX, true);
    'pick: for short in [false, true] {
        for min_rank in 1..=HINTS.iter().map(|h| h.rank).max().unwrap_or(0) + 1 {
            let text = hints(min_rank, short);
            if fixed + want_state + width(&text) <= cols {
                chosen = text;
                break 'pick;
            }
        }
    }
    let state = fit(&state, cols.saturating_sub(fixed + width(&chosen)));
    let pad = cols.saturating_sub(fixed + width(&state) + width(&chosen));
    Line::from(vec![
        Span::styled(position, Style::new().fg(Color::Black).bg(Color::Cyan)),
        Span::raw(" "),
        Span::styled(state, Style::new().fg(Color::Yellow)),
        Span::raw("  "),
        Span::raw(play),
        Span::raw(" ".repeat(pad + 1)),
        Span::styled(chosen, Style::new().fg(Color::DarkGray)),
    ])
}

/// Where help goes on a screen of `area`.
fn help_popup(area: Rect) -> Rect {
    // On a narrow screen help takes the whole width, so no border shows doubled beside it.
    let w = if area.width <= 82 { area.width } else { 78 };
    let h = area.height.saturating_sub(2);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + 1, width: w, height: h }
}

/// Help's lines at `cols` columns: every key of the table, the mouse, the gate, and how to turn
/// packet capture on when it is off.
fn help_lines(app: &App, cols: u16) -> Vec<Line<'static>> {
    let cols = cols as usize;
    let rows = help_rows();
    let label_w = rows.iter().map(|(label, _)| width(label)).max().unwrap_or(0) + 2;
    let key = Style::new().fg(Color::Yellow);
    let mut lines = Vec::new();
    // First, when it applies, what the title's "no capture" points at.
    let lang = app.lang;
    if let Some(why) = &app.capture_off {
        for text in wrap(&format!("{}: {why}", tr(lang, "Kernel sockets")), cols) {
            lines.push(Line::styled(text, Style::new().fg(Color::Yellow)));
        }
        lines.push(Line::raw(""));
    }
    let mut entry = |label: &str, help: &str| {
        for (i, text) in wrap(help, cols.saturating_sub(label_w).max(10)).into_iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{label}{}", " ".repeat(label_w.saturating_sub(width(label)))), key),
                Span::raw(text),
            ]));
        }
    };
    for (label, help) in rows {
        entry(&label, tr(lang, help));
    }
    entry(
        tr(lang, "mouse"),
        tr(lang, "click a step or a tab; the wheel moves through steps, fields (over details) or the narration"),
    );
    let dim = Style::new().fg(Color::DarkGray);
    lines.push(Line::raw(""));
    for text in wrap(
        tr(
            lang,
            "Each message waits at the gate until you press →; then it really goes. On the lab network times are \
             the lab's clock, which stops while a frame waits; on kernel sockets they are the wall clock.",
        ),
        cols,
    ) {
        lines.push(Line::styled(text, dim));
    }
    lines
}

fn draw_help(frame: &mut Frame, app: &App, area: Rect) {
    let popup = help_popup(area);
    let lines = help_lines(app, popup.width.saturating_sub(2));
    let rows = popup.height.saturating_sub(2) as usize;
    let popup = Rect { height: popup.height.min(lines.len() as u16 + 2), ..popup };
    let last = lines.len().saturating_sub(rows);
    let scroll = app.help_scroll.min(last);
    let mut block = Block::bordered().title(tr(app.lang, " help · Esc closes "));
    if scroll < last {
        let more = tr(app.lang, " ↓ more: j ");
        block = block.title_bottom(Line::styled(more, Style::new().fg(Color::Yellow)).right_aligned());
    }
    frame.render_widget(Clear, popup);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    frame.render_widget(Paragraph::new(lines.into_iter().skip(scroll).take(rows).collect::<Vec<_>>()), inner);
}

/// The endpoints' states at the selected step: bold when that step changed one, `FROM → TO`
/// for one that moved on while its next frame waits at the gate.
fn states_at(tab: &LabTab, lang: Lang) -> Vec<EndpointState> {
    let say = |state: &str| localize(lang, state).into_owned();
    let Some(step) = tab.selected().filter(|s| !s.states.is_empty()) else { return Vec::new() };
    // The states before it: from the nearest earlier step of the same connection that has them
    // (looking back a little, so a frame costs the same in a long session).
    let from = tab.cursor.saturating_sub(64);
    let before = tab
        .session
        .range(from..tab.cursor)
        .rev()
        .find(|s| !s.states.is_empty() && s.conn == step.conn)
        .map(|s| &s.states);
    step.states
        .iter()
        .map(|(who, state)| {
            if let Some(m) = step.moved.iter().find(|m| &m.who == who) {
                return EndpointState {
                    who: who.clone(),
                    text: format!("{} → {}", say(&m.from), say(&m.to)),
                    changed: true,
                };
            }
            let was = before.and_then(|b| b.iter().find(|(n, _)| n == who)).map(|(_, s)| s);
            let changed = was.is_some_and(|w| w != state) || (was.is_none() && state != "CLOSED");
            EndpointState { who: who.clone(), text: say(state), changed }
        })
        .collect()
}

/// Whether the ladder, `width` columns wide inside its frame, cuts `step`'s label: its arrow
/// spans too few columns (many lifelines), or there is no ladder.
fn summary_cut(tab: &LabTab, step: &Step, width: u16) -> bool {
    let lifelines = tab.lifelines();
    let column = |name: &str| lifelines.iter().position(|l| *l == name).unwrap_or(0);
    let room = crate::tui::widgets::ladder::label_room(width, lifelines.len(), column(&step.from), column(&step.to));
    crate::tui::text::width(&step.summary) > room
}

/// The selected step in one line, for presenter mode: number, who to whom, protocol, size,
/// and the selected field's value.
fn details_line(step: &Step, field: usize, lang: Lang) -> String {
    let mut line = format!(
        "#{} {} → {}  {}  {}",
        step.seq,
        endpoint(lang, &step.from),
        endpoint(lang, &step.to),
        step.proto,
        trf(lang, "{n} bytes", &[("n", &step.len)])
    );
    if let Some(f) = step.fields.get(field.min(step.fields.len().saturating_sub(1))) {
        line.push_str(&format!("  ·  {} {}", f.path, f.display_value()));
    }
    line
}

/// What the details pane says about endpoints that moved on at the selected step: in the
/// present while the frame still waits at the gate, in the past once it went.
fn moved_sentences(tab: &LabTab, lang: Lang) -> Vec<String> {
    let Some(step) = tab.selected() else { return Vec::new() };
    let newest = tab.cursor + 1 >= tab.session.len() && tab.flight.is_none();
    let live = newest && tab.state == RunState::Running && tab.waiting.is_some();
    step.moved
        .iter()
        .map(|m| {
            let who = endpoint(lang, &m.who);
            let args: [(&str, &dyn std::fmt::Display); 4] =
                [("who", &who), ("from", &m.from), ("to", &m.to), ("waiting", &m.waiting)];
            if live {
                trf(lang, "{who}: {from} → {to}, its {waiting} waits at the gate", &args)
            } else {
                trf(lang, "{who}: {from} → {to} while its {waiting} waited at the gate", &args)
            }
        })
        .collect()
}

/// Whether a step is an ACK that grants the client a lease: one that reached it (lost or
/// damaged on the cable, it granted nothing), and not the settings-only ACK of an INFORM.
fn grants_lease(step: &Step) -> bool {
    step.value("DHCP.message_type").as_deref() == Some("ACK")
        && step.field("DHCP.lease_time").is_some()
        && step.fate.taken_in()
        && step.malformed.is_none()
}

/// Why a step ends the lease in force, if it does: the client let it go, the server refused
/// it, or the client fell back to INIT (expiry).
fn ends_lease(step: &Step, lang: Lang) -> Option<String> {
    let at: [(&str, &dyn std::fmt::Display); 1] = [("seq", &step.seq)];
    match step.value("DHCP.message_type").as_deref() {
        Some("RELEASE") => return Some(trf(lang, "no lease: released at #{seq}", &at)),
        // The client lets its lease go whether or not the server hears it; a NAK ends it only
        // if it reaches the client.
        Some("NAK") if step.fate.taken_in() => return Some(trf(lang, "no lease: NAK at #{seq}", &at)),
        Some("DECLINE") => return Some(trf(lang, "no lease: declined at #{seq}", &at)),
        _ => {}
    }
    let client = step.state("client")?;
    (client == "INIT" || client.starts_with("INIT "))
        .then(|| trf(lang, "no lease: the client is in INIT at #{seq}", &at))
}

/// The DHCP lease in force at the selected step, and the step's moment on the lease clock:
/// walking back from the step, the first ACK that grants a lease, unless a RELEASE, a NAK or
/// the client's fall to INIT comes first. Looks back a bounded way, so a frame costs the same
/// in a long session.
fn lease_view(tab: &LabTab, lang: Lang) -> LeaseView {
    let Some(step) = tab.selected() else { return LeaseView::None(tr(lang, "no lease yet").into()) };
    let speedup = f64::from(tab.lease_speedup);
    let secs = |s: &Step| s.t_us as f64 / 1e6 * speedup;
    let from = tab.cursor.saturating_sub(256);
    for s in tab.session.range(from..tab.cursor + 1).rev() {
        if grants_lease(s) {
            let num = |path: &str| s.value(path).and_then(|v| v.parse::<f64>().ok());
            let Some(length) = num("DHCP.lease_time") else { break };
            let lease = Lease {
                speedup: tab.lease_speedup,
                addr: s.value("DHCP.yiaddr").unwrap_or_default(),
                seq: s.seq,
                start: secs(s),
                t1: num("DHCP.renewal_time").unwrap_or(length * 0.5),
                t2: num("DHCP.rebinding_time").unwrap_or(length * 0.875),
                length,
            };
            return LeaseView::Held { lease, now: secs(step) };
        }
        if let Some(why) = ends_lease(s, lang) {
            return LeaseView::None(why);
        }
    }
    LeaseView::None(tr(lang, "no lease yet: DISCOVER, OFFER, REQUEST, ACK get one").into())
}
