//! PR rows in daVinci-Dev's schema: JSONL and Parquet read the same rows, bad rows are named and
//! do not take their neighbours down, each filter drops what it should and the report counts it,
//! token counting loads a real `tokenizer.json`, and rows made from a git history as GitHub's
//! header-less patches still reproduce the post-PR files byte for byte.

mod synth_support;

use std::collections::BTreeMap;
use std::path::Path;

use agentmill_worker::synth::{
    ApproxTokenCounter, DiscussionKind, DropReason, Edit, EditOptions, FilterConfig, GitOptions, GitRepo, HfTokenCounter, PrRow,
    RecordMeta, RenderOptions, SynthConfig, SynthError, SynthInput, SynthReport, TemplateChoice, TokenCounter, apply_edits, build_edits,
    open_rows, parse_rows_jsonl, render_general, render_python_pr, run_offline,
};
use serde_json::{Value, json};
use synth_support::{TestRepo, check_golden};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/synth").join(name)
}

fn read_all(path: &Path) -> Vec<PrRow> {
    open_rows(path).expect("opens").map(|r| r.expect("a good row")).collect()
}

fn meta() -> RecordMeta {
    RecordMeta { task_id: "t".into(), worker: "w".into(), created_at: "2026-01-01T00:00:00Z".into() }
}

/// Runs the pipeline over rows given as JSON values; returns the report and the kept record ids.
fn run_rows(rows: &[Value], cfg: SynthConfig, tokens: Box<dyn TokenCounter>) -> (SynthReport, Vec<String>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("rows.jsonl");
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).expect("write rows");
    let mut out = Vec::new();
    let report = run_offline(&SynthInput::Rows { path, offset: 0, limit: 0 }, cfg, tokens, meta(), &mut out).expect("runs");
    let ids = String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str::<agentmill_proto::TrajectoryRecord>(l).expect("record").record_id)
        .collect();
    (report, ids)
}

#[test]
fn jsonl_and_parquet_read_the_same_rows() {
    let jsonl = read_all(&data("rows.jsonl"));
    let parquet = read_all(&data("rows.parquet"));
    assert_eq!(jsonl.len(), 3);
    assert_eq!(jsonl, parquet);

    let r = &jsonl[0];
    assert_eq!((r.repo_name.as_str(), r.pr_id.as_str(), r.merged, r.author.as_deref()), ("acme/calc", "12", Some(true), Some("ada")));
    assert_eq!(r.commits[0].refined_message.as_deref(), Some("Fix add() to add instead of subtract."));
    assert_eq!(r.commits[1].refined_message, None);
    assert_eq!(r.labels, ["bug"]);
    // Comments and reviews merged in time order; a review's comments follow it.
    let order: Vec<(DiscussionKind, &str)> = r.discussion.iter().map(|d| (d.kind, d.body.as_str())).collect();
    assert_eq!(
        order,
        [
            (DiscussionKind::Comment, "Ready for review."),
            (DiscussionKind::Review, "Looks right."),
            (DiscussionKind::ReviewComment, "Good catch."),
            (DiscussionKind::Comment, "Thanks!")
        ]
    );
    assert!(jsonl[1].issue().is_none() && jsonl[1].discussion.is_empty());
}

#[test]
fn golden_renders_of_an_enhanced_row() {
    let rows = read_all(&data("rows.jsonl"));
    let r = &rows[0];
    let edits = build_edits(&r.relevant_files, &r.commits, &EditOptions::default()).expect("edits");
    check_golden("row_enhanced_python.txt", &render_python_pr(r, &edits, &RenderOptions::default()));
    check_golden("row_enhanced_general.txt", &render_general(r, &RenderOptions::default()));
}

#[test]
fn header_less_patches_infer_creates_and_deletes_and_keep_carriage_returns() {
    let rows = read_all(&data("rows.jsonl"));
    let sub = build_edits(&rows[1].relevant_files, &rows[1].commits, &EditOptions::default()).expect("edits");
    assert!(
        matches!(&sub.commits[0].edits[1], Edit::Create { path, content } if path == "calc/sub_test.py" && content == "from calc.ops import sub\nassert sub(3, 1) == 2\n")
    );
    let win = build_edits(&rows[2].relevant_files, &rows[2].commits, &EditOptions::default()).expect("edits");
    assert!(matches!(&win.commits[0].edits[0], Edit::Delete { path } if path == "old.py"));
    assert_eq!(win.files_after, BTreeMap::from([("win/conf.py".to_string(), "x = 1\r\ny = 3\r\n".to_string())]));
    for r in &rows {
        let e = build_edits(&r.relevant_files, &r.commits, &EditOptions::default()).expect("edits");
        let mut files: BTreeMap<String, String> = r.relevant_files.iter().map(|f| (f.path.clone(), f.content.clone())).collect();
        apply_edits(&mut files, e.all_edits()).expect("applies");
        assert_eq!(files, e.files_after);
    }
}

