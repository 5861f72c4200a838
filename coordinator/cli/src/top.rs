//! `agentmill top`: a live terminal view of the cluster for operators (ratatui).
//!
//! - [`App`]: the latest `ClusterStats` answer, whether the last poll failed, and the short
//!   histories it accumulates itself from each poll (episodes/s, the learner's tokens/s and
//!   loss) for the sparklines. [`App::observe`] folds one poll in; nothing in it does I/O.
//! - [`render`]: draws an [`App`] into any ratatui frame — a header (address, time, connection),
//!   tasks by state and results, throughput, the learner's report, the trajectory stream, and
//!   the workers sorted by id.
//! - [`run`]: the interactive loop — alternate screen and raw mode, a poll every interval, a
//!   redraw on every answer or resize, q / Esc / Ctrl-C to quit; the terminal is restored on
//!   every way out (error and panic included). A failed poll ends nothing: the header shows the
//!   error, the last good figures stay on screen, and the next tick tries again.
//! - [`snapshot`] and [`render_text`]: one poll drawn into a `TestBackend` and returned as
//!   plain lines — what `agentmill top --once` prints for scripts and CI logs, through the same
//!   [`render`].
//!
//! ```text
//! agentmill top                        # live, polling every second
//! agentmill top --interval 5s
//! agentmill top --once --width 160     # one frame as text
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentmill_proto::v1;
use anyhow::{Context, bail};
use ratatui::backend::TestBackend;
use ratatui::buffer::CellWidth;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, Wrap};
use ratatui::{DefaultTerminal, Frame, Terminal};
use tokio::sync::mpsc;

use agentmill_proto::connect::Client;

/// Samples kept per history (a sparkline shows the newest that fit its width).
pub const HISTORY: usize = 300;

/// The shortest `--interval` accepted: faster polling only loads the coordinator.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The task states in lifecycle order (as `ClusterStats` names them).
const STATES: [&str; 6] = ["queued", "leased", "running", "done", "failed", "cancelled"];

/// What the view shows: the latest answer, the last poll's error and the histories.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// The coordinator's address, as given.
    pub addr: String,
    /// How often polls are retried (shown with an error); `None` for a single poll.
    pub retry_every: Option<Duration>,
    /// The latest successful answer (kept on screen while polls fail).
    pub stats: Option<v1::ClusterStatsResponse>,
    /// Why the latest poll failed; `None` when it answered.
    pub error: Option<String>,
    /// The clock the view is drawn at (Unix ms): ages are measured from it.
    pub now_unix_ms: i64,
    /// When the latest successful answer arrived (Unix ms).
    pub last_ok_unix_ms: Option<i64>,
    /// Episodes per second (1-minute rate), one sample per successful poll.
    pub episodes_per_s: VecDeque<f64>,
    /// The learner's tokens per second, one sample per new learner report.
    pub tokens_per_s: VecDeque<f64>,
    /// The learner's loss, one sample per new learner report.
    pub loss: VecDeque<f64>,
    /// The last learner report sampled (id, time, step): a report repeated by later polls is
    /// not sampled again, so the learner's sparklines move at the learner's pace.
    last_report: Option<(String, i64, u64)>,
}

impl App {
    /// An empty view of the coordinator at `addr` (nothing polled yet).
    pub fn new(addr: impl Into<String>, retry_every: Option<Duration>) -> App {
        App { addr: addr.into(), retry_every, ..App::default() }
    }

