//! The multilingual corpus (`deploy/multilingual/`): a Go, a Rust, a JavaScript and a Java
//! project, each a SWE-bench row of a repository SWE-bench's spec table does not know, so the row
//! carries its own spec (`test_cmd`, `log_parser`, `language`). The worker grades them as SWE-bench
//! 4.x grades its Multilingual rows: the non-Python eval script (`make_eval_script_list_common`),
//! the language's parser (`parse_log_gotest`, `parse_log_cargo`, `parse_log_tap`,
//! `parse_log_maven`) between the test output markers, SWE-bench's rules. Real Docker, in the
//! images `deploy/multilingual/images.sh` builds (deploy/setup.sh runs it); this test builds
//! nothing and fails loudly, naming the script, where an image is missing.

use std::collections::BTreeMap;
use std::process::Command;

use agentmill_proto::{ExitReason, Resolution, TestStatus};
use agentmill_tests::corpus::{listed, records, run_worker, statuses, stderr_of};
use agentmill_tests::{binary, docker_or_skip, unique, workspace};
use serde_json::Value;

const GO: &str = "agentmill__intervals-1";
const RUST: &str = "agentmill__verscmp-1";
const JS: &str = "agentmill__formqs-1";
const JAVA: &str = "agentmill__csvlite-1";

fn corpus() -> std::path::PathBuf {
    workspace().join("deploy/multilingual")
}

/// The rows of `deploy/multilingual/tasks.jsonl` by instance id.
fn rows() -> BTreeMap<String, Value> {
    agentmill_tests::corpus::rows(&corpus().join("tasks.jsonl"))
}

fn source(id: &str, name: &str) -> String {
    agentmill_testkit::read(&corpus().join("src").join(id).join(name))
}

fn images_or_fail() {
    agentmill_tests::corpus::images_or_fail(&rows(), "build it with deploy/multilingual/images.sh (deploy/setup.sh runs it)");
}

/// Maven's test command as SWE-bench's spec tables write Java's: one `mvn test -Dtest=…` per
/// listed test, FAIL_TO_PASS first (`parse_log_maven` names each `BUILD SUCCESS|FAILURE` after the
/// `-Dtest=` traced before it).
fn maven_commands(row: &Value) -> Value {
    let tests = listed(row, "FAIL_TO_PASS").into_iter().chain(listed(row, "PASS_TO_PASS"));
    tests.map(|t| Value::String(format!("mvn test -B -Dtest={t}"))).collect()
}

/// The row's test command as the eval script holds it: a list's commands one per line.
fn test_cmd_lines(row: &Value) -> String {
    match &row["test_cmd"] {
        Value::Array(cmds) => cmds.iter().map(|c| c.as_str().expect("a command")).collect::<Vec<_>>().join("\n"),
        other => other.as_str().expect("test_cmd").to_string(),
    }
}

/// The rows are SWE-bench rows made from `src/`: the family named, the language's runner, parser
/// and image, and the test ids as each parser writes them (Go's `Test/sub`, libtest's bare
/// names, TAP's `- name`, Maven's `package.Class#method` from `-Dtest=`).
#[test]
fn the_rows_carry_each_languages_runner_parser_and_image() {
    let rows = rows();
    assert_eq!(rows.keys().map(String::as_str).collect::<Vec<_>>(), [JAVA, JS, GO, RUST]);
    for (id, language, test_cmd, parser, image) in [
        (GO, "go", Value::from("go test -v ./..."), "parse_log_gotest", "agentmill/sandbox-go:bookworm"),
        (RUST, "rust", Value::from("cargo test --no-fail-fast"), "parse_log_cargo", "agentmill/sandbox-rust:bookworm"),
        (JS, "javascript", Value::from("node --test --test-reporter=tap"), "parse_log_tap", "agentmill/sandbox-node:bookworm"),
        (JAVA, "java", maven_commands(&rows[JAVA]), "parse_log_maven", "agentmill/sandbox-java:bookworm"),
    ] {
        let row = &rows[id];
        assert_eq!(row["family"], "swe-bench", "{id}");
        assert_eq!((row["language"].as_str(), &row["test_cmd"], row["log_parser"].as_str(), row["image"].as_str()), (Some(language), &test_cmd, Some(parser), Some(image)), "{id}");
        assert_eq!(row["patch"], source(id, "gold.patch"), "{id}");
        assert_eq!(row["test_patch"], source(id, "test.patch"), "{id}");
        assert_eq!(row["environment_setup_commit"], row["base_commit"], "{id}");
    }
    assert_eq!(listed(&rows[GO], "FAIL_TO_PASS")[1], "TestMergeJoinsAdjacentIntervals/two");
    assert_eq!(listed(&rows[RUST], "FAIL_TO_PASS"), ["numeric_prerelease_identifiers_compare_numerically", "sorts_the_semver_spec_example"]);
    assert_eq!(listed(&rows[JS], "FAIL_TO_PASS")[0], "- decodes plus signs as spaces");
    assert_eq!(listed(&rows[JAVA], "FAIL_TO_PASS")[2], "org.agentmill.csvlite.RoundTripTest#readsBackWhatTheWriterWrote");
    assert_eq!(rows[JAVA]["test_cmd"][0], "mvn test -B -Dtest=org.agentmill.csvlite.CsvReaderTest#readsAQuoteWrittenTwiceAsOneQuote");
}