#[test]
fn bad_rows_are_named_and_their_neighbours_survive() {
    let good = std::fs::read_to_string(data("rows.jsonl")).expect("fixture");
    let mut lines = good.lines();
    let (a, b) = (lines.next().expect("row 1"), lines.next().expect("row 2"));
    let text = format!("{a}\nnot json\n[1, 2]\n\n{{\"repo_name\": \"o/r\", \"commits\": [{{\"diffs\": [{{\"path\": 3}}]}}]}}\n{b}\n");
    let (rows, errors) = parse_rows_jsonl(text.as_bytes());
    assert_eq!(rows.iter().map(|r| r.pr_id.as_str()).collect::<Vec<_>>(), ["12", "13"]);
    let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(msgs[0].starts_with("PR row 2: (row): is not valid JSON"), "{msgs:?}");
    assert!(msgs[1].starts_with("PR row 3: (row): is a JSON array, not an object"), "{msgs:?}");
    assert_eq!(msgs[2], "PR row 5 (o/r): commits[0].diffs[0].path: is a JSON number; expected a string");

    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("rows.jsonl");
    std::fs::write(&path, &text).expect("write");
    let mut out = Vec::new();
    let cfg = SynthConfig { filter: FilterConfig::keep_all(), ..SynthConfig::default() };
    let report = run_offline(
        &SynthInput::Rows { path: path.clone(), offset: 0, limit: 0 },
        cfg.clone(),
        Box::new(ApproxTokenCounter::default()),
        meta(),
        &mut out,
    )
    .expect("runs");
    assert_eq!((report.rows_read, report.rows_unreadable, report.kept), (2, 3, 2));
    assert_eq!(report.errors.len(), 3);
    // offset/limit count rows as the file holds them, good or bad.
    let report =
        run_offline(&SynthInput::Rows { path, offset: 1, limit: 4 }, cfg, Box::new(ApproxTokenCounter::default()), meta(), &mut Vec::new())
            .expect("runs");
    assert_eq!((report.rows_read, report.rows_unreadable, report.kept), (1, 3, 1));
    // A missing file stops the run and names the file.
    let err = run_offline(
        &SynthInput::Rows { path: tmp.path().join("nope.jsonl"), offset: 0, limit: 0 },
        SynthConfig::default(),
        Box::new(ApproxTokenCounter::default()),
        meta(),
        &mut Vec::new(),
    )
    .expect_err("missing");
    assert!(matches!(&err, SynthError::Input { path, .. } if path.ends_with("nope.jsonl")), "{err}");
}

/// One Python file, one commit, one edit; `f` adjusts the row.
fn row(pr: u64, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "repo_name": "acme/lib", "pr_number": pr, "title": format!("PR {pr}"), "merged": true, "author": "ada",
        "relevant_files": [{"path": "lib/a.py", "content": "x = 1\n"}],
        "commits": [{"message": "change x", "diffs": [{"path": "lib/a.py", "patch": "@@ -1 +1 @@\n-x = 1\n+x = 2\n"}]}]
    });
    f(&mut v);
    v
}

fn py_files(n: usize) -> (Value, Value) {
    let files: Vec<Value> = (0..n).map(|i| json!({"path": format!("lib/m{i}.py"), "content": "x = 1\n"})).collect();
    let diffs: Vec<Value> = (0..n).map(|i| json!({"path": format!("lib/m{i}.py"), "patch": "@@ -1 +1 @@\n-x = 1\n+x = 2\n"})).collect();
    (Value::Array(files), json!([{"message": "many", "diffs": diffs}]))
}

/// The rows of the filter tests, each failing exactly one default filter (and the first two
/// passing all).
fn filter_rows() -> Vec<Value> {
    let (five_files, five_commits) = py_files(5);
    let (six_files, six_commits) = py_files(6);
    vec![
        row(1, |_| {}),
        row(2, |v| {
            v["relevant_files"] = five_files;
            v["commits"] = five_commits;
        }),
        row(3, |v| v["repo_name"] = json!("https://github.com/Django/Django.git")),
        row(4, |v| v["merged"] = json!(false)),
        row(5, |v| v["author"] = json!("dependabot[bot]")),
        row(6, |v| {
            v.as_object_mut().map(|o| o.remove("author"));
            v["user"] = json!({"login": "Renovate"});
        }),
        row(1, |v| v["title"] = json!("the same PR again")),
        row(8, |v| v["changed_files"] = json!(21)),
        row(9, |v| {
            v["relevant_files"] = json!([{"path": "README.md", "content": "x = 1\n"}]);
            v["commits"][0]["diffs"][0]["path"] = json!("README.md");
        }),
        row(10, |v| {
            v["relevant_files"] = six_files;
            v["commits"] = six_commits;
        }),
        row(11, |v| v["relevant_files"][0]["content"] = json!("y = 1\n")),
        row(
            12,
            |v| v["commits"][0]["diffs"] = json!([{"path": "logo.png", "patch": "diff --git a/logo.png b/logo.png\nindex 1..2 100644\nBinary files a/logo.png and b/logo.png differ\n"}]),
        ),
        row(13, |v| v["relevant_files"][0]["content"] = json!(format!("x = 1\n{}", "# padding\n".repeat(12_000)))),
    ]
}

