//! Golden renders of hand-checked PRs, each made from a real git repository built here: a
//! multi-commit PR with an issue, a search block that needs context growth, a rename, a deletion
//! (with an added file), and a PR without an issue. Goldens live in `tests/data/synth/`;
//! `AGENTMILL_BLESS=1` rewrites them (then read every one before committing).

mod synth_support;

use agentmill_proto::RecordKind;
use agentmill_worker::synth::{
    ApproxTokenCounter, Edit, EditOptions, GitOptions, GitPr, GitRepo, IssueMap, PrEdits, RecordMeta, RenderOptions, SynthConfig,
    SynthInput, build_edits, render_general, render_python_pr, run_offline,
};
use synth_support::{TestRepo, assert_round_trip, check_golden};

const AREA: &str =
    "\"\"\"Areas of shapes.\"\"\"\n\nimport math\n\n\ndef square(s):\n    return s * s\n\n\ndef circle(r):\n    return math.pi * r * r\n";
const UTIL: &str = "\"\"\"Helpers.\"\"\"\n\nfrom shapes.legacy import clamp\n\n\ndef positive(x):\n    return clamp(x, 0, None)\n";
const LEGACY: &str = "\"\"\"Old helpers kept for compatibility.\"\"\"\n\n\ndef clamp(x, lo, hi):\n    if lo is not None and x < lo:\n        return lo\n    if hi is not None and x > hi:\n        return hi\n    return x\n\n\ndef sign(x):\n    return (x > 0) - (x < 0)\n";
const LOADER: &str = "    with open(path) as f:\n        data = f.read()\n        data = data.strip()\n        data = data.lower()\n        data = data.replace(\"-\", \"_\")\n        data = data.replace(\" \", \"_\")\n        data = data.replace(\".\", \"_\")\n        data = data.replace(\"/\", \"_\")\n    return data\n";
const OLD_API: &str = "from shapes.area import square\n\n\ndef area_of_square(s):\n    return square(s)\n";

fn loaders() -> String {
    format!("\"\"\"Loading shape names.\"\"\"\n\n\ndef load_a(path):\n{LOADER}\n\ndef load_b(path):\n{LOADER}")
}

fn build_repo() -> (TestRepo, Vec<String>) {
    let repo = TestRepo::new("shapes");
    repo.write("README.md", "# shapes\n\nCompute areas.\n");
    repo.write("shapes/__init__.py", "");
    repo.write("shapes/area.py", AREA);
    repo.write("shapes/util.py", UTIL);
    repo.write("shapes/legacy.py", LEGACY);
    repo.write("shapes/loaders.py", loaders());
    repo.write("shapes/old_api.py", OLD_API);
    repo.commit("Initial shapes");
    let mut merges = Vec::new();

    // #1: two commits, an issue.
    repo.checkout_new("perimeters");
    let area1 = AREA.replace("    return s * s\n", "    return s * s\n\n\ndef square_perimeter(s):\n    return 4 * s\n");
    repo.write("shapes/area.py", &area1);
    repo.commit("Add perimeter of a square");
    repo.write("shapes/area.py", format!("{area1}\n\ndef circle_perimeter(r):\n    return 2 * math.pi * r\n"));
    repo.write(
        "shapes/util.py",
        UTIL.replace(
            "from shapes.legacy import clamp\n",
            "from shapes.area import circle_perimeter, square_perimeter\nfrom shapes.legacy import clamp\n",
        ),
    );
    repo.commit("Add circle perimeter\n\nAnd import both perimeters in util.");
    repo.checkout("main");
    merges.push(repo.merge(
        "perimeters",
        "Merge pull request #1 from ada/perimeters\n\nAdd perimeter helpers\n\nAdds square_perimeter and circle_perimeter.\r\nFixes #11.",
    ));

    // #2: a change inside the second of two identical blocks.
    repo.checkout_new("tabs");
    let l = loaders();
    let at = l.rfind("data.replace(\" \", \"_\")").expect("second block");
    repo.write("shapes/loaders.py", format!("{}data.replace(\"\\t\", \"_\"){}", &l[..at], &l[at + "data.replace(\" \", \"_\")".len()..]));
    repo.commit("Replace tabs, not spaces, in load_b");
    repo.checkout("main");
    merges.push(repo.merge("tabs", "Merge pull request #2 from ada/tabs\n\nAccept tabs in load_b"));

    // #3: a rename with a change, and the import that follows it.
    repo.checkout_new("compat");
    repo.git(&["mv", "shapes/legacy.py", "shapes/compat.py"]);
    repo.write("shapes/compat.py", LEGACY.replace("Old helpers kept for compatibility.", "Compatibility helpers."));
    let util = repo.show("HEAD", "shapes/util.py").expect("util");
    repo.write("shapes/util.py", String::from_utf8(util).expect("utf8").replace("shapes.legacy", "shapes.compat"));
    repo.commit("Rename legacy to compat");
    repo.checkout("main");
    merges.push(repo.merge(
        "compat",
        "Merge pull request #3 from ada/compat\n\nRename legacy helpers\n\n`legacy` was never legacy; it is `compat` now.",
    ));

    // #4: a deletion and the file that replaces it.
    repo.checkout_new("api");
    repo.git(&["rm", "-q", "shapes/old_api.py"]);
    repo.write("shapes/api.py", "from shapes.area import circle, square\n\n__all__ = [\"circle\", \"square\"]\n");
    repo.commit("Replace old_api with api");
    repo.checkout("main");
    merges.push(repo.merge("api", "Merge pull request #4 from ada/api\n\nRemove the old API"));

    // #5: no issue.
    repo.checkout_new("docs");
    repo.write("README.md", "# shapes\n\nCompute areas and perimeters.\n");
    let area = String::from_utf8(repo.show("HEAD", "shapes/area.py").expect("area")).expect("utf8");
    repo.write("shapes/area.py", area.replace("\"\"\"Areas of shapes.\"\"\"", "\"\"\"Areas and perimeters of shapes.\"\"\""));
    repo.commit("Describe perimeters");
    repo.checkout("main");
    merges.push(repo.merge("docs", "Merge pull request #5 from ada/docs\n\nDocument perimeters"));
    (repo, merges)
}

