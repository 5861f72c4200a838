//! The live view: the terminal in full-screen mode, a poll every interval on its own task, the
//! keyboard read on its own thread, and a redraw on every answer, key or resize.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentmill_proto::connect::Client;
use agentmill_proto::v1;
use anyhow::{Context, bail};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use super::{App, now_unix_ms, render};

/// The shortest `--interval` accepted: faster polling only loads the coordinator.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

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
