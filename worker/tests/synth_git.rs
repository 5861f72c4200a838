//! Git-derived PRs: a repository with a real merge history — feature branches merged with
//! `--no-ff`, a rename, a deletion, an added file, a binary and a Latin-1 file, a branch that
//! merged main into itself — yields the expected PRs, snapshots and edits, and every PR's edits
//! reproduce its files byte for byte.

mod synth_support;

use agentmill_worker::synth::{Edit, EditOptions, EditStats, GitOptions, GitRepo, IssueMap, build_edits};
use synth_support::{TestRepo, assert_round_trip};

/// `\r\n` endings, NEL (U+0085), LINE SEPARATOR (U+2028), a form feed: what `str::lines`-style
/// splitters get wrong.
const CORE: &str = "# core parsing\r\nimport re\r\n\r\nNEL = '\u{85}'  # next line\r\nLS = '\u{2028}'  # line separator\r\n\x0c\r\ndef split(text):\r\n    return re.split('[\u{85}\u{2028}]', text)\r\n\r\ndef join(parts):\r\n    return ''.join(parts)\r\n";
const IO: &str = "SEP = 'a\rb'\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n";
const OLD: &str = "\"\"\"Old API.\"\"\"\n\n\ndef one():\n    return 1\n\n\ndef two():\n    return 2\n\n\ndef three():\n    return 3\n";
const GUIDE: &str = "# Guide\n\n```python\nprint(1)\n```\n\n````\nnested ``` fence\n````\n";

struct History {
    repo: TestRepo,
    c0: String,
    m1: String,
    c1: String,
    m2: String,
    c2: String,
    m3: String,
    feature_c: Vec<String>,
}

fn build_history() -> History {
    let repo = TestRepo::new("toolkit");
    repo.write("pkg/core.py", CORE);
    repo.write("pkg/io.py", IO);
    repo.write("pkg/old.py", OLD);
    repo.write("pkg/dead.py", "def dead():\n    pass\n");
    repo.write("pkg/latin.py", b"# caf\xe9\nX = 1\n".as_slice());
    repo.write("data/blob.bin", b"\x00\x01\x02binary\x00".as_slice());
    repo.write("docs/guide.md", GUIDE);
    repo.write("notes.txt", "alpha\nbeta\ngamma");
    let c0 = repo.commit("Initial import");

    // PR #1: two commits; the second edits a line the first added, and adds a file.
    repo.checkout_new("feature-a");
    repo.write(
        "pkg/core.py",
        CORE.replace("re.split('[\u{85}\u{2028}]', text)\r\n", "re.split('[\u{85}\u{2028}]', text, flags=0)\r\n    # \u{2028} kept\r\n"),
    );
    repo.write("notes.txt", "alpha\nbeta\ngamma delta");
    repo.commit("Pass flags to split");
    repo.write(
        "pkg/core.py",
        CORE.replace(
            "re.split('[\u{85}\u{2028}]', text)\r\n",
            "re.split('[\u{85}\u{2028}]', text, flags=0)\r\n    # \u{2028} and \u{85} kept\r\n",
        ),
    );
    repo.write("pkg/new_mod.py", "VALUE = 1\n");
    repo.commit("Document kept separators");
    repo.checkout("main");
    let m1 = repo.merge("feature-a", "Merge pull request #1 from dev/feature-a\n\nImprove core parsing\n\nHandles NEL and LS characters.");

    // A direct commit on main.
    repo.write("pkg/io.py", IO.replace("f.read()", "f.read().strip()"));
    let c1 = repo.commit("Tweak io");

    // PR #2: a rename with a change, a deletion, a fenced doc, then only binary/Latin-1 changes.
    repo.checkout_new("feature-b");
    repo.git(&["mv", "pkg/old.py", "pkg/compat.py"]);
    repo.write("pkg/compat.py", OLD.replace("return 2", "return 2.0"));
    repo.commit("Move old to compat");
    repo.git(&["rm", "-q", "pkg/dead.py"]);
    repo.write("docs/guide.md", GUIDE.replace("print(1)", "print(2)"));
    repo.commit("Remove dead code");
    repo.write("data/blob.bin", b"\x00\x01\x03binary\x00".as_slice());
    repo.write("pkg/latin.py", b"# caf\xe9 cr\xe8me\nX = 1\n".as_slice());
    repo.commit("Update assets");
    repo.checkout("main");
    let m2 = repo.merge("feature-b", "Merge pull request #2 from dev/feature-b\n\nMove old to compat\n\nAlso removes dead code.");

    // PR without a number: a branch that merges main into itself half-way.
    repo.checkout_new("feature-c");
    repo.write("pkg/io.py", IO.replace("f.read()", "f.read().strip()").replace("def read", "def read_all"));
    let fc1 = repo.commit("Rename read");
    repo.checkout("main");
    repo.write("notes.txt", "ALPHA\nbeta\ngamma delta");
    let c2 = repo.commit("Update notes");
    repo.checkout("feature-c");
    let fc2 = repo.merge("main", "Merge branch 'main' into feature-c");
    repo.write("notes.txt", "ALPHA\nbeta\ngamma delta\nepsilon\n");
    let fc3 = repo.commit("Extend notes");
    repo.checkout("main");
    let m3 = repo.merge("feature-c", "Merge branch 'feature-c'");
    History { repo, c0, m1, c1, m2, c2, m3, feature_c: vec![fc1, fc2, fc3] }
}

