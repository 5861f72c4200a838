//! Drawing an [`App`]: the panels of `agentmill top` in any ratatui frame, and a frame as text.

use std::collections::VecDeque;
use std::time::{Duration, UNIX_EPOCH};

use agentmill_proto::v1;
use ratatui::backend::TestBackend;
use ratatui::buffer::CellWidth;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, Wrap};
use ratatui::{Frame, Terminal};

use super::App;

/// The task states in lifecycle order (as `ClusterStats` names them).
const STATES: [&str; 6] = ["queued", "leased", "running", "done", "failed", "cancelled"];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::tests::{T0, stats};

    fn app_with(s: v1::ClusterStatsResponse) -> App {
        let mut app = App::new("http://10.0.0.5:50051", Some(Duration::from_secs(1)));
        app.observe(Ok(s), T0);
        app
    }

    /// A frame written in a test: the text after the opening line break.
    fn frame(text: &str) -> &str {
        text.strip_prefix('\n').unwrap_or(text)
    }

    #[test]
    fn the_screen_shows_every_panel_and_the_workers_sorted_by_id() {
        // The figures are the fixture's (T0 is 2025-06-15T15:06:40Z; the learner reported 2 s
        // and each worker beat 3 s before it); w-zeta comes first in the answer, w-alpha first
        // on screen.
        let screen = render_text(&app_with(stats()), 120, 40);
        let want = r#"
 agentmill top  http://10.0.0.5:50051  2025-06-15T15:06:40Z  connected  q quits
┌ tasks ─────────────────────────────┐┌ throughput ──────────────────────┐┌ learner ───────────────────────────────────┐
│ queued          4 ███              ││ episodes/s 0.75 (1m)  0.50 (10m) ││ id trainer-1:4242 on Cpu                   │
│ leased          0                  ││ █                                ││ step 1200  tokens trained 3.46M            │
│ running         2 ██               ││ █                                ││ tokens/s 1.5k      █                       │
│ done           17 ████████████     ││ leases 40 granted · 3 expired    ││ loss 2.3457        ▄                       │
│ failed          1 █                ││ stale results refused 1          ││ lr 1.00e-5  grad norm 0.875  eval 2.500    │
│ cancelled       0                  ││ episodes 7/16 slots on 2 workers ││ MFU n/a on CPU  packing 93.5%              │
│ total          24                  │└──────────────────────────────────┘│ records ctx 30 · env_fail 8 · env_pass 9   │
│ results full 9 · no 6 · partial 2  │┌ stream ──────────────────────────┐│                                            │
│ exits max_steps 2 · submitted 15   ││ length 1234 records              ││ reported 2s ago                            │
│                                    ││ lag    56 not yet trained        ││                                            │
└────────────────────────────────────┘└──────────────────────────────────┘└────────────────────────────────────────────┘
┌ workers 2 ───────────────────────────────────────────────────────────────────────────────────────────────────────────┐
│worker   host        labels                                    episodes   credits  heartbeat   flags                  │
│w-alpha  cpu-node-1  arch=x86,pool=cpu                         2/8        6        3s ago      draining               │
│w-zeta   gpu-node-2  gpu=h100                                  5/8        3        3s ago      back-pressured         │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
        assert_eq!(screen, frame(want), "the frame as drawn:\n{screen}");
    }

    #[test]
    fn on_a_gpu_the_learner_shows_mfu_and_its_records_wrap_between_kinds() {
        let mut gpu = stats();
        if let Some(l) = gpu.learner.as_mut() {
            l.device = "Cuda(0)".into();
            l.mfu = 0.4123;
            l.records_by_kind = [("env_pass", 212), ("env_fail", 377), ("ctx", 1290)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        }
        // 16 rows: the workers' panel keeps its header row, and its title says none fit.
        let screen = render_text(&app_with(gpu), 120, 16);
        let want = r#"
 agentmill top  http://10.0.0.5:50051  2025-06-15T15:06:40Z  connected  q quits
┌ tasks ─────────────────────────────┐┌ throughput ──────────────────────┐┌ learner ───────────────────────────────────┐
│ queued          4 ███              ││ episodes/s 0.75 (1m)  0.50 (10m) ││ id trainer-1:4242 on Cuda(0)               │
│ leased          0                  ││ █                                ││ step 1200  tokens trained 3.46M            │
│ running         2 ██               ││ █                                ││ tokens/s 1.5k      █                       │
│ done           17 ████████████     ││ leases 40 granted · 3 expired    ││ loss 2.3457        ▄                       │
│ failed          1 █                ││ stale results refused 1          ││ lr 1.00e-5  grad norm 0.875  eval 2.500    │
│ cancelled       0                  ││ episodes 7/16 slots on 2 workers ││ MFU 41.2%  packing 93.5%                   │
│ total          24                  │└──────────────────────────────────┘│ records ctx 1290 · env_fail 377            │
│ results full 9 · no 6 · partial 2  │┌ stream ──────────────────────────┐│   env_pass 212                             │
│ exits max_steps 2 · submitted 15   ││ length 1234 records              ││ reported 2s ago                            │
│                                    ││ lag    56 not yet trained        ││                                            │
└────────────────────────────────────┘└──────────────────────────────────┘└────────────────────────────────────────────┘
┌ workers 2 (first 0 shown) ───────────────────────────────────────────────────────────────────────────────────────────┐
│worker   host        labels                                    episodes   credits  heartbeat   flags                  │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
        assert_eq!(screen, frame(want), "the frame as drawn:\n{screen}");
    }

    #[test]
    fn without_a_learner_or_workers_their_panels_say_so() {
        let screen = render_text(&app_with(v1::ClusterStatsResponse { learner: None, workers: vec![], ..stats() }), 120, 16);
        let want = r#"
 agentmill top  http://10.0.0.5:50051  2025-06-15T15:06:40Z  connected  q quits
┌ tasks ─────────────────────────────┐┌ throughput ──────────────────────┐┌ learner ───────────────────────────────────┐
│ queued          4 ███              ││ episodes/s 0.75 (1m)  0.50 (10m) ││ no learner reporting                       │
│ leased          0                  ││ █                                ││ (a running learner reports every few       │
│ running         2 ██               ││ █                                ││seconds; a report older than a minute is    │
│ done           17 ████████████     ││ leases 40 granted · 3 expired    ││dropped)                                    │
│ failed          1 █                ││ stale results refused 1          ││                                            │
│ cancelled       0                  ││ episodes 0/0 slots on 0 workers  ││                                            │
│ total          24                  │└──────────────────────────────────┘│                                            │
│ results full 9 · no 6 · partial 2  │┌ stream ──────────────────────────┐│                                            │
│ exits max_steps 2 · submitted 15   ││ length 1234 records              ││                                            │
│                                    ││ lag    56 not yet trained        ││                                            │
└────────────────────────────────────┘└──────────────────────────────────┘└────────────────────────────────────────────┘
┌ workers 0 ───────────────────────────────────────────────────────────────────────────────────────────────────────────┐
│ no workers attached                                                                                                  │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
        assert_eq!(screen, frame(want), "the frame as drawn:\n{screen}");
    }

    #[test]
    fn a_failed_poll_shows_in_the_header_and_keeps_the_last_figures() {
        let mut app = app_with(stats());
        app.observe(Err("Unavailable: tcp connect error:\n  Connection refused".into()), T0 + 7_000);
        let screen = render_text(&app, 160, 16);
        let want = r#"
 agentmill top  http://10.0.0.5:50051  2025-06-15T15:06:47Z  ERROR Unavailable: tcp connect error: Connection refused — retrying every 1s (figures from 7s ago)
┌ tasks ──────────────────────────────────────────┐┌ throughput ──────────────────────────────────┐┌ learner ──────────────────────────────────────────────────┐
│ queued          4 █████                         ││ episodes/s 0.75 (1m)  0.50 (10m)             ││ id trainer-1:4242 on Cpu                                  │
│ leased          0                               ││ █                                            ││ step 1200  tokens trained 3.46M                           │
│ running         2 ███                           ││ █                                            ││ tokens/s 1.5k      █                                      │
│ done           17 █████████████████████         ││ leases 40 granted · 3 expired                ││ loss 2.3457        ▄                                      │
│ failed          1 ██                            ││ stale results refused 1                      ││ lr 1.00e-5  grad norm 0.875  eval 2.500                   │
│ cancelled       0                               ││ episodes 7/16 slots on 2 workers             ││ MFU n/a on CPU  packing 93.5%                             │
│ total          24                               │└──────────────────────────────────────────────┘│ records ctx 30 · env_fail 8 · env_pass 9                  │
│ results full 9 · no 6 · partial 2               │┌ stream ──────────────────────────────────────┐│                                                           │
│ exits max_steps 2 · submitted 15                ││ length 1234 records                          ││ reported 9s ago                                           │
│                                                 ││ lag    56 not yet trained                    ││                                                           │
└─────────────────────────────────────────────────┘└──────────────────────────────────────────────┘└───────────────────────────────────────────────────────────┘
┌ workers 2 (first 0 shown) ───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┐
│worker   host        labels                                                                            episodes   credits  heartbeat   flags                  │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
        assert_eq!(screen, frame(want), "the frame as drawn:\n{screen}");

        app.observe(Ok(stats()), T0 + 8_000);
        let screen = render_text(&app, 160, 16);
        let header = screen.lines().next().unwrap_or_default();
        assert_eq!(header, " agentmill top  http://10.0.0.5:50051  2025-06-15T15:06:48Z  connected  q quits", "{screen}");
    }

    #[test]
    fn a_first_poll_that_fails_shows_no_figures() {
        let mut app = App::new("http://127.0.0.1:1", None);
        app.observe(Err("Unavailable: connection refused".into()), T0);
        // A single poll (`--once`) retries nothing and has no "q quits".
        let screen = render_text(&app, 120, 16);
        let want = r#"
 agentmill top  http://127.0.0.1:1  2025-06-15T15:06:40Z  ERROR Unavailable: connection refused
┌ tasks ─────────────────────────────┐┌ throughput ──────────────────────┐┌ learner ───────────────────────────────────┐
│ queued          0                  ││ episodes/s 0.00 (1m)  0.00 (10m) ││ no learner reporting                       │
│ leased          0                  ││                                  ││ (a running learner reports every few       │
│ running         0                  ││                                  ││seconds; a report older than a minute is    │
│ done            0                  ││ leases 0 granted · 0 expired     ││dropped)                                    │
│ failed          0                  ││ stale results refused 0          ││                                            │
│ cancelled       0                  ││ episodes 0/0 slots on 0 workers  ││                                            │
│ total           0                  │└──────────────────────────────────┘│                                            │
│ results none yet                   │┌ stream ──────────────────────────┐│                                            │
│ exits none yet                     ││ length 0 records                 ││                                            │
│                                    ││ lag    0 not yet trained         ││                                            │
└────────────────────────────────────┘└──────────────────────────────────┘└────────────────────────────────────────────┘
┌ workers 0 ───────────────────────────────────────────────────────────────────────────────────────────────────────────┐
│ no workers attached                                                                                                  │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
        assert_eq!(screen, frame(want), "the frame as drawn:\n{screen}");
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
            assert!(screen.lines().all(|l| l.chars().count() <= w as usize), "{screen}");
        }
        // Before the first answer, at the narrowest width `--once` accepts.
        let screen = render_text(&App::new("x", None), 60, 12);
        let want = r#"
 agentmill top  x  1970-01-01T00:00:00Z  connecting…
┌ tasks ──────────┐┌ throughput ────┐┌ learner ────────────┐
│ queued          ││ episodes/s 0.00││ no learner reporting│
│0                ││                ││ (a running learner  │
│ leased          │└────────────────┘│reports every few    │
│0                │┌ stream ────────┐│seconds; a report    │
│ running         ││ length 0 record││older than a minute  │
│0                ││ lag    0 not ye││is dropped)          │
└─────────────────┘└────────────────┘└─────────────────────┘
┌ workers 0 ───────────────────────────────────────────────┐
│ no workers attached                                      │
└──────────────────────────────────────────────────────────┘
"#;
        assert_eq!(screen, frame(want), "the frame as drawn:\n{screen}");
    }
}
