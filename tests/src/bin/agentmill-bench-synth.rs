//! Contextual-synthesis throughput on a long git history, with 2 threads against 1 thread
//! measured in the same run.
//!
//!     cargo run --release -p agentmill-tests --bin agentmill-bench-synth -- [--commits 10000]
//!
//! 1. **Generate** (timed on its own) a repository in a temporary folder with `git fast-import`:
//!    a root commit of `--files` Python modules, then blocks of one direct commit on `main` and a
//!    feature branch of 1–4 commits touching a handful (1–4) of the modules — constants changed,
//!    lines inserted, functions appended, now and then a new test module — merged with
//!    `--no-ff`-style merge commits named as GitHub names them, until `--commits` commits.
//! 2. **Synthesize** every first-parent merge as a PR (the worker's git reader and
//!    [`Synthesizer`] with the default settings: the paper's filters and the Python-PR template),
//!    first on 1 thread over the whole history, then on 2 OS threads, each over one half of the
//!    merges (revision ranges `..M` and `M..`, M the middle merge).
//!
//! Reported: PRs rendered per second, MB read per second (bytes of the file snapshots and diffs
//! read from git), where the 1-thread time goes (reading git vs. filtering and rendering), and
//! the ratio 2 threads / 1 thread; the two runs must make the same records.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_worker::synth::{ApproxTokenCounter, GitOptions, GitRepo, Outcome, PrRow, RecordMeta, SynthConfig, SynthReport, Synthesizer};
use anyhow::{Context, bail, ensure};
use clap::Parser;

/// Flags.
#[derive(Debug, Parser)]
#[command(about = "Contextual-synthesis throughput on a generated git history (1 vs 2 threads)")]
struct Args {
    /// Commits in the generated history (merges included).
    #[arg(long, default_value_t = 10_000)]
    commits: usize,
    /// Python modules in the repository.
    #[arg(long, default_value_t = 40)]
    files: usize,
    /// Functions per module at the root commit (about 7 lines each).
    #[arg(long, default_value_t = 40)]
    functions: usize,
    /// Keep the generated repository here instead of a temporary folder.
    #[arg(long)]
    keep: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// Generation.

/// xorshift64*: deterministic, so every run benchmarks the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Func {
    name: String,
    mul: u64,
    add: u64,
    extra: Vec<String>,
}

struct Module {
    path: String,
    funcs: Vec<Func>,
}

impl Module {
    fn render(&self) -> String {
        let stem = self.path.trim_end_matches(".py").replace('/', ".");
        let mut out = format!("\"\"\"{stem}: generated for the synthesis benchmark.\"\"\"\n\nimport math\n");
        for f in &self.funcs {
            out.push_str(&format!(
                "\n\ndef {}(x, y=3):\n    \"\"\"Scale x by {} and shift it by {}.\"\"\"\n    total = x * {}\n    total += y + {}\n",
                f.name, f.mul, f.add, f.mul, f.add
            ));
            for line in &f.extra {
                out.push_str(&format!("    {line}\n"));
            }
            out.push_str("    return math.floor(total)\n");
        }
        out
    }

    /// One change of the kind PRs make; returns a few words for the commit message.
    fn mutate(&mut self, rng: &mut Rng, serial: usize) -> String {
        let i = rng.below(self.funcs.len());
        match rng.below(10) {
            0..=6 => {
                let f = &mut self.funcs[i];
                f.mul = 2 + rng.below(97) as u64;
                f.add = rng.below(1000) as u64;
                format!("retune {}", f.name)
            }
            7 | 8 => {
                let f = &mut self.funcs[i];
                let line = format!("total = total % {} if total > {} else total", 1000 + serial, 10 * serial);
                let at = rng.below(f.extra.len() + 1);
                f.extra.insert(at, line);
                format!("bound {}", f.name)
            }
            _ => {
                let stem = self.path.trim_end_matches(".py").rsplit('/').next().unwrap_or("m").to_string();
                let name = format!("{stem}_g{serial}");
                self.funcs.push(Func { name: name.clone(), mul: 2 + rng.below(97) as u64, add: rng.below(1000) as u64, extra: Vec::new() });
                format!("add {name}")
            }
        }
    }
}