    /// Folds in one poll's outcome, received at `now_unix_ms`.
    pub fn observe(&mut self, polled: Result<v1::ClusterStatsResponse, String>, now_unix_ms: i64) {
        self.now_unix_ms = now_unix_ms;
        let stats = match polled {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        self.error = None;
        self.last_ok_unix_ms = Some(now_unix_ms);
        push(&mut self.episodes_per_s, stats.episodes_per_s_1m);
        if let Some(l) = &stats.learner {
            let report = (l.learner_id.clone(), l.updated_unix_ms, l.step);
            if self.last_report.as_ref() != Some(&report) {
                push(&mut self.tokens_per_s, l.tokens_per_s);
                push(&mut self.loss, l.loss);
                self.last_report = Some(report);
            }
        }
        self.stats = Some(stats);
    }
}

fn push(history: &mut VecDeque<f64>, v: f64) {
    if !v.is_finite() {
        return;
    }
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(v);
}

/// The newest `width` samples as sparkline bars on a 0..=100 scale. `from_min` scales between
/// the window's minimum and maximum (a loss moves in a narrow band far from zero; drawn from
/// zero its bars would all look full); otherwise bars start at zero (a rate of 0 is no bar).
fn bars(history: &VecDeque<f64>, width: u16, from_min: bool) -> Vec<u64> {
    let skip = history.len().saturating_sub(width as usize);
    let window: Vec<f64> = history.iter().skip(skip).copied().collect();
    let hi = window.iter().copied().fold(f64::MIN, f64::max);
    let lo = if from_min { window.iter().copied().fold(f64::MAX, f64::min) } else { 0.0 };
    window
        .iter()
        .map(|v| {
            if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                // A flat window: an even line at half height (nothing for a rate stuck at zero).
                if from_min { 50 } else if hi > 0.0 { 100 } else { 0 }
            } else if from_min {
                // Never 0, so the window's minimum still shows as a bar.
                (1.0 + (v - lo) / (hi - lo) * 99.0).round() as u64
            } else {
                ((v - lo) / (hi - lo) * 100.0).round() as u64
            }
        })
        .collect()
}

/// The current time, Unix ms.
fn now_unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An age for people: `4s`, `3m05s`, `2h10m`.
fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A count or rate for people: `950`, `12.3k`, `4.56M`, `1.20G`.
fn si(v: f64) -> String {
    let a = v.abs();
    if a < 1e3 {
        if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
    } else if a < 1e6 {
        format!("{:.1}k", v / 1e3)
    } else if a < 1e9 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.2}G", v / 1e9)
    }
}

/// `k1 v1 · k2 v2`, keys sorted, or `none` when empty.
fn counts<'a>(map: impl IntoIterator<Item = (&'a String, &'a u64)>, lower: bool) -> String {
    let mut v: Vec<(String, u64)> = map.into_iter().map(|(k, n)| (if lower { k.to_lowercase() } else { k.clone() }, *n)).collect();
    if v.is_empty() {
        return "none yet".into();
    }
    v.sort();
    v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(" · ")
}

/// The colour of a task state.
fn state_color(state: &str) -> Color {
    match state {
        "queued" => Color::Yellow,
        "leased" => Color::Blue,
        "running" => Color::Cyan,
        "done" => Color::Green,
        "failed" => Color::Red,
        _ => Color::DarkGray,
    }
}

fn panel(title: &str) -> Block<'_> {
    Block::bordered().title(Span::styled(format!(" {title} "), Style::new().add_modifier(Modifier::BOLD)))
}

/// Draws the whole view into `frame`.
pub fn render(frame: &mut Frame<'_>, app: &App) {
    let [header, top, workers] = Layout::vertical([Constraint::Length(1), Constraint::Length(12), Constraint::Min(3)]).areas(frame.area());
    render_header(frame, header, app);
    let [tasks, middle, learner] = Layout::horizontal([Constraint::Percentage(32), Constraint::Percentage(30), Constraint::Percentage(38)]).areas(top);
    let [throughput, stream] = Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(middle);
    let empty = v1::ClusterStatsResponse::default();
    let stats = app.stats.as_ref().unwrap_or(&empty);
    render_tasks(frame, tasks, stats);
    render_throughput(frame, throughput, app, stats);
    render_stream(frame, stream, stats);
    render_learner(frame, learner, app, stats);
    render_workers(frame, workers, app, stats);
}