fn kinds(edits: &[Edit]) -> Vec<String> {
    edits
        .iter()
        .map(|e| match e {
            Edit::StrReplace { path, .. } => format!("replace {path}"),
            Edit::Insert { path, .. } => format!("insert {path}"),
            Edit::Create { path, .. } => format!("create {path}"),
            Edit::Delete { path } => format!("delete {path}"),
            Edit::Rename { from, to } => format!("rename {from} {to}"),
        })
        .collect()
}

#[test]
fn merges_become_prs_with_their_snapshots_and_edits() {
    let h = build_history();
    let git = GitRepo::open(h.repo.path()).expect("opens");
    let opts = GitOptions::default();
    let prs: Vec<_> = git.prs(&opts).expect("lists").collect::<Result<_, _>>().expect("reads");
    let ids: Vec<&str> = prs.iter().map(|p| p.row.pr_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", h.m3.as_str()]);
    let titles: Vec<&str> = prs.iter().map(|p| p.row.title.as_str()).collect();
    assert_eq!(titles, ["Improve core parsing", "Move old to compat", "Merge branch 'feature-c'"]);
    assert_eq!(prs[0].row.body, "Handles NEL and LS characters.");
    assert!(prs.iter().all(|p| p.row.repo_name == "toolkit" && p.row.merged == Some(true) && p.row.author.as_deref() == Some("Ada Dev")));

    // PR #1: forked at the root commit; two commits; core.py and notes.txt relevant; new_mod.py added.
    let p1 = &prs[0];
    assert_eq!((p1.commit.as_str(), p1.snapshot.as_str(), p1.commits.len()), (h.m1.as_str(), h.c0.as_str(), 2));
    let paths: Vec<&str> = p1.row.relevant_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["notes.txt", "pkg/core.py"]);
    assert_eq!(p1.row.relevant_files[1].content, CORE);
    assert_eq!(p1.row.relevant_files[0].content, "alpha\nbeta\ngamma");
    assert_eq!(
        p1.row.commits.iter().map(|c| c.message.as_str()).collect::<Vec<_>>(),
        ["Pass flags to split\n", "Document kept separators\n"]
    );
    let e1 = build_edits(&p1.row.relevant_files, &p1.row.commits, &EditOptions::default()).expect("edits");
    assert_eq!(kinds(&e1.commits[0].edits), ["replace notes.txt", "replace pkg/core.py"]);
    assert_eq!(kinds(&e1.commits[1].edits), ["replace pkg/core.py", "create pkg/new_mod.py"]);
    let Edit::StrReplace { search, replace, .. } = &e1.commits[0].edits[0] else { unreachable!() };
    // No trailing newline on either side, kept exactly.
    assert_eq!((search.as_str(), replace.as_str()), ("alpha\nbeta\ngamma", "alpha\nbeta\ngamma delta"));
    assert_round_trip(&h.repo, p1, &e1);

    // PR #2: forked after the direct commit; rename, delete; binary and Latin-1 files left out.
    let p2 = &prs[1];
    assert_eq!((p2.snapshot.as_str(), p2.commits.len()), (h.c1.as_str(), 3));
    let paths: Vec<&str> = p2.row.relevant_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["docs/guide.md", "pkg/dead.py", "pkg/old.py"]);
    assert_eq!(p2.row.skipped_files, 2, "data/blob.bin (binary) and pkg/latin.py (not UTF-8)");
    let e2 = build_edits(&p2.row.relevant_files, &p2.row.commits, &EditOptions::default()).expect("edits");
    assert_eq!(kinds(&e2.commits[0].edits), ["rename pkg/old.py pkg/compat.py", "replace pkg/compat.py"]);
    assert_eq!(kinds(&e2.commits[1].edits), ["delete pkg/dead.py", "replace docs/guide.md"]);
    assert!(e2.commits[2].edits.is_empty());
    assert_eq!(e2.stats.skipped_binary, 1);
    assert_round_trip(&h.repo, p2, &e2);

    // The third PR: its commits are the branch's first-parent chain, the inner merge one step.
    let p3 = &prs[2];
    assert_eq!(p3.commits, h.feature_c);
    assert_eq!(p3.snapshot, h.m2);
    assert_eq!(p3.head, h.feature_c[2]);
    let paths: Vec<&str> = p3.row.relevant_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["notes.txt", "pkg/io.py"]);
    let e3 = build_edits(&p3.row.relevant_files, &p3.row.commits, &EditOptions::default()).expect("edits");
    assert_eq!(kinds(&e3.commits[1].edits), ["replace notes.txt"], "the inner merge brings main's change to notes.txt");
    assert_round_trip(&h.repo, p3, &e3);
    assert_eq!(p3.row.base_commit, h.m2);
}