/// The script the worker grades each row with is SWE-bench 4.x's non-Python eval script, whole,
/// with the row's own test command between the markers (Java's commands one per line).
#[test]
fn eval_scripts_are_swebench_multilingual_scripts() {
    let rows = rows();
    let file = corpus().join("tasks.jsonl");
    for (id, test_file) in [
        (GO, "merge_test.go"),
        (RUST, "tests/precedence.rs"),
        (JS, "test/parse.test.js"),
        // Only the test file the patch modifies is reset; RoundTripTest.java is new.
        (JAVA, "src/test/java/org/agentmill/csvlite/CsvReaderTest.java"),
    ] {
        let row = &rows[id];
        let base = row["base_commit"].as_str().expect("base_commit");
        let test_patch = row["test_patch"].as_str().expect("test_patch");
        let test_cmd = test_cmd_lines(row);
        let expected = format!(
            "#!/bin/bash\n\
             set -uxo pipefail\n\
             cd /testbed\n\
             git config --global --add safe.directory /testbed\n\
             cd /testbed\n\
             git checkout {base} {test_file}\n\
             git apply --verbose --reject - <<'EOF_114329324912'\n\
             {test_patch}\n\
             EOF_114329324912\n\
             : '>>>>> Start Test Output'\n\
             {test_cmd}\n\
             : '>>>>> End Test Output'\n\
             git checkout {base} {test_file}\n"
        );
        let o = Command::new(binary("agentmill-worker")).arg("eval-script").arg(&file).args(["--instance", id]).output().expect("run agentmill-worker eval-script");
        assert!(o.status.success(), "{id}: {}", stderr_of(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), expected, "{id}");
    }
}

/// A row of an unknown repository without its own spec is refused, naming each missing field.
#[test]
fn a_row_without_its_own_spec_is_refused_naming_the_fields() {
    let mut row = rows()[GO].clone();
    let obj = row.as_object_mut().expect("object");
    obj.remove("test_cmd");
    obj.insert("language".into(), "cobol".into());
    let err = agentmill_proto::Task::from_json_object(obj.clone()).expect_err("refused");
    let text: Vec<String> = err.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect();
    let text = text.join("\n");
    assert!(text.contains("test_cmd: is missing; a SWE-bench row whose repo is not in SWE-bench's spec table carries its own test_cmd"), "{text}");
    assert!(text.contains("language: \"cobol\" is not a language SWE-bench's harness knows"), "{text}");
}

/// A patch that leaves the code as it is (one line added to the README): graded, it shows the
/// task's FAIL_TO_PASS tests failing at the base commit while its PASS_TO_PASS tests pass.
fn readme_only_patch(id: &str) -> String {
    let readme = source(id, "repo/README.md");
    let lines: Vec<&str> = readme.lines().collect();
    format!("diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -{n},1 +{n},2 @@\n {}\n+Patched here only to leave the code as it is.\n", lines[lines.len() - 1], n = lines.len())
}