fn render_header(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let time = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(app.now_unix_ms.max(0) as u64));
    let mut spans = vec![
        Span::styled(" agentmill top ", Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        Span::raw(format!(" {}  {time}  ", app.addr)),
    ];
    match (&app.error, app.last_ok_unix_ms) {
        (Some(e), last_ok) => {
            let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
            spans.push(Span::styled(format!("ERROR {e}"), Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)));
            if let Some(every) = app.retry_every {
                spans.push(Span::raw(format!(" — retrying every {}", humantime::format_duration(every))));
            }
            if let Some(t) = last_ok {
                spans.push(Span::raw(format!(" (figures from {} ago)", age(app.now_unix_ms - t))));
            }
        }
        (None, Some(_)) => {
            spans.push(Span::styled("connected", Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)));
            if app.retry_every.is_some() {
                spans.push(Span::raw("  q quits".to_string()).dark_gray());
            }
        }
        (None, None) => spans.push(Span::styled("connecting…", Style::new().fg(Color::Yellow))),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_tasks(frame: &mut Frame<'_>, area: Rect, stats: &v1::ClusterStatsResponse) {
    let block = panel("tasks");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let total: u64 = stats.tasks_by_state.values().sum();
    // Label, count, then a bar: the state's share of all tasks.
    let bar_width = inner.width.saturating_sub(20) as u64;
    let mut states: Vec<(String, u64)> = STATES.iter().map(|s| (s.to_string(), stats.tasks_by_state.get(*s).copied().unwrap_or(0))).collect();
    let mut others: Vec<(String, u64)> = stats.tasks_by_state.iter().filter(|(k, _)| !STATES.contains(&k.as_str())).map(|(k, v)| (k.clone(), *v)).collect();
    others.sort();
    states.extend(others);
    let mut lines: Vec<Line<'_>> = states
        .into_iter()
        .map(|(state, n)| {
            let len = if total == 0 { 0 } else { (n * bar_width).div_ceil(total) } as usize;
            let color = state_color(&state);
            Line::from(vec![Span::raw(format!(" {state:<10}{n:>7} ")), Span::styled("█".repeat(len), Style::new().fg(color))])
        })
        .collect();
    lines.push(Line::from(format!(" {:<10}{total:>7}", "total")).bold());
    lines.push(Line::from(vec![Span::raw(" results ").bold(), Span::raw(counts(&stats.results_by_resolution, true))]));
    lines.push(Line::from(vec![Span::raw(" exits ").bold(), Span::raw(counts(&stats.results_by_exit_reason, false))]));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn render_throughput(frame: &mut Frame<'_>, area: Rect, app: &App, stats: &v1::ClusterStatsResponse) {
    let block = panel("throughput");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [rate, spark, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(3)]).areas(inner);
    let line = Line::from(vec![
        Span::raw(" episodes/s ").bold(),
        Span::styled(format!("{:.2}", stats.episodes_per_s_1m), Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        Span::raw(format!(" (1m)  {:.2} (10m)", stats.episodes_per_s_10m)),
    ]);
    frame.render_widget(Paragraph::new(line), rate);
    let spark = Rect { x: spark.x + 1, width: spark.width.saturating_sub(2), ..spark };
    frame.render_widget(Sparkline::default().data(bars(&app.episodes_per_s, spark.width, false)).max(100).style(Style::new().fg(Color::Cyan)), spark);
    let active: u64 = stats.workers.iter().map(|w| u64::from(w.active_leases)).sum();
    let capacity: u64 = stats.workers.iter().map(|w| u64::from(w.capacity.map(|c| c.episodes).unwrap_or(0))).sum();
    let lines = vec![
        Line::from(format!(" leases {} granted · {} expired", stats.leases_granted, stats.leases_expired)),
        Line::from(format!(" stale results refused {}", stats.stale_results_refused)),
        Line::from(format!(" episodes {active}/{capacity} slots on {} workers", stats.workers.len())),
    ];
    frame.render_widget(Paragraph::new(lines), rest);
}

fn render_stream(frame: &mut Frame<'_>, area: Rect, stats: &v1::ClusterStatsResponse) {
    let block = panel("stream");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lag_style = if stats.stream_lag > 0 { Style::new().fg(Color::Yellow) } else { Style::new() };
    let lines = vec![
        Line::from(vec![Span::raw(" length ").bold(), Span::raw(format!("{} records", stats.stream_length))]),
        Line::from(vec![Span::raw(" lag    ").bold(), Span::styled(stats.stream_lag.to_string(), lag_style), Span::raw(" not yet trained")]),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

fn render_learner(frame: &mut Frame<'_>, area: Rect, app: &App, stats: &v1::ClusterStatsResponse) {
    let block = panel("learner");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(l) = &stats.learner else {
        let lines = vec![
            Line::from(" no learner reporting").fg(Color::Yellow),
            Line::from(" (a running learner reports every few seconds; a report older than a minute is dropped)").dark_gray(),
        ];
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    };
    // Records by kind may take two lines in a narrow panel.
    let rows: [Rect; 8] = Layout::vertical([1, 1, 1, 1, 1, 1, 2, 1].map(Constraint::Length)).areas(inner);
    let label = |s: &'static str| Span::raw(s).bold();
    let text = |frame: &mut Frame<'_>, area: Rect, spans: Vec<Span<'_>>| frame.render_widget(Paragraph::new(Line::from(spans)), area);
    let id = if l.learner_id.is_empty() { "?".to_string() } else { l.learner_id.clone() };
    text(frame, rows[0], vec![label(" id "), Span::raw(id), label(" on "), Span::raw(l.device.clone())]);
    text(frame, rows[1], vec![label(" step "), Span::raw(l.step.to_string()), label("  tokens trained "), Span::raw(si(l.tokens_trained as f64))]);
    // A figure on the left, its sparkline to the right.
    let split = |r: Rect| -> [Rect; 2] { Layout::horizontal([Constraint::Length(20), Constraint::Min(0)]).areas(r) };
    let [left, right] = split(rows[2]);
    text(frame, left, vec![label(" tokens/s "), Span::styled(si(l.tokens_per_s), Style::new().fg(Color::Cyan))]);
    frame.render_widget(Sparkline::default().data(bars(&app.tokens_per_s, right.width, false)).max(100).style(Style::new().fg(Color::Cyan)), right);
    let [left, right] = split(rows[3]);
    text(frame, left, vec![label(" loss "), Span::styled(format!("{:.4}", l.loss), Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD))]);
    frame.render_widget(Sparkline::default().data(bars(&app.loss, right.width, true)).max(100).style(Style::new().fg(Color::Magenta)), right);
    let mut spans = vec![label(" lr "), Span::raw(format!("{:.2e}", l.lr)), label("  grad norm "), Span::raw(format!("{:.3}", l.grad_norm))];
    if let Some(eval) = l.eval_loss {
        // The held-out loss (eval_fraction), short enough for the panel's width.
        spans.extend([label("  eval "), Span::raw(format!("{eval:.3}"))]);
    }
    text(frame, rows[4], spans);
    let mfu = if l.device.to_ascii_lowercase().contains("cpu") {
        "n/a on CPU".to_string()
    } else if l.mfu > 0.0 {
        format!("{:.1}%", l.mfu * 100.0)
    } else {
        "n/a".to_string()
    };
    text(frame, rows[5], vec![label(" MFU "), Span::raw(mfu), label("  packing "), Span::raw(format!("{:.1}%", l.packing_efficiency * 100.0))]);
    // Wrapped between kinds, never inside one ("env_pass" on one line, its count on the next).
    let mut records = vec![Line::from(vec![label(" records ")])];
    for (i, item) in counts(&l.records_by_kind, false).split(" · ").enumerate() {
        let item = if i == 0 { item.to_string() } else { format!(" · {item}") };
        let full = records.last().is_some_and(|line| line.width() + item.chars().count() > rows[6].width as usize);
        if full {
            records.push(Line::from(format!("   {}", item.trim_start_matches(" · "))));
        } else if let Some(line) = records.last_mut() {
            line.push_span(Span::raw(item));
        }
    }
    frame.render_widget(Paragraph::new(records), rows[6]);
    let report = if l.updated_unix_ms > 0 {
        let ms = app.now_unix_ms - l.updated_unix_ms;
        let style = if ms > 30_000 { Style::new().fg(Color::Yellow) } else { Style::new() };
        Span::styled(format!("{} ago", age(ms)), style)
    } else {
        Span::raw("at an unknown time")
    };
    text(frame, rows[7], vec![label(" reported "), report]);
}

fn render_workers(frame: &mut Frame<'_>, area: Rect, app: &App, stats: &v1::ClusterStatsResponse) {
    let mut workers: Vec<&v1::WorkerInfo> = stats.workers.iter().collect();
    workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
    // Borders and the header row take three lines.
    let fits = area.height.saturating_sub(3) as usize;
    let title = if workers.len() > fits { format!("workers {} (first {fits} shown)", workers.len()) } else { format!("workers {}", workers.len()) };
    let block = panel(&title);
    if workers.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(Paragraph::new(Line::from(" no workers attached").dark_gray()), inner);
        return;
    }
    let rows: Vec<Row<'_>> = workers
        .iter()
        .map(|w| {
            let mut labels: Vec<String> = w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let capacity = w.capacity.map(|c| c.episodes).unwrap_or(0);
            let heartbeat = if w.last_heartbeat_unix_ms > 0 { format!("{} ago", age(app.now_unix_ms - w.last_heartbeat_unix_ms)) } else { "-".into() };
            let mut flags = Vec::new();
            if w.cordoned {
                flags.push(Span::styled("cordoned ", Style::new().fg(Color::Yellow)));
            }
            if w.draining {
                flags.push(Span::styled("draining ", Style::new().fg(Color::Yellow)));
            }
            if w.backpressured {
                flags.push(Span::styled("back-pressured", Style::new().fg(Color::Red)));
            }
            Row::new(vec![
                Cell::from(w.worker_id.clone()),
                Cell::from(w.host.clone()),
                Cell::from(labels.join(",")),
                Cell::from(format!("{}/{capacity}", w.active_leases)),
                Cell::from(w.credits.to_string()),
                Cell::from(heartbeat),
                Cell::from(Line::from(flags)),
            ])
        })
        .collect();
    let width = |f: fn(&v1::WorkerInfo) -> usize, min: usize, max: usize| Constraint::Length(workers.iter().map(|w| f(w)).max().unwrap_or(0).clamp(min, max) as u16);
    let widths = [
        width(|w| w.worker_id.chars().count(), 6, 32),
        width(|w| w.host.chars().count(), 4, 24),
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(23),
    ];
    let header = Row::new(["worker", "host", "labels", "episodes", "credits", "heartbeat", "flags"]).style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    frame.render_widget(Table::new(rows, widths).header(header).block(block).column_spacing(2), area);
}

/// Draws `app` into a `width` × `height` `TestBackend` and returns the screen as text, one line
/// per row with trailing blanks trimmed (what `agentmill top --once` prints).
pub fn render_text(app: &App, width: u16, height: u16) -> String {
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height));
    let Ok(_) = terminal.draw(|f| render(f, app));
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for row in buffer.content.chunks(buffer.area.width.max(1) as usize) {
        // The cells a wide character covers hold blanks that are part of the character.
        let mut line = String::new();
        let mut covered = 0u16;
        for cell in row {
            if covered == 0 {
                line.push_str(cell.symbol());
            }
            covered = covered.max(cell.cell_width()).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Asks the coordinator for its stats once, giving up after `timeout`.
pub async fn poll(client: &mut Client, timeout: Duration) -> Result<v1::ClusterStatsResponse, String> {
    match tokio::time::timeout(timeout, client.cluster_stats(v1::ClusterStatsRequest {})).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(format!("{}: {}", s.code(), s.message())),
        Err(_) => Err(format!("ClusterStats did not answer within {}", humantime::format_duration(timeout))),
    }
}

/// How long one poll may take: at least a few seconds, so a slow answer is not called a failure.
fn poll_timeout(interval: Duration) -> Duration {
    interval.max(Duration::from_secs(5))
}

/// One poll, as a view (for `agentmill top --once`): its `error` is set when the poll failed.
pub async fn snapshot(client: &mut Client, addr: &str) -> App {
    let mut app = App::new(addr, None);
    let polled = poll(client, poll_timeout(Duration::ZERO)).await;
    app.observe(polled, now_unix_ms());
    app
}

/// Restores the terminal when dropped, so every return path (`?` included) gives it back.
#[derive(Debug)]
struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// What the keyboard reader tells the loop.
#[derive(Debug)]
enum Input {
    Quit,
    Redraw,
    Failed(String),
}

/// Runs the live view until q, Esc or Ctrl-C; polls every `interval`.
pub async fn run(client: Client, addr: String, interval: Duration) -> anyhow::Result<()> {
    if interval < MIN_INTERVAL {
        bail!("--interval must be at least {}", humantime::format_duration(MIN_INTERVAL));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!("stdout is not a terminal; for one frame as text (logs, scripts) use `agentmill top --once`");
    }
    // try_init also installs a panic hook that restores the terminal before the panic prints.
    let terminal = ratatui::try_init();
    let _restore = RestoreTerminal;
    let mut terminal = terminal.context("cannot switch the terminal to full-screen mode")?;
    live(&mut terminal, client, addr, interval).await
}

async fn live(terminal: &mut DefaultTerminal, client: Client, addr: String, interval: Duration) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let (keys_tx, mut keys) = mpsc::channel(16);
    let reader = {
        let stop = stop.clone();
        std::thread::Builder::new().name("top-keys".into()).spawn(move || read_keys(&keys_tx, &stop)).context("starting the keyboard reader")?
    };
    let (polls_tx, mut polls) = mpsc::channel(1);
    let poller = tokio::spawn(poll_forever(client, interval, polls_tx));
    let mut app = App::new(addr, Some(interval));
    let result = loop {
        app.now_unix_ms = now_unix_ms();
        if let Err(e) = terminal.draw(|f| render(f, &app)) {
            break Err(anyhow::Error::new(e).context("drawing to the terminal"));
        }
        tokio::select! {
            input = keys.recv() => match input {
                Some(Input::Quit) | None => break Ok(()),
                Some(Input::Redraw) => {}
                Some(Input::Failed(e)) => break Err(anyhow::anyhow!("reading the keyboard: {e}")),
            },
            Some((polled, at)) = polls.recv() => app.observe(polled, at),
        }
    };
    poller.abort();
    stop.store(true, Ordering::Relaxed);
    // The reader notices `stop` within one of its 100 ms waits.
    let _ = reader.join();
    result
}