#[test]
fn single_commits_and_ranges() {
    let h = build_history();
    let git = GitRepo::open(h.repo.path()).expect("opens");
    let opts = GitOptions { single_commits: true, repo_name: "acme/toolkit".into(), ..GitOptions::default() };
    let prs: Vec<_> = git.prs(&opts).expect("lists").collect::<Result<_, _>>().expect("reads");
    let ids: Vec<&str> = prs.iter().map(|p| p.row.pr_id.as_str()).collect();
    assert_eq!(ids, [h.c0.as_str(), "1", h.c1.as_str(), "2", h.c2.as_str(), h.m3.as_str()]);
    assert!(prs.iter().all(|p| p.row.repo_name == "acme/toolkit"));
    let mut total = EditStats::default();
    for pr in &prs {
        let e = build_edits(&pr.row.relevant_files, &pr.row.commits, &EditOptions::default()).expect("edits");
        assert_round_trip(&h.repo, pr, &e);
        total.add(&e.stats);
    }
    // The root commit: nothing relevant, everything created (its binary file skipped).
    assert!(prs[0].row.relevant_files.is_empty() && prs[0].row.base_commit.is_empty());
    assert_eq!(prs[2].row.title, "Tweak io");
    assert_eq!(total.uniqueness_rate(), 1.0);
    println!("uniqueness on the history repo: {total:?}");

    // A range: only what follows the first merge, up to the second.
    let opts = GitOptions { from_rev: h.m1.clone(), to_rev: h.m2.clone(), single_commits: true, ..GitOptions::default() };
    let ids: Vec<String> = git.prs(&opts).expect("lists").map(|p| p.expect("reads").row.pr_id).collect();
    assert_eq!(ids, [h.c1.clone(), "2".to_string()]);
}

#[test]
fn issues_attach_by_number_and_commit() {
    let h = build_history();
    let map = format!(
        "{{\"pr\": 2, \"title\": \"old.py is misnamed\", \"body\": \"Call it compat.\"}}\n{{\"commit\": \"{}\", \"title\": \"io names\", \"comments\": [{{\"author\": \"bo\", \"body\": \"+1\"}}]}}\n",
        &h.m3[..10]
    );
    let opts = GitOptions { issues: IssueMap::parse(map.as_bytes()).expect("map"), ..GitOptions::default() };
    let git = GitRepo::open(h.repo.path()).expect("opens");
    let prs: Vec<_> = git.prs(&opts).expect("lists").collect::<Result<_, _>>().expect("reads");
    assert!(prs[0].row.related_issue.is_none());
    assert_eq!(prs[1].row.related_issue.as_ref().map(|i| i.body.as_str()), Some("Call it compat."));
    assert_eq!(prs[2].row.related_issue.as_ref().map(|i| (i.title.as_str(), i.comments[0].author.as_str())), Some(("io names", "bo")));
}

#[test]
fn a_folder_that_is_not_a_repository_is_named() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let err = GitRepo::open(tmp.path()).expect_err("not a repo");
    assert!(err.to_string().contains("is not a git repository"), "{err}");
}

/// A range's revisions never reach git as options: `to_rev = "--output=FILE"` made `git
/// rev-list` open FILE for writing (truncating any file the worker can write). Revisions
/// starting with `-`, and names that are no commit, are refused naming the field; the file is
/// untouched.
#[test]
fn a_revision_that_looks_like_an_option_is_refused_and_writes_nothing() {
    let h = build_history();
    let git = GitRepo::open(h.repo.path()).expect("opens");
    let victim = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(victim.path(), "precious\n").expect("write");
    for (from, to, field) in [
        (String::new(), format!("--output={}", victim.path().display()), "to_rev"),
        (format!("--output={}", victim.path().display()), String::new(), "from_rev"),
        (String::new(), "no-such-branch".to_string(), "to_rev"),
        (h.m1.clone(), "--all".to_string(), "to_rev"),
    ] {
        let opts = GitOptions { from_rev: from, to_rev: to.clone(), single_commits: true, ..GitOptions::default() };
        let err = git.prs(&opts).err().unwrap_or_else(|| panic!("{field} {to:?} is refused"));
        assert!(err.to_string().starts_with(field), "{err}");
        assert!(err.to_string().contains("may not start with '-'"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(victim.path()).expect("read"), "precious\n", "the file was not opened for writing");
    // Real revisions still work, by name and by id.
    let opts = GitOptions { from_rev: h.m1[..12].to_string(), to_rev: "HEAD".into(), single_commits: true, ..GitOptions::default() };
    assert!(git.prs(&opts).expect("lists").count() > 0);
}