#[test]
fn each_filter_drops_what_it_should_and_is_counted() {
    let rows = filter_rows();
    let (report, kept) = run_rows(&rows, SynthConfig::default(), Box::new(ApproxTokenCounter::default()));
    assert_eq!(kept, ["ctx:acme/lib:1", "ctx:acme/lib:2"]);
    let expected = [
        (DropReason::Blocklisted, 1),
        (DropReason::NotMerged, 1),
        (DropReason::Bot, 2),
        (DropReason::Duplicate, 1),
        (DropReason::TooManyChangedFiles, 1),
        (DropReason::TooFewPythonFiles, 1),
        (DropReason::TooManyPythonFiles, 1),
        (DropReason::BadDiff, 1),
        (DropReason::NoEdits, 1),
        (DropReason::TooManyTokens, 1),
    ];
    assert_eq!(report.dropped.iter().collect::<Vec<_>>(), expected);
    assert_eq!((report.rows_read, report.kept, report.dropped.total()), (13, 2, 11));
    assert!(report.errors.iter().any(|e| e.starts_with("acme/lib#11: commit 1: lib/a.py: hunk 1")), "{:?}", report.errors);
    let json = serde_json::to_value(&report).expect("report serializes");
    assert_eq!(json["dropped"]["too_many_tokens"], 1);
    assert_eq!(json["uniqueness_rate"], 1.0);
}

#[test]
fn filters_can_be_switched_off_one_by_one() {
    let rows = filter_rows();
    let base = FilterConfig::default();
    let cases: Vec<(FilterConfig, &str)> = vec![
        (FilterConfig { repo_blocklist: vec![], ..base.clone() }, "ctx:https://github.com/Django/Django.git:3"),
        (FilterConfig { merged_only: false, ..base.clone() }, "ctx:acme/lib:4"),
        (FilterConfig { drop_bots: false, ..base.clone() }, "ctx:acme/lib:6"),
        (FilterConfig { max_changed_files: 0, ..base.clone() }, "ctx:acme/lib:8"),
        (FilterConfig { min_python_files: 0, ..base.clone() }, "ctx:acme/lib:9"),
        (FilterConfig { max_python_files: 6, ..base.clone() }, "ctx:acme/lib:10"),
        (FilterConfig { max_tokens: 0, ..base.clone() }, "ctx:acme/lib:13"),
    ];
    for (filter, id) in cases {
        let (_, kept) = run_rows(&rows, SynthConfig { filter, ..SynthConfig::default() }, Box::new(ApproxTokenCounter::default()));
        assert!(kept.iter().any(|k| k == id), "{id} not kept: {kept:?}");
    }
    // Without dedupe both copies of PR 1 are kept, under the same record id.
    let (_, kept) = run_rows(
        &rows,
        SynthConfig { filter: FilterConfig { dedupe: false, ..base }, ..SynthConfig::default() },
        Box::new(ApproxTokenCounter::default()),
    );
    assert_eq!(kept.iter().filter(|k| *k == "ctx:acme/lib:1").count(), 2);
    // The general template renders the non-Python PR `auto` picks it for.
    let cfg = SynthConfig { template: TemplateChoice::Auto, filter: FilterConfig::keep_all(), ..SynthConfig::default() };
    let (report, _) = run_rows(&rows[8..9], cfg, Box::new(ApproxTokenCounter::default()));
    assert_eq!(report.templates, BTreeMap::from([("general".to_string(), 1)]));
}