/// Polls every `interval` and sends each outcome with its time, until the view is gone.
async fn poll_forever(mut client: Client, interval: Duration, tx: mpsc::Sender<(Result<v1::ClusterStatsResponse, String>, i64)>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let polled = poll(&mut client, poll_timeout(interval)).await;
        if tx.send((polled, now_unix_ms())).await.is_err() {
            return;
        }
    }
}

/// Reads the keyboard on its own thread (crossterm's reads block) until `stop` is set.
fn read_keys(tx: &mpsc::Sender<Input>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let input = match event::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => match event::read() {
                Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => match k.code {
                    KeyCode::Char('q') | KeyCode::Esc => Input::Quit,
                    // Raw mode turns Ctrl-C into a key press instead of SIGINT.
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Input::Quit,
                    _ => continue,
                },
                Ok(Event::Resize(..)) => Input::Redraw,
                Ok(_) => continue,
                Err(e) => Input::Failed(e.to_string()),
            },
            Err(e) => Input::Failed(e.to_string()),
        };
        let last = !matches!(input, Input::Redraw);
        if tx.blocking_send(input).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_750_000_000_000;

    fn stats() -> v1::ClusterStatsResponse {
        let worker = |id: &str, host: &str, labels: &[(&str, &str)], active, draining, backpressured| v1::WorkerInfo {
            worker_id: id.into(),
            host: host.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            capacity: Some(v1::Capacity { episodes: 8, init: 2, run: 8, grade: 2, synth: 1 }),
            active_leases: active,
            credits: 8 - active,
            connected_at_unix_ms: T0 - 600_000,
            last_heartbeat_unix_ms: T0 - 3_000,
            draining,
            backpressured,
            cached_images: 3,
            cordoned: false,
        };
        v1::ClusterStatsResponse {
            tasks_by_state: [("queued", 4), ("running", 2), ("done", 17), ("failed", 1)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            workers: vec![worker("w-zeta", "gpu-node-2", &[("gpu", "h100")], 5, false, true), worker("w-alpha", "cpu-node-1", &[("pool", "cpu"), ("arch", "x86")], 2, true, false)],
            episodes_per_s_1m: 0.75,
            episodes_per_s_10m: 0.5,
            results_by_resolution: [("FULL", 9), ("NO", 6), ("PARTIAL", 2)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            results_by_exit_reason: [("submitted", 15), ("max_steps", 2)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            leases_granted: 40,
            leases_expired: 3,
            stale_results_refused: 1,
            stream_length: 1234,
            stream_lag: 56,
            cordoned_workers: vec![],
            learner: Some(v1::LearnerStatus {
                learner_id: "trainer-1:4242".into(),
                device: "Cpu".into(),
                step: 1200,
                tokens_trained: 3_456_789,
                tokens_per_s: 1520.0,
                loss: 2.345_67,
                lr: 1e-5,
                grad_norm: 0.875,
                mfu: 0.0,
                records_by_kind: [("env_pass", 9), ("env_fail", 8), ("ctx", 30)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                packing_efficiency: 0.935,
                updated_unix_ms: T0 - 2_000,
                eval_loss: Some(2.5),
            }),
        }
    }

    /// The screen with runs of blanks collapsed, so assertions read like the figures.
    fn flat(text: &str) -> String {
        text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
    }

    fn app_with(s: v1::ClusterStatsResponse) -> App {
        let mut app = App::new("http://10.0.0.5:50051", Some(Duration::from_secs(1)));
        app.observe(Ok(s), T0);
        app
    }

    #[test]
    fn the_screen_shows_tasks_results_throughput_and_stream() {
        let screen = render_text(&app_with(stats()), 120, 40);
        let f = flat(&screen);
        for want in ["queued 4", "leased 0", "running 2", "done 17", "failed 1", "cancelled 0", "total 24"] {
            assert!(f.contains(want), "{want:?} missing from\n{screen}");
        }
        assert!(f.contains("results full 9 · no 6 · partial 2"), "{screen}");
        assert!(f.contains("exits max_steps 2 · submitted 15"), "{screen}");
        assert!(f.contains("episodes/s 0.75 (1m) 0.50 (10m)"), "{screen}");
        assert!(f.contains("leases 40 granted · 3 expired"), "{screen}");
        assert!(f.contains("stale results refused 1"), "{screen}");
        assert!(f.contains("episodes 7/16 slots on 2 workers"), "{screen}");
        assert!(f.contains("length 1234 records"), "{screen}");
        assert!(f.contains("lag 56 not yet trained"), "{screen}");
        assert!(f.contains("http://10.0.0.5:50051 2025-06-15T15:06:40Z connected"), "{screen}");
        assert_eq!(screen.lines().count(), 40);
        assert!(screen.lines().all(|l| l.chars().count() <= 120));
    }

    #[test]
    fn the_learner_panel_shows_its_report_and_no_mfu_on_cpu() {
        let f = flat(&render_text(&app_with(stats()), 120, 40));
        for want in ["id trainer-1:4242 on Cpu", "step 1200 tokens trained 3.46M", "tokens/s 1.5k", "loss 2.3457", "lr 1.00e-5 grad norm 0.875 eval 2.500", "MFU n/a on CPU packing 93.5%", "records ctx 30 · env_fail 8 · env_pass 9", "reported 2s ago"] {
            assert!(f.contains(want), "{want:?} missing from\n{f}");
        }
        let mut gpu = stats();
        if let Some(l) = gpu.learner.as_mut() {
            l.device = "Cuda(0)".into();
            l.mfu = 0.4123;
            l.records_by_kind = [("env_pass", 212), ("env_fail", 377), ("ctx", 1290)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        }
        let f = flat(&render_text(&app_with(gpu), 120, 40));
        assert!(f.contains("MFU 41.2%"), "{f}");
        // A long records line wraps between kinds, not inside one.
        assert!(f.contains("records ctx 1290 · env_fail 377 │") && f.contains("│ env_pass 212 │"), "{f}");
    }

    #[test]
    fn without_a_learner_the_panel_says_so() {
        let f = flat(&render_text(&app_with(v1::ClusterStatsResponse { learner: None, ..stats() }), 120, 40));
        assert!(f.contains("no learner reporting"), "{f}");
        assert!(!f.contains("loss"), "{f}");
    }

    #[test]
    fn workers_are_sorted_by_id_with_labels_load_and_flags() {
        let screen = render_text(&app_with(stats()), 120, 40);
        let f = flat(&screen);
        assert!(f.contains("workers 2"), "{screen}");
        let alpha = f.find("w-alpha cpu-node-1 arch=x86,pool=cpu 2/8 6 3s ago draining").unwrap_or_else(|| panic!("w-alpha's row missing from\n{screen}"));
        let zeta = f.find("w-zeta gpu-node-2 gpu=h100 5/8 3 3s ago back-pressured").unwrap_or_else(|| panic!("w-zeta's row missing from\n{screen}"));
        assert!(alpha < zeta, "workers are sorted by id:\n{screen}");
        let none = flat(&render_text(&app_with(v1::ClusterStatsResponse { workers: vec![], ..stats() }), 120, 40));
        assert!(none.contains("no workers attached"), "{none}");
    }

    #[test]
    fn a_failed_poll_shows_in_the_header_and_keeps_the_last_figures() {
        let mut app = app_with(stats());
        app.observe(Err("Unavailable: tcp connect error:\n  Connection refused".into()), T0 + 7_000);
        let screen = render_text(&app, 160, 40);
        let header = screen.lines().next().unwrap_or_default();
        assert!(header.contains("ERROR Unavailable: tcp connect error: Connection refused — retrying every 1s (figures from 7s ago)"), "{header}");
        assert!(!header.contains("connected"), "{header}");
        assert!(flat(&screen).contains("queued 4"), "the last good figures stay:\n{screen}");

        app.observe(Ok(stats()), T0 + 8_000);
        let header = render_text(&app, 160, 40).lines().next().unwrap_or_default().to_string();
        assert!(header.contains("connected") && !header.contains("ERROR"), "{header}");
    }

    #[test]
    fn a_first_poll_that_fails_shows_no_figures() {
        let mut app = App::new("http://127.0.0.1:1", None);
        app.observe(Err("Unavailable: connection refused".into()), T0);
        let f = flat(&render_text(&app, 120, 40));
        assert!(f.lines().next().unwrap_or_default().contains("ERROR Unavailable: connection refused"), "{f}");
        assert!(!f.contains("retrying"), "a single poll does not retry: {f}");
        assert!(f.contains("queued 0"), "{f}");
        assert!(f.contains("no learner reporting"), "{f}");
    }

    #[test]
    fn histories_grow_per_poll_and_per_new_learner_report() {
        let mut app = App::new("a", None);
        for i in 0..3 {
            let mut s = stats();
            s.episodes_per_s_1m = f64::from(i);
            app.observe(Ok(s), T0 + i64::from(i) * 1000);
        }
        assert_eq!(app.episodes_per_s, [0.0, 1.0, 2.0]);
        assert_eq!(app.loss.len(), 1, "the same report polled thrice is one sample");
        let mut s = stats();
        if let Some(l) = s.learner.as_mut() {
            l.step += 1;
            l.loss = 2.2;
            l.updated_unix_ms += 5000;
        }
        app.observe(Ok(s), T0 + 5000);
        assert_eq!(app.loss, [2.345_67, 2.2]);
        assert_eq!(app.tokens_per_s.len(), 2);
        app.observe(Err("down".into()), T0 + 6000);
        assert_eq!(app.episodes_per_s.len(), 4, "a failed poll adds no sample");
        for i in 0..(HISTORY + 10) {
            app.observe(Ok(stats()), T0 + i as i64);
        }
        assert_eq!(app.episodes_per_s.len(), HISTORY);
    }

    #[test]
    fn sparkline_bars_scale_to_the_window() {
        let h: VecDeque<f64> = [0.0, 1.0, 2.0, 4.0].into_iter().collect();
        assert_eq!(bars(&h, 10, false), [0, 25, 50, 100]);
        assert_eq!(bars(&h, 2, false), [50, 100], "only the newest samples that fit");
        let loss: VecDeque<f64> = [2.5, 2.4, 2.3].into_iter().collect();
        assert_eq!(bars(&loss, 10, true), [100, 51, 1]);
        let flat: VecDeque<f64> = [0.0, 0.0].into_iter().collect();
        assert_eq!(bars(&flat, 10, false), [0, 0]);
        assert_eq!(bars(&loss.iter().take(1).copied().collect(), 10, true), [50]);
        assert!(bars(&VecDeque::new(), 10, true).is_empty());
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(age(4_900), "4s");
        assert_eq!(age(185_000), "3m05s");
        assert_eq!(age(7_800_000), "2h10m");
        assert_eq!(age(-5), "0s");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12.5), "12.5");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(4_560_000.0), "4.56M");
    }

    #[test]
    fn tiny_and_huge_screens_draw() {
        let app = app_with(stats());
        for (w, h) in [(1, 1), (20, 5), (60, 12), (300, 100)] {
            let screen = render_text(&app, w, h);
            assert_eq!(screen.lines().count(), h as usize);
        }
        let f = flat(&render_text(&App::new("x", None), 120, 40));
        assert!(f.contains("connecting…"), "{f}");
    }
}
