//! `agentmill top`: the live terminal view ([`crate::top`]), or with `--once` one frame as text.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use crate::client::Client;
use crate::top;

/// The flags of `agentmill top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// How often to ask the coordinator (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Print one frame as plain text and exit (for scripts and CI logs).
    #[arg(long)]
    pub once: bool,
    /// With --once: the frame's width in columns.
    #[arg(long, default_value_t = 120, requires = "once", value_parser = clap::value_parser!(u16).range(40..=1000))]
    pub width: u16,
    /// With --once: the frame's height in rows.
    #[arg(long, default_value_t = 40, requires = "once", value_parser = clap::value_parser!(u16).range(10..=1000))]
    pub height: u16,
}

/// With `--once`, prints one frame to `out` (exit code 1 when the poll failed); otherwise lets
/// go of `out` and runs the live view on the terminal until the operator quits.
pub async fn run(client: Client, addr: &str, args: &TopArgs, mut out: impl Write) -> anyhow::Result<i32> {
    if args.once {
        let mut client = client;
        let app = top::snapshot(&mut client, addr).await;
        write!(out, "{}", top::render_text(&app, args.width, args.height))?;
        return Ok(if app.error.is_some() { 1 } else { 0 });
    }
    // The live view draws to stdout itself: `out` may hold its lock.
    drop(out);
    top::run(client, addr.to_string(), args.interval).await?;
    Ok(0)
}