fn issue_map(merges: &[String]) -> IssueMap {
    let text = format!(
        "{}\n{}\n",
        r#"{"pr": 1, "title": "No way to compute perimeters", "body": "Areas exist but perimeters do not.\r\nPlease add them.\r\n", "comments": [{"author": "lin", "body": "Squares and circles would be enough for now."}, {"author": "ada", "body": "On it."}]}"#,
        format_args!(r#"{{"commit": "{}", "title": "load_b ignores tabs", "body": "Names with tabs keep them."}}"#, &merges[1][..12]),
    );
    IssueMap::parse(text.as_bytes()).expect("issue map")
}

fn options(merges: &[String]) -> GitOptions {
    GitOptions {
        repo_name: "acme/shapes".into(),
        repo_description: "Areas and perimeters of simple shapes".into(),
        issues: issue_map(merges),
        ..GitOptions::default()
    }
}

fn prs() -> (TestRepo, Vec<(GitPr, PrEdits)>) {
    let (repo, merges) = build_repo();
    let git = GitRepo::open(repo.path()).expect("opens");
    let opts = options(&merges);
    let prs = git
        .prs(&opts)
        .expect("lists")
        .map(|p| {
            let p = p.expect("reads");
            let e = build_edits(&p.row.relevant_files, &p.row.commits, &EditOptions::default()).expect("edits");
            (p, e)
        })
        .collect();
    (repo, prs)
}

#[test]
fn golden_python_pr_renders() {
    let (repo, prs) = prs();
    let names = ["pr1_multi_commit.txt", "pr2_context_growth.txt", "pr3_rename.txt", "pr4_deletion.txt", "pr5_no_issue.txt"];
    assert_eq!(prs.len(), names.len());
    for ((pr, edits), name) in prs.iter().zip(names) {
        assert_round_trip(&repo, pr, edits);
        check_golden(name, &render_python_pr(&pr.row, edits, &RenderOptions::default()));
    }

    // What each golden is for.
    let (p1, e1) = &prs[0];
    assert_eq!((p1.row.commits.len(), p1.row.issue().map(|i| i.comments.len())), (2, Some(2)));
    let (_, e2) = &prs[1];
    assert_eq!((e2.stats.search_blocks, e2.stats.unique_as_diffed, e2.stats.unique_after_growth, e2.stats.max_growth_steps), (1, 0, 1, 3));
    let Edit::StrReplace { search, .. } = &e2.commits[0].edits[0] else { panic!("not a str_replace") };
    assert!(search.starts_with("def load_b(path):\n"), "grown up to the unique line: {search:?}");
    assert!(matches!(&prs[2].1.commits[0].edits[0], Edit::Rename { from, to } if from == "shapes/legacy.py" && to == "shapes/compat.py"));
    assert!(matches!(&prs[3].1.commits[0].edits[..], [Edit::Delete { path }, Edit::Create { .. }] if path == "shapes/old_api.py"));
    let text5 = render_python_pr(&prs[4].0.row, &prs[4].1, &RenderOptions::default());
    assert!(!text5.contains("# Issue"));
    assert!(e1.stats.uniqueness_rate() == 1.0);
}

#[test]
fn golden_general_render() {
    let (_repo, prs) = prs();
    check_golden("pr1_general.txt", &render_general(&prs[0].0.row, &RenderOptions::default()));
}

#[test]
fn the_offline_pipeline_writes_the_golden_texts_as_ctx_records() {
    let (repo, merges) = build_repo();
    let input = SynthInput::Git { path: repo.path().to_path_buf(), options: options(&merges) };
    let meta = RecordMeta { task_id: "synth-shapes".into(), worker: "test".into(), created_at: "2026-01-01T00:00:00Z".into() };
    let mut out = Vec::new();
    let report =
        run_offline(&input, SynthConfig::default(), Box::new(ApproxTokenCounter::default()), meta.clone(), &mut out).expect("runs");
    assert_eq!((report.rows_read, report.kept, report.dropped.total()), (5, 5, 0), "{report:?}");
    let records: Vec<agentmill_proto::TrajectoryRecord> =
        String::from_utf8(out.clone()).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("a record")).collect();
    let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["ctx:acme/shapes:1", "ctx:acme/shapes:2", "ctx:acme/shapes:3", "ctx:acme/shapes:4", "ctx:acme/shapes:5"]);
    let golden = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/synth/pr2_context_growth.txt")).expect("golden");
    let r2 = &records[1];
    let ctx = r2.ctx.as_ref().expect("ctx");
    assert_eq!(
        (r2.kind, r2.schema.as_str(), ctx.template.as_str(), ctx.text.as_str()),
        (RecordKind::Ctx, "agentmill.trajectory/v1", "python_pr", golden.as_str())
    );
    assert_eq!(r2.provenance.repo, "acme/shapes");
    assert!(r2.is_trainable());

    // Deterministic: a second run writes the same bytes.
    let mut again = Vec::new();
    run_offline(&input, SynthConfig::default(), Box::new(ApproxTokenCounter::default()), meta, &mut again).expect("runs");
    assert_eq!(out, again);
}