/// Gold patches resolve FULL with every listed test passed under the language's parser; the wrong
/// patches grade NO with the tests they break named as failed; a patch that leaves the code alone
/// grades NO with exactly the FAIL_TO_PASS tests failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gold_resolves_and_wrong_fails_in_each_language() {
    let Some(engine) = docker_or_skip("gold_resolves_and_wrong_fails_in_each_language").await else {
        return;
    };
    images_or_fail();
    let dir = tempfile::tempdir().expect("tempdir");
    let worker_id = unique("w-multilingual");
    let rows = rows();

    // The wrong rows beside a copy of the archives they name (archive paths are relative).
    std::fs::create_dir(dir.path().join("archives")).expect("mkdir");
    for id in rows.keys() {
        let name = format!("{id}.tar.gz");
        std::fs::copy(corpus().join("archives").join(&name), dir.path().join("archives").join(&name)).expect("copy an archive");
    }
    let with_patches = |name: &str, patch: &dyn Fn(&str) -> String| {
        let file = dir.path().join(format!("{name}.jsonl"));
        let lines: Vec<String> = rows
            .iter()
            .map(|(id, row)| {
                let mut row = row.clone();
                row["patch"] = patch(id).into();
                row.to_string()
            })
            .collect();
        std::fs::write(&file, lines.join("\n") + "\n").expect("write the rows");
        file
    };
    let wrong_file = with_patches("wrong", &|id| source(id, "wrong.patch"));
    let base_file = with_patches("base", &|id| readme_only_patch(id));

    let gold_out = dir.path().join("gold.jsonl");
    let wrong_out = dir.path().join("wrong-records.jsonl");
    let gold = run_worker(&format!("{worker_id}-gold"), &corpus().join("tasks.jsonl"), &gold_out).wait_with_output().expect("wait");
    let wrong = run_worker(&format!("{worker_id}-wrong"), &wrong_file, &wrong_out).wait_with_output().expect("wait");
    let base_out = dir.path().join("base-records.jsonl");
    let base = run_worker(&format!("{worker_id}-base"), &base_file, &base_out).wait_with_output().expect("wait");

    assert_eq!(gold.status.code(), Some(0), "every gold patch resolves:\n{}", stderr_of(&gold));
    let gold_records = records(&gold_out);
    assert!(stderr_of(&gold).contains("4 episodes in"), "{}", stderr_of(&gold));
    assert!(stderr_of(&gold).contains(": FULL 4; exits: submitted 4"), "{}", stderr_of(&gold));
    assert_eq!(gold_records.keys().map(String::as_str).collect::<Vec<_>>(), [JAVA, JS, GO, RUST]);
    for (id, parser) in [(GO, "parse_log_gotest"), (RUST, "parse_log_cargo"), (JS, "parse_log_tap"), (JAVA, "parse_log_maven")] {
        let r = &gold_records[id];
        let g = r.grading.as_ref().expect("a grading");
        assert_eq!(r.exit_reason, Some(ExitReason::Submitted), "{id}");
        assert_eq!((g.resolution, g.rules.as_str(), g.log_parser.as_str()), (Resolution::Full, "swe-bench-4", parser), "{id}: {g:?}");
        assert_eq!(g.not_graded, None, "{id}");
        let all: Vec<(String, TestStatus)> = listed(&rows[id], "FAIL_TO_PASS").into_iter().chain(listed(&rows[id], "PASS_TO_PASS")).map(|t| (t, TestStatus::Passed)).collect();
        assert_eq!(statuses(r), all, "{id}: every listed test passed");
    }

    assert_eq!(wrong.status.code(), Some(1), "--validate fails when a patch does not resolve:\n{}", stderr_of(&wrong));
    let stderr = stderr_of(&wrong);
    for id in [GO, RUST, JS, JAVA] {
        assert!(stderr.contains(&format!("{id} r0: NO (submitted")), "{stderr}");
    }
    let wrong_records = records(&wrong_out);
    for (id, parser, failing) in [
        // Go: touching intervals made to "overlap" merges them, and breaks Overlaps' own test.
        (GO, "parse_log_gotest", vec!["TestAdjacentIntervalsDoNotOverlap"]),
        // Rust: shorter-first ordering fixes rc.9 < rc.10 but puts beta before alpha.
        (RUST, "parse_log_cargo", vec!["sorts_the_semver_spec_example", "alphanumeric_identifiers_compare_lexically", "sorts_a_list"]),
        // JavaScript: `+` turned into a space after decoding also turns an escaped %2B into one.
        (JS, "parse_log_tap", vec!["- parses what stringify writes", "- decodes an escaped plus sign to a plus"]),
        // Java: a doubled quote read as one quote in any state also reads an empty quoted field
        // (`""`) as a quote.
        (JAVA, "parse_log_maven", vec!["org.agentmill.csvlite.CsvReaderTest#readsAnEmptyQuotedFieldAsEmpty"]),
    ] {
        let r = &wrong_records[id];
        let g = r.grading.as_ref().expect("a grading");
        assert_eq!(r.exit_reason, Some(ExitReason::Submitted), "{id}");
        assert_eq!((g.resolution, g.rules.as_str(), g.log_parser.as_str()), (Resolution::No, "swe-bench-4", parser), "{id}: {g:?}");
        assert!(g.patch_applied.starts_with("git apply"), "{id}: the wrong patch went in ({}); its tests ran", g.patch_applied);
        let not_passed: Vec<(String, TestStatus)> = statuses(r).into_iter().filter(|(_, s)| *s != TestStatus::Passed).collect();
        let expected: Vec<(String, TestStatus)> = failing.iter().map(|t| (t.to_string(), TestStatus::Failed)).collect();
        assert_eq!(not_passed, expected, "{id}: exactly these listed tests fail");
    }

    assert_eq!(base.status.code(), Some(1), "{}", stderr_of(&base));
    let base_records = records(&base_out);
    for id in [GO, RUST, JS, JAVA] {
        let g = base_records[id].grading.as_ref().expect("a grading");
        assert_eq!((g.resolution, g.not_graded.as_deref()), (Resolution::No, None), "{id}: {g:?}");
        let not_passed: Vec<(String, TestStatus)> = statuses(&base_records[id]).into_iter().filter(|(_, s)| *s != TestStatus::Passed).collect();
        let f2p: Vec<(String, TestStatus)> = listed(&rows[id], "FAIL_TO_PASS").into_iter().map(|t| (t, TestStatus::Failed)).collect();
        assert_eq!(not_passed, f2p, "{id}: at the base commit exactly the FAIL_TO_PASS tests fail");
    }

    for w in ["gold", "wrong", "base"] {
        assert!(engine.containers_of(&format!("{worker_id}-{w}")).await.expect("list").is_empty(), "no container left behind");
    }
}

