//! The input of a contextual-synthesis job as command-line flags, one definition for
//! `agentmill synth` (which submits it) and `agentmill-worker synth` (which runs it here).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::SynthSpec;

/// `--git PATH [--from REV] [--to REV] [--single-commits] [--issues FILE]` or `--rows FILE`,
/// and `--repo NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct SynthInput {
    /// A local git repository (first-parent merges become PRs).
    #[arg(long, conflicts_with = "rows", required_unless_present = "rows")]
    pub git: Option<PathBuf>,
    /// A JSONL or Parquet file of PR rows in daVinci-Dev's schema.
    #[arg(long)]
    pub rows: Option<PathBuf>,
    /// Git: exclusive start revision.
    #[arg(long, default_value = "")]
    pub from: String,
    /// Git: inclusive end revision.
    #[arg(long, default_value = "")]
    pub to: String,
    /// Git: treat non-merge first-parent commits as PRs too.
    #[arg(long)]
    pub single_commits: bool,
    /// The repository's name in the records (default: the input's name).
    #[arg(long, default_value = "")]
    pub repo: String,
    /// Git: a JSONL map of issue text per PR number or commit.
    #[arg(long)]
    pub issues: Option<PathBuf>,
}

impl SynthInput {
    /// The input's path: the repository or the rows file.
    pub fn path(&self) -> Option<&Path> {
        self.git.as_deref().or(self.rows.as_deref())
    }

    /// The job's name: `--repo`, else the input's file name without its extension.
    pub fn name(&self) -> String {
        if !self.repo.is_empty() {
            return self.repo.clone();
        }
        self.path().and_then(Path::file_stem).map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "repo".into())
    }

    /// The job's spec (`offset` and `limit` are the rows shard), each path written as `path`
    /// gives it (as typed, or made absolute).
    pub fn spec<E>(&self, offset: u64, limit: u64, path: impl Fn(&Path) -> Result<String, E>) -> Result<Option<SynthSpec>, E> {
        Ok(Some(match (&self.git, &self.rows) {
            (Some(repo), _) => SynthSpec::Git {
                repo_path: path(repo)?,
                from_rev: self.from.clone(),
                to_rev: self.to.clone(),
                single_commits: self.single_commits,
                issues_path: match &self.issues {
                    Some(i) => path(i)?,
                    None => String::new(),
                },
            },
            (None, Some(rows)) => SynthSpec::Rows { path: path(rows)?, offset, limit },
            (None, None) => return Ok(None),
        }))
    }

    /// The flags that say the same to another program.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(g) = &self.git {
            args.extend(["--git".into(), g.into(), "--from".into(), (&self.from).into(), "--to".into(), (&self.to).into()]);
            if self.single_commits {
                args.push("--single-commits".into());
            }
            if let Some(i) = &self.issues {
                args.extend(["--issues".into(), i.into()]);
            }
        }
        if let Some(r) = &self.rows {
            args.extend(["--rows".into(), r.into()]);
        }
        if !self.repo.is_empty() {
            args.extend(["--repo".into(), (&self.repo).into()]);
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        input: SynthInput,
    }

    #[test]
    fn flags_round_trip_and_name_the_spec() {
        let cli = Cli::parse_from(["x", "--git", "repos/demo.git", "--from", "v1", "--to", "v2", "--single-commits", "--issues", "i.jsonl"]);
        let again = Cli::parse_from(std::iter::once(OsString::from("x")).chain(cli.input.to_args()));
        assert_eq!(again.input, cli.input);
        assert_eq!(cli.input.name(), "demo");
        let spec = cli.input.spec(0, 0, |p| Ok::<_, ()>(format!("/abs/{}", p.display()))).expect("paths");
        let want = SynthSpec::Git { repo_path: "/abs/repos/demo.git".into(), from_rev: "v1".into(), to_rev: "v2".into(), single_commits: true, issues_path: "/abs/i.jsonl".into() };
        assert_eq!(spec, Some(want));
        let rows = Cli::parse_from(["x", "--rows", "prs.jsonl", "--repo", "o/r"]).input;
        assert_eq!((rows.name(), rows.spec(5, 10, |p| Ok::<_, ()>(p.display().to_string())).expect("paths")), ("o/r".into(), Some(SynthSpec::Rows { path: "prs.jsonl".into(), offset: 5, limit: 10 })));
        assert!(Cli::try_parse_from(["x", "--git", "a", "--rows", "b"]).is_err(), "one input");
        assert!(Cli::try_parse_from(["x"]).is_err(), "an input is required");
    }
}
