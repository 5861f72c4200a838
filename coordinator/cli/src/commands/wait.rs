//! `agentmill wait`: a progress line until every task (or every task with the labels) is done,
//! failed or cancelled.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use crate::client::{Client, print_json};
use crate::report;

/// The flags of `agentmill wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Only tasks carrying this label (key=value); repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Give up after this long (e.g. 90s, 10m).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// How often to ask.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll: Duration,
}

/// Waits, with a progress bar on stderr (hidden with `json`); fails on `--timeout` naming what
/// is still open.
pub async fn run(client: &mut Client, args: &WaitArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let labels = report::parse_pairs("--label", &args.labels)?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} rollouts  {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let tasks = report::wait_finished(client, &labels, args.poll, args.timeout, |p, s| {
        bar.set_length(p.rollouts);
        bar.set_position(p.rollouts_finished);
        let learner = s.learner.as_ref().map(|l| format!("  learner step {} loss {:.3} {:.0} tok/s", l.step, l.loss, l.tokens_per_s)).unwrap_or_default();
        bar.set_message(format!("{}/{} tasks  {:.2} episodes/s  stream {} (lag {}){learner}", p.tasks_finished, p.tasks, s.episodes_per_s_1m, s.stream_length, s.stream_lag));
        bar.tick();
    })
    .await;
    bar.finish();
    let tasks = tasks?;
    let p = report::Progress::of(&tasks);
    if json {
        print_json(out, &serde_json::json!({"tasks": p.tasks, "rollouts": p.rollouts}))?;
    } else {
        writeln!(out, "{} tasks ({} rollouts) finished", p.tasks, p.rollouts)?;
    }
    Ok(0)
}