/// `parse_log_maven` reads order across the two streams: each `BUILD SUCCESS|FAILURE` (the
/// runner's stdout) is named after the `-Dtest=` that `set -x` traced (stderr) before it. A row
/// whose test command traces 60 such commands, each followed at once by its result, grades every
/// test with its own result: the eval script's streams are joined inside the sandbox, where the
/// order is the order of writing, not left to Docker, which delivers two streams out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maven_results_stay_with_their_own_test_commands() {
    let Some(engine) = docker_or_skip("maven_results_stay_with_their_own_test_commands").await else {
        return;
    };
    images_or_fail();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("archives")).expect("mkdir");
    let name = format!("{JAVA}.tar.gz");
    std::fs::copy(corpus().join("archives").join(&name), dir.path().join("archives").join(&name)).expect("copy the archive");
    // Every third test fails, the rest pass: 4.x's rules call that PARTIAL.
    let tests: Vec<(String, bool)> = (1..=60).map(|i| (format!("p.OrderTest#t{i:02}"), i % 3 != 0)).collect();
    let mut row = rows()[JAVA].clone();
    row["instance_id"] = "agentmill__csvlite-90".into();
    row["test_cmd"] = tests
        .iter()
        .flat_map(|(t, pass)| [format!("true -Dtest={t}"), format!("echo '[INFO] BUILD {}'", if *pass { "SUCCESS" } else { "FAILURE" })])
        .collect::<Vec<_>>()
        .into();
    row["FAIL_TO_PASS"] = serde_json::to_string(&tests.iter().map(|(t, _)| t).collect::<Vec<_>>()).expect("json").into();
    row["PASS_TO_PASS"] = "[]".into();
    let file = dir.path().join("order.jsonl");
    std::fs::write(&file, format!("{row}\n")).expect("write the row");
    let out = dir.path().join("records.jsonl");
    let worker_id = unique("w-maven-order");
    let o = run_worker(&worker_id, &file, &out).wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1), "a third of the tests fail:\n{}", stderr_of(&o));
    let r = &records(&out)["agentmill__csvlite-90"];
    let g = r.grading.as_ref().unwrap_or_else(|| panic!("graded: {:?}", r.error));
    assert_eq!((g.resolution, g.log_parser.as_str()), (Resolution::Partial, "parse_log_maven"), "{g:?}");
    let expected: Vec<(String, TestStatus)> = tests.iter().map(|(t, pass)| (t.clone(), if *pass { TestStatus::Passed } else { TestStatus::Failed })).collect();
    assert_eq!(statuses(r), expected, "each result under its own test:\n{}", g.log_tail);
    assert!(engine.containers_of(&worker_id).await.expect("list").is_empty(), "no container left behind");
}