#[test]
fn a_tokenizer_json_counts_tokens_for_the_length_filter() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("tokenizer.json");
    let vocab: serde_json::Map<String, Value> =
        ["[UNK]", "#", "Repository", "Context"].iter().enumerate().map(|(i, w)| (w.to_string(), json!(i))).collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(&path, tokenizer.to_string()).expect("write tokenizer");
    let counter = HfTokenCounter::from_file(&path).expect("loads");
    assert_eq!(counter.count("# Repository Context"), 3);
    assert_eq!(counter.count("a b, c"), 4, "Whitespace splits punctuation off");
    assert_eq!(ApproxTokenCounter::default().count(&"x".repeat(32)), 10);

    // The filter uses it: PR 1 of the filter rows renders to well under 200 tokens, not 40.
    let rows = &filter_rows()[..1];
    let cfg = |max_tokens| SynthConfig { filter: FilterConfig { max_tokens, ..FilterConfig::default() }, ..SynthConfig::default() };
    let (report, kept) = run_rows(rows, cfg(200), Box::new(HfTokenCounter::from_file(&path).expect("loads")));
    assert_eq!((kept.len(), report.token_counter.ends_with("tokenizer.json")), (1, true));
    let (report, _) = run_rows(rows, cfg(40), Box::new(HfTokenCounter::from_file(&path).expect("loads")));
    assert_eq!(report.dropped.get(DropReason::TooManyTokens), 1);

    std::fs::write(&path, "{\"model\": 1}").expect("write");
    let err = HfTokenCounter::from_file(&path).expect_err("broken tokenizer");
    assert!(err.to_string().starts_with(&format!("tokenizer {}", path.display())), "{err}");
}

/// Turns a git diff section into what GitHub's API gives: hunks only, no final newline. Renames
/// and binary files keep their headers (hunks alone cannot say them).
fn github_patch(patch: &str) -> String {
    if patch.contains("\nrename from ") || patch.contains("Binary files ") {
        return patch.to_string();
    }
    let hunks = patch.find("\n@@").map_or("", |i| &patch[i + 1..]);
    hunks.strip_suffix('\n').unwrap_or(hunks).to_string()
}

#[test]
fn git_rows_as_github_patches_round_trip_byte_for_byte() {
    let repo = TestRepo::new("odd");
    let odd = "a = '\u{85}'\r\nb = '\u{2028}'\r\n\x0c\r\ndef f():\r\n    return '```'\r\n";
    repo.write("odd.py", odd);
    repo.write("tail.py", "x = 1\ny = 2");
    repo.write("gone.py", "z = 0\n");
    repo.write("fence.md", "````\n```\n````\n");
    repo.commit("base");
    repo.checkout_new("f");
    repo.write("odd.py", odd.replace("\u{2028}'\r\n", "\u{2028}\u{85}'\r\nc = 3\r\n"));
    repo.write("tail.py", "x = 1\ny = 3\n");
    std::fs::remove_file(repo.path().join("gone.py")).expect("rm");
    repo.write("fence.md", "````\n```python\n````\n");
    repo.write("new.py", "w = 1");
    repo.commit("change everything");
    repo.write("odd.py", odd.replace("\u{2028}'\r\n", "\u{2028}\u{85}'\r\nc = 4\r\n"));
    repo.write("tail.py", "x = 1\ny = 3");
    repo.commit("and again");
    repo.checkout("main");
    repo.merge("f", "Merge pull request #9 from a/f\n\nOdd bytes");

    let git = GitRepo::open(repo.path()).expect("opens");
    let opts = GitOptions::default();
    let pr = git.prs(&opts).expect("lists").next().expect("one PR").expect("reads");
    let mut value = serde_json::to_value(pr.row.to_contextual_pr()).expect("json");
    for c in value["commits"].as_array_mut().expect("commits") {
        for d in c["diffs"].as_array_mut().expect("diffs") {
            let p = github_patch(d["patch"].as_str().expect("patch"));
            d["patch"] = json!(p);
        }
    }
    let (rows, errors) = parse_rows_jsonl(format!("{value}\n").as_bytes());
    assert!(errors.is_empty(), "{errors:?}");
    let row = &rows[0];
    assert!(row.commits[0].diffs.iter().all(|d| d.patch.starts_with("@@")), "header-less");
    let edits = build_edits(&row.relevant_files, &row.commits, &EditOptions::default()).expect("edits");
    let mut files: BTreeMap<String, String> = row.relevant_files.iter().map(|f| (f.path.clone(), f.content.clone())).collect();
    apply_edits(&mut files, edits.all_edits()).expect("applies");
    let expect: BTreeMap<String, String> = ["fence.md", "new.py", "odd.py", "tail.py"]
        .iter()
        .map(|p| (p.to_string(), String::from_utf8(repo.show(&pr.head, p).expect("exists at head")).expect("utf8")))
        .collect();
    assert_eq!(files, expect);
    assert!(repo.show(&pr.head, "gone.py").is_none());
    assert!(matches!(&edits.commits[0].edits[..], [Edit::Delete { path }, ..] if path == "gone.py"));
    let text = render_python_pr(row, &edits, &RenderOptions::default());
    assert!(text.contains("fence.md\n`````\n````\n```\n````\n`````\n"), "a fence longer than the content's: {text}");
}