/// Writes a `git fast-import` stream.
struct Stream<W: Write> {
    out: W,
    mark: u64,
    clock: u64,
    commits: usize,
    bytes: u64,
}

impl<W: Write> Stream<W> {
    fn data(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        writeln!(self.out, "data {}", bytes.len())?;
        self.out.write_all(bytes)?;
        self.out.write_all(b"\n")?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn blob(&mut self, content: &str) -> std::io::Result<u64> {
        self.mark += 1;
        writeln!(self.out, "blob\nmark :{}", self.mark)?;
        self.data(content.as_bytes())?;
        Ok(self.mark)
    }

    /// A commit on `branch` from `from` (and merging `merge`) setting `files` to blob marks.
    fn commit(&mut self, branch: &str, message: &str, from: Option<u64>, merge: Option<u64>, files: &[(String, u64)]) -> std::io::Result<u64> {
        self.mark += 1;
        self.clock += 60;
        self.commits += 1;
        let who = format!("Ada Dev <ada@example.com> {} +0000", self.clock);
        writeln!(self.out, "commit refs/heads/{branch}\nmark :{}\nauthor {who}\ncommitter {who}", self.mark)?;
        self.data(message.as_bytes())?;
        if let Some(f) = from {
            writeln!(self.out, "from :{f}")?;
        }
        if let Some(m) = merge {
            writeln!(self.out, "merge :{m}")?;
        }
        for (path, blob) in files {
            writeln!(self.out, "M 100644 :{blob} {path}")?;
        }
        self.out.write_all(b"\n")?;
        Ok(self.mark)
    }
}

struct Generated {
    commits: usize,
    merges: usize,
    stream_bytes: u64,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .context("running git (is it installed?)")?;
    ensure!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn generate(dir: &Path, args: &Args) -> anyhow::Result<Generated> {
    ensure!(args.files >= 4 && args.functions >= 1 && args.commits >= 3, "need --files ≥ 4, --functions ≥ 1, --commits ≥ 3");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    git(dir, &["init", "-q", "-b", "main"])?;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["fast-import", "--quiet", "--done"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .context("starting git fast-import")?;
    let stdin = child.stdin.take().context("fast-import's stdin")?;
    let mut s = Stream { out: BufWriter::with_capacity(1 << 20, stdin), mark: 0, clock: 1_600_000_000, commits: 0, bytes: 0 };
    let mut rng = Rng(0x5EED_1234_ABCD_0001);

    let mut modules: Vec<Module> = (0..args.files)
        .map(|k| {
            let pkg = ["core", "io", "util", "api"][k % 4];
            let path = format!("src/{pkg}/mod_{k:03}.py");
            let stem = format!("mod_{k:03}");
            let funcs = (0..args.functions)
                .map(|i| Func { name: format!("{stem}_f{i:02}"), mul: 2 + rng.below(97) as u64, add: rng.below(1000) as u64, extra: Vec::new() })
                .collect();
            Module { path, funcs }
        })
        .collect();
    let mut root = Vec::new();
    for m in &modules {
        let content = m.render();
        root.push((m.path.clone(), s.blob(&content)?));
    }
    let readme = s.blob("# bench-repo\n\nGenerated history for agentmill-bench-synth.\n")?;
    root.push(("README.md".into(), readme));
    let mut main = s.commit("main", "Initial import\n", None, None, &root)?;

    let mut merges = 0usize;
    let mut serial = 0usize;
    while s.commits < args.commits {
        // A direct commit on main.
        serial += 1;
        let k = rng.below(modules.len());
        let what = modules[k].mutate(&mut rng, serial);
        let blob = s.blob(&modules[k].render())?;
        main = s.commit("main", &format!("Hotfix: {what}\n"), Some(main), None, &[(modules[k].path.clone(), blob)])?;
        let remaining = args.commits - s.commits.min(args.commits);
        if remaining < 2 {
            // No room for a branch commit and its merge: the history ends in direct commits.
            continue;
        }
        // A feature branch of 1–4 commits over a handful of modules, then its merge.
        let pr = merges + 1;
        let mut touched: Vec<usize> = (0..1 + rng.below(4)).map(|_| rng.below(modules.len())).collect();
        touched.sort_unstable();
        touched.dedup();
        let branch_commits = (1 + rng.below(4)).min(remaining - 1);
        let mut head = main;
        let mut latest: Vec<(String, u64)> = Vec::new();
        let mut titles = Vec::new();
        for c in 0..branch_commits {
            let mut files = Vec::new();
            let mut words = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let k = touched[rng.below(touched.len())];
                for _ in 0..1 + rng.below(3) {
                    serial += 1;
                    words.push(modules[k].mutate(&mut rng, serial));
                }
                let blob = s.blob(&modules[k].render())?;
                files.retain(|(p, _): &(String, u64)| *p != modules[k].path);
                files.push((modules[k].path.clone(), blob));
            }
            if c == 0 && rng.below(8) == 0 {
                let path = format!("tests/test_feature_{pr}.py");
                let blob = s.blob(&format!("from src.core import mod_000\n\n\ndef test_feature_{pr}():\n    assert mod_000.mod_000_f00(1) is not None\n"))?;
                files.push((path, blob));
                words.push("add a test".into());
            }
            let body = if rng.below(3) == 0 { format!("\n\nPart {} of feature {pr}.\n", c + 1) } else { "\n".into() };
            let subject = words.join(", ");
            titles.push(subject.clone());
            head = s.commit("feature", &format!("{}{body}", capitalize(&subject)), Some(head), None, &files)?;
            for f in files {
                latest.retain(|(p, _)| *p != f.0);
                latest.push(f);
            }
        }
        let title = capitalize(titles.first().map(String::as_str).unwrap_or("changes"));
        let message = format!("Merge pull request #{pr} from dev/feature-{pr}\n\n{title}\n\nThis pull request touches {} modules.\n", touched.len());
        main = s.commit("main", &message, Some(main), Some(head), &latest)?;
        merges += 1;
    }
    s.out.write_all(b"done\n")?;
    s.out.flush()?;
    let stream_bytes = s.bytes;
    let commits = s.commits;
    drop(s);
    let status = child.wait().context("waiting for git fast-import")?;
    ensure!(status.success(), "git fast-import failed ({status})");
    let counted: usize = git(dir, &["rev-list", "--count", "main"])?.parse().context("rev-list --count")?;
    ensure!(counted == commits, "the repository has {counted} commits, the stream wrote {commits}");
    Ok(Generated { commits, merges, stream_bytes })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Synthesis.

/// One synthesis pass over a revision range.
struct Pass {
    prs: u64,
    bytes: u64,
    reading: Duration,
    synthesizing: Duration,
    wall: Duration,
    /// Wall time when half of `half_at` PRs were done (0: not asked).
    half: Duration,
    ids: Vec<String>,
    report: SynthReport,
}

/// Bytes read from git for a PR: its file snapshots and its diffs.
fn row_bytes(row: &PrRow) -> u64 {
    let files: usize = row.relevant_files.iter().map(|f| f.content.len()).sum();
    let diffs: usize = row.commits.iter().flat_map(|c| &c.diffs).map(|d| d.patch.len()).sum();
    (files + diffs) as u64
}

/// Synthesizes every PR of `opts`'s range; `half_at`: the PR count at which to note the time.
fn pass(dir: &Path, opts: &GitOptions, half_at: u64) -> anyhow::Result<Pass> {
    let started = Instant::now();
    let meta = RecordMeta { task_id: "bench".into(), worker: "bench".into(), created_at: "2026-01-01T00:00:00Z".into() };
    let mut synth = Synthesizer::new(SynthConfig::default(), Box::new(ApproxTokenCounter::default()), meta);
    let repo = GitRepo::open(dir)?;
    let mut out = Pass { prs: 0, bytes: 0, reading: Duration::ZERO, synthesizing: Duration::ZERO, wall: Duration::ZERO, half: Duration::ZERO, ids: Vec::new(), report: SynthReport::default() };
    let t = Instant::now();
    let mut prs = repo.prs(opts)?;
    out.reading += t.elapsed();
    loop {
        let t = Instant::now();
        let next = prs.next();
        out.reading += t.elapsed();
        let Some(pr) = next else { break };
        let pr = pr?;
        out.prs += 1;
        out.bytes += row_bytes(&pr.row);
        let t = Instant::now();
        if let Outcome::Kept(record) = synth.process(&pr.row) {
            out.ids.push(record.record_id);
        }
        out.synthesizing += t.elapsed();
        if out.prs == half_at {
            out.half = started.elapsed();
        }
    }
    out.report = synth.into_report();
    out.wall = started.elapsed();
    Ok(out)
}

fn rates(prs: u64, bytes: u64, wall: Duration) -> (f64, f64) {
    let s = wall.as_secs_f64().max(1e-9);
    (prs as f64 / s, bytes as f64 / s / 1e6)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir().context("creating a temporary folder")?;
    let dir = args.keep.clone().unwrap_or_else(|| tmp.path().join("bench-repo"));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(false) {
        bail!("{} exists and is not empty; name a new folder with --keep", dir.display());
    }
    println!("== contextual synthesis on a generated git history ==");
    println!("threads available: {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    let t = Instant::now();
    let generated = generate(&dir, &args)?;
    let gen_time = t.elapsed();
    println!(
        "generated: {} commits, {} first-parent merges, {} modules × {} functions in {:.1} s (git fast-import, {:.1} MB of blobs and messages)",
        generated.commits,
        generated.merges,
        args.files,
        args.functions,
        gen_time.as_secs_f64(),
        generated.stream_bytes as f64 / 1e6
    );

    // One thread over every merge.
    let candidates = GitRepo::open(&dir)?.candidates(&GitOptions::default())?;
    ensure!(candidates.len() >= 2, "the history has {} merges; generate more commits", candidates.len());
    let half = candidates.len() / 2;
    let one = pass(&dir, &GitOptions::default(), half as u64)?;
    let (prs_1, mb_1) = rates(one.prs, one.bytes, one.wall);
    let busy = (one.reading + one.synthesizing).as_secs_f64().max(1e-9);
    println!(
        "1 thread : {} PRs ({} kept) in {:.1} s — {:.1} PRs/s, {:.2} MB/s read ({:.1} MB); reading git {:.0}%, filtering + rendering {:.0}%",
        one.prs,
        one.report.kept,
        one.wall.as_secs_f64(),
        prs_1,
        mb_1,
        one.bytes as f64 / 1e6,
        100.0 * one.reading.as_secs_f64() / busy,
        100.0 * one.synthesizing.as_secs_f64() / busy
    );
    println!(
        "  its halves: the first {half} PRs in {:.1} s, the other {} in {:.1} s",
        one.half.as_secs_f64(),
        one.prs as usize - half,
        (one.wall - one.half).as_secs_f64()
    );
    if one.report.kept != one.prs {
        println!("  dropped: {:?}", one.report.dropped);
    }

    // Two threads, each over half of the merges.
    let middle = candidates[half - 1].commit.clone();
    let first = GitOptions { to_rev: middle.clone(), ..GitOptions::default() };
    let second = GitOptions { from_rev: middle, ..GitOptions::default() };
    let t = Instant::now();
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| pass(&dir, &first, 0));
        let b = scope.spawn(|| pass(&dir, &second, 0));
        (a.join(), b.join())
    });
    let wall_2 = t.elapsed();
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a?, b?),
        _ => bail!("a synthesis thread panicked"),
    };
    let (prs_2, mb_2) = rates(a.prs + b.prs, a.bytes + b.bytes, wall_2);
    println!(
        "2 threads: {} PRs ({} kept) in {:.1} s — {:.1} PRs/s, {:.2} MB/s read; shards {} PRs in {:.1} s and {} PRs in {:.1} s",
        a.prs + b.prs,
        a.report.kept + b.report.kept,
        wall_2.as_secs_f64(),
        prs_2,
        mb_2,
        a.prs,
        a.wall.as_secs_f64(),
        b.prs,
        b.wall.as_secs_f64()
    );
    let same = a.ids.iter().chain(&b.ids).eq(one.ids.iter()) && a.bytes + b.bytes == one.bytes;
    ensure!(same, "the 2-thread run made different records than the 1-thread run");
    println!("same records from both runs: yes ({} records)", one.ids.len());
    println!("ratio 2 threads / 1 thread: {:.2}× (PRs/s)", prs_2 / prs_1.max(1e-9));
    println!("generation {:.1} s, synthesis {:.1} s + {:.1} s", gen_time.as_secs_f64(), one.wall.as_secs_f64(), wall_2.as_secs_f64());
    Ok(())
}
