//! `agentmill report`: the end-of-run report ([`crate::report::Report`]), or with `--compare`
//! the episode tasks side by side by a label ([`crate::rounds`]).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::client::{Client, print_json};
use crate::report::{self, LearnerReport, Report};
use crate::rounds;

/// The flags of `agentmill report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only tasks carrying this label (key=value); repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The learner's output directory (or its summary.json).
    #[arg(long)]
    pub learner: Option<PathBuf>,
    /// Show the episode tasks side by side by the value of this label (e.g. `round`, as
    /// `deploy/quickstart.sh --closed-loop` labels its rounds): resolution, exits, steps,
    /// the model's tokens and the policy, model and weight version the records name.
    #[arg(long, value_name = "LABEL_KEY")]
    pub compare: Option<String>,
}

/// Prints the report (as JSON with `json`).
pub async fn run(client: &mut Client, args: &ReportArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let labels = report::parse_pairs("--label", &args.labels)?;
    let learner = args.learner.as_deref().map(LearnerReport::read).transpose()?;
    if let Some(key) = &args.compare {
        let columns = rounds::compare(client, key, &labels).await?;
        if json {
            print_json(out, &serde_json::json!({"compare": key, "columns": columns, "learner": learner}))?;
        } else {
            rounds::print(key, &columns, out)?;
            if let Some(l) = learner {
                Report { learner: Some(l), ..Default::default() }.print_learner(out)?;
            }
        }
        return Ok(0);
    }
    let (tasks, stats) = report::tasks_and_stats(client, &labels).await?;
    let r = Report::build(&tasks, &stats, learner);
    if json {
        print_json(out, &serde_json::to_value(&r)?)?;
    } else {
        r.print(out)?;
    }
    Ok(0)
}
