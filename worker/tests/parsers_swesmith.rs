//! SWE-smith's log parsers against the `swesmith` 0.0.9 package itself, output for output, and
//! agentmill's copy of its profile table against the generator.
//!
//! * Every profile class that defines a `log_parser` a registered profile uses is a parser here
//!   (`swesmith:<class>`), and nothing else is.
//! * Each port reads a corpus written here in its tool's format for every branch of the reference
//!   (plus each log's variants: CRLF, cut at a third, a half and two thirds, no final newline) and
//!   hostile input (empty, `\r\n`, lone markers, unicode and control characters, digit strings
//!   past Python's `int()` limit); it must give the reference's status map (keys, statuses, order)
//!   or fail where the reference raises. Every class read by a port reads that port's corpus, so a
//!   class mapped to the wrong port fails.
//! * `proto/data/swesmith-profiles.json` is what `tests/reference/gen_swesmith_profiles.py` writes,
//!   and its fields reproduce `get_test_cmd` / `get_test_files` for every profile (checked against
//!   the package on made-up rows).
//!
//! The reference is `tests/reference/swesmith_ref.py` with `.venv/swesmith-0.0.9` (deploy/setup.sh).

mod reference_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use agentmill_worker::grading::parsers::{self, Generation, ParseContext};
use serde_json::{Value, json};
use reference_support::{Reference, diff_maps, python_env, workspace};

const DATA: &str = "proto/data/swesmith-profiles.json";
const REGENERATE: &str = "PYTHONPATH=.venv/swesmith-0.0.9:.venv/swebench-4.1.0 .venv/bin/python tests/reference/gen_swesmith_profiles.py > proto/data/swesmith-profiles.json";

/// Parses with agentmill's port of the class `class`.
fn ours(class: &str, log: &str) -> Result<parsers::StatusMap, parsers::ParseError> {
    let f = parsers::lookup(&format!("swesmith:{class}")).unwrap_or_else(|| panic!("swesmith:{class} is not a parser"));
    f(log, &ParseContext::default(), Generation::V4)
}

/// The committed profile table.
fn table() -> Value {
    let text = std::fs::read_to_string(workspace().join(DATA)).unwrap_or_else(|e| panic!("{DATA}: {e}; regenerate it: {REGENERATE}"));
    serde_json::from_str(&text).expect("the profile table is JSON")
}

/// Every profile's parser class (its own or its language's default).
fn profile_parsers(table: &Value) -> BTreeMap<String, String> {
    let defaults = &table["header"]["defaults"];
    table["profiles"]
        .as_object()
        .expect("profiles")
        .iter()
        .map(|(key, p)| {
            let parser = p.get("parser").or_else(|| defaults[p["language"].as_str().expect("language")].get("parser")).and_then(Value::as_str);
            (key.clone(), parser.unwrap_or_else(|| panic!("{key} has no parser")).to_string())
        })
        .collect()
}

/// The ports' families: the module function a class forwards to, or the class itself.
fn families(reference: &mut Reference) -> BTreeMap<String, Vec<String>> {
    let answer = reference.ask(&json!({"op": "delegates"}));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (class, delegate) in answer["delegates"].as_object().expect("delegates") {
        let family = delegate.as_str().unwrap_or(class).to_string();
        out.entry(family).or_default().push(class.clone());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

#[test]
fn the_profile_table_is_what_the_generator_writes() {
    let (python, pythonpath) = python_env();
    let out = Command::new(python)
        .arg(workspace().join("tests/reference/gen_swesmith_profiles.py"))
        .env("PYTHONPATH", pythonpath)
        .current_dir(workspace())
        .output()
        .expect("running the generator");
    assert!(out.status.success(), "the generator failed: {}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read(workspace().join(DATA)).unwrap_or_default();
    assert!(committed == out.stdout, "{DATA} is not what the generator writes from swesmith 0.0.9 (a hand edit, or a new package); regenerate it from the workspace root:\n  {REGENERATE}");
}

#[test]
fn every_parser_a_profile_uses_is_ported_and_nothing_else() {
    let table = table();
    let used: BTreeSet<String> = profile_parsers(&table).into_values().collect();
    let ported: BTreeSet<String> = parsers::all_names().iter().filter_map(|n| n.strip_prefix("swesmith:")).map(str::to_string).collect();
    let missing: Vec<_> = used.difference(&ported).collect();
    let extra: Vec<_> = ported.difference(&used).collect();
    assert!(missing.is_empty(), "profiles use parsers agentmill lacks: {missing:?}");
    assert!(extra.is_empty(), "swesmith.rs lists parsers no profile uses: {extra:?}");
    for class in &used {
        assert!(parsers::lookup(&format!("swesmith:{class}")).is_some(), "lookup misses swesmith:{class}");
    }
    assert!(parsers::lookup("swesmith:NoSuchProfile").is_none());
    assert!(parsers::lookup("swesmith:parse_log_jest").is_none(), "parsers are named by class, not by module function");
}

#[test]
fn the_table_covers_every_registered_profile_and_the_reference_agrees_on_each() {
    let table = table();
    let mut reference = Reference::start_swesmith();
    let from_package = reference.ask(&json!({"op": "profiles"}));
    assert_eq!(from_package, table, "the driver's table differs from {DATA}; regenerate it: {REGENERATE}");
    let profiles = table["profiles"].as_object().expect("profiles");
    assert!(profiles.len() > 600, "only {} profiles", profiles.len());
    // A profile's parser, asked by its registry key (both spellings), is the class the table names.
    let log = "a.py::t PASSED\n--- PASS: TestX (0.00s)\ntest x ... ok\n✓ y (1 ms)\n[INFO] z -- Time elapsed: 1 s\n";
    for (key, class) in profile_parsers(&table).iter().step_by(7) {
        let by_key = reference.parse_profile(key, log);
        let by_mirror = reference.parse_profile(&format!("swesmith/{key}"), log);
        let by_class = reference.parse_class(class, log);
        assert_eq!(by_key, by_class, "{key}: its parser is not {class}");
        assert_eq!(by_mirror, by_class, "swesmith/{key}: its parser is not {class}");
    }
}

// ---------------------------------------------------------------------------------------------
// get_test_cmd / get_test_files from the table
// ---------------------------------------------------------------------------------------------

/// A row of the profile `key` with made-up test ids in its language's form.
fn made_up_row(key: &str, language: &str, with_patch: bool) -> Value {
    let (f2p, p2p): (Vec<&str>, Vec<&str>) = match language {
        "python" => (
            vec!["tests/test_a.py::test_one", "tests/test_a.py::TestK::test_two[x-1]", "../dev/tests/test_m.py::t", "test_x (tornado.test.web_test.WebTest)"],
            vec!["tests/test_b.py::test_three", "tests/test_a.py::test_four", "plain_id"],
        ),
        "go" => (vec!["TestAlpha", "TestBeta/sub_case"], vec!["TestGamma", "TestMissing"]),
        _ => (vec!["Suite.test one", "pkg/a.test.ts > renders"], vec!["com.x.FooTest.testBar"]),
    };
    let mut row = json!({
        "instance_id": format!("{key}.func_pm_remove_cond__ab12cd34"),
        "repo": format!("swesmith/{key}"),
        "FAIL_TO_PASS": f2p,
        "PASS_TO_PASS": p2p,
    });
    if with_patch {
        row["patch"] = json!(concat!(
            "diff --git a/packages/babel-core/src/x.js b/packages/babel-core/src/x.js\n",
            "--- a/packages/babel-core/src/x.js\n+++ b/packages/babel-core/src/x.js\n@@ -1 +1 @@\n-a\n+b\n",
            "diff --git a/lib/y.py b/lib/y.py\n--- a/lib/y.py\n+++ b/lib/y.py\n@@ -1 +1 @@\n-a\n+b\n",
            "diff --git a/packages/parser/t.js b/packages/parser/t.js\n--- a/packages/parser/t.js\n+++ b/packages/parser/t.js\n@@ -1 +1 @@\n-a\n+b\n",
        ));
    }
    row
}

/// What `go_test_files` stands in for: the mirror's test functions and their files.
fn go_files() -> Value {
    json!({"TestAlpha": ["a_test.go"], "TestGamma": ["sub/g_test.go", "a_test.go"], "TestBeta": ["b_test.go"]})
}

/// `get_test_files` as the header describes it, from the table.
fn model_test_files(rule: &str, row: &Value) -> (Vec<String>, Vec<String>) {
    let list = |k: &str| -> Vec<String> { row[k].as_array().expect("list").iter().map(|v| v.as_str().expect("id").to_string()).collect() };
    let sorted_set = |v: Vec<String>| -> Vec<String> { v.into_iter().collect::<BTreeSet<_>>().into_iter().collect() };
    let pytest = |ids: Vec<String>| -> Vec<String> { sorted_set(ids.iter().map(|id| id.split("::").next().unwrap_or_default().to_string()).collect()) };
    match rule {
        "RepoProfile" => (vec![], vec![]),
        "PythonProfile" => (pytest(list("FAIL_TO_PASS")), pytest(list("PASS_TO_PASS"))),
        "MidoA0158ff9" => {
            let strip = |v: Vec<String>| sorted_set(v.into_iter().map(|f| f.strip_prefix("../dev/").map(str::to_string).unwrap_or(f)).collect());
            (strip(pytest(list("FAIL_TO_PASS"))), strip(pytest(list("PASS_TO_PASS"))))
        }
        "PythonSlugify872b3750" => (vec!["test.py".into()], vec!["test.py".into()]),
        "TornadoD5ac65c1" => {
            let files = |ids: Vec<String>| {
                sorted_set(
                    ids.iter()
                        .filter_map(|id| {
                            let inner = regex::Regex::new(r"\s\((.*)\)").expect("pattern").captures(id)?.get(1)?.as_str();
                            let mut parts: Vec<&str> = inner.split('.').collect();
                            parts.pop();
                            Some(format!("{}.py", parts.join("/")))
                        })
                        .collect(),
                )
            };
            (files(list("FAIL_TO_PASS")), files(list("PASS_TO_PASS")))
        }
        "GoProfile" => {
            let map = go_files();
            let files = |ids: Vec<String>| {
                sorted_set(ids.iter().filter_map(|id| map.get(id)).flat_map(|v| v.as_array().expect("files").iter().map(|f| f.as_str().expect("file").to_string())).collect())
            };
            (files(list("FAIL_TO_PASS")), files(list("PASS_TO_PASS")))
        }
        other => panic!("the header describes no get_test_files {other}"),
    }
}

/// `get_test_cmd` (evaluation, without `f2p_only`) as the header describes it, from the table.
fn model_test_cmd(rule: &str, test_cmd: &str, min_testing: bool, files: &(Vec<String>, Vec<String>), row: &Value) -> String {
    match rule {
        "RepoProfile" => {
            if min_testing && row.get("FAIL_TO_PASS").is_some() {
                let all: Vec<&str> = files.0.iter().chain(files.1.iter()).map(String::as_str).collect();
                if all.is_empty() { test_cmd.to_string() } else { format!("{test_cmd} {}", all.join(" ")) }
            } else {
                test_cmd.to_string()
            }
        }
        // No instance_ref in a SWE-smith row: no keys, the command as it is.
        "MypyE93f06ce" => test_cmd.to_string(),
        "Babel2ea3fc8f" => match row.get("patch").and_then(Value::as_str) {
            None => test_cmd.to_string(),
            Some(patch) => {
                let folders: Vec<String> = patch
                    .lines()
                    .filter_map(|l| l.strip_prefix("+++ b/"))
                    .filter_map(|path| {
                        let parts: Vec<&str> = path.split('/').collect();
                        (parts.len() >= 2 && parts[0] == "packages").then(|| parts[..2].join("/"))
                    })
                    .collect();
                format!("{test_cmd} {}", folders.join(" "))
            }
        },
        other => panic!("the header describes no get_test_cmd {other}"),
    }
}

#[test]
fn the_table_reproduces_get_test_cmd_and_get_test_files_for_every_profile() {
    let table = table();
    let mut reference = Reference::start_swesmith();
    let defaults = &table["header"]["defaults"];
    let mut failures = Vec::new();
    for (key, p) in table["profiles"].as_object().expect("profiles") {
        let language = p["language"].as_str().expect("language");
        let field = |k: &str| p.get(k).unwrap_or(&defaults[language][k]).clone();
        let files_rule = field("get_test_files");
        let cmd_rule = field("get_test_cmd");
        let test_cmd = field("test_cmd");
        let min_testing = field("min_testing").as_bool().expect("min_testing");
        for with_patch in [false, true] {
            let row = made_up_row(key, language, with_patch);
            let answer = reference.ask(&json!({"op": "profile", "row": row, "go_test_files": go_files()}));
            let sorted = |k: &str| -> Vec<String> {
                let mut v: Vec<String> = answer[k].as_array().unwrap_or_else(|| panic!("{key}: {answer}")).iter().map(|f| f.as_str().expect("file").to_string()).collect();
                v.sort();
                v.dedup();
                v
            };
            let files = model_test_files(files_rule.as_str().expect("rule"), &row);
            let cmd = model_test_cmd(cmd_rule.as_str().expect("rule"), test_cmd.as_str().expect("test_cmd"), min_testing, &files, &row);
            if answer["image_name"] != p["image_name"] || answer["timeout"] != field("timeout") {
                failures.push(format!("{key}: image/timeout {} {} vs the table's {} {}", answer["image_name"], answer["timeout"], p["image_name"], field("timeout")));
            }
            if (sorted("f2p_files"), sorted("p2p_files")) != files {
                failures.push(format!("{key}: test files {:?} {:?}, the table's rule {files_rule} gives {files:?}", sorted("f2p_files"), sorted("p2p_files")));
            }
            if answer["test_cmd"].as_str() != Some(cmd.as_str()) {
                failures.push(format!("{key}: test command {}, the table's rule {cmd_rule} gives {cmd:?}", answer["test_cmd"]));
            }
        }
    }
    assert!(failures.is_empty(), "{} disagreements, first ones:\n{}", failures.len(), failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
}

#[test]
fn get_test_cmd_asserts_the_instance_belongs_to_the_profile() {
    let mut reference = Reference::start_swesmith();
    let answer = reference.ask(&json!({"op": "profile", "row": {
        "instance_id": "other__repo.12345678.x__y", "repo": "swesmith/mewwts__addict.75284f95",
        "FAIL_TO_PASS": [], "PASS_TO_PASS": [],
    }}));
    assert!(answer["test_cmd_error"].as_str().is_some_and(|e| e.starts_with("AssertionError")), "{answer}");
}

// ---------------------------------------------------------------------------------------------
// Parity of the ports
// ---------------------------------------------------------------------------------------------

/// A digit string longer than Python's `int()` accepts (4300 digits), worth 5.
fn long_five() -> String {
    format!("{}5", "0".repeat(4300))
}

/// The corpus of one port (by family: module function or class), logs in its tool's format.
fn corpus(family: &str) -> Vec<String> {
    let v: Vec<&str> = match family {
        "PythonProfile" => vec![
            "============================= test session starts ==============================\nplatform linux -- Python 3.10.14, pytest-8.3.3\ncollecting ... collected 6 items\n\ntests/test_a.py::test_one PASSED                                        [ 16%]\ntests/test_a.py::test_two FAILED                                        [ 33%]\ntests/test_a.py::test_three SKIPPED (no network)                        [ 50%]\ntests/test_a.py::test_four ERROR                                        [ 66%]\ntests/test_a.py::test_five XFAIL (known)                                [ 83%]\ntests/test_a.py::test_six XPASS                                         [100%]\ntests/test_a.py::test_one FAILED\n\n=========================== short test summary info ============================\nFAILED tests/test_a.py::test_two - AssertionError: boom\nPASSED tests/test_a.py::test_one\n",
            "a\tPASSED\nb\u{a0}FAILED\nc\x1cSKIPPED\nd PASSEDX\n  indented.py::t PASSED\ne\u{3000}ERROR\nf  XFAIL\ng PASSED PASSED FAILED\n",
            "tests/test_ü.py::test_ß[ä-1] PASSED\ntests/t.py::test_x[a b] PASSED\n",
        ],
        "AutogradAc044f0d" => vec![
            "[gw0] PASSED tests/test_core.py::test_a\n[gw1] FAILED tests/test_core.py::test_b\n[gw12] PASSED tests/test_core.py::test_c\n[gw3] SKIPPED tests/t.py::d\n[gw٣] XFAIL tests/t.py::e\n[gw4]  PASSED double\n[gw5] ERROR tests/t.py::f\n[gw0] PASSED tests/test_core.py::test_a\n",
            "tests/test_a.py::test_one PASSED\n[gw0] [ 50%] PASSED x\n",
        ],
        "MypyE93f06ce" => vec![
            "mypy/test/testcheck.py::TypeCheckSuite::check-classes.test::testA PASSED [ 10%]\nmypy/test/testcheck.py::TypeCheckSuite::check-classes.test::testB FAILED [ 20%]\nPASSED mypy/test/testcheck.py::TypeCheckSuite::testC\nFAILED mypy/test/testcheck.py::TypeCheckSuite::testD - AssertionError\nboth PASSED and FAILED here\nPASSED\n  FAILEDx  \nnothing here\n",
        ],
        "Paramiko23f92003" => vec![
            "PASSED tests/test_client.py::test_a\nFAILED tests/test_client.py::test_b - AssertionError: x\nERROR tests/test_client.py::test_c\nSKIPPED [1] tests/test_x.py:12: no gss\nXFAIL tests/t.py::d\nPASSED\ttab\nPASSED  double\n PASSED lead\n",
        ],
        "PythonSlugify872b3750" => vec![
            "test_accented_text (test.TestSlugify.test_accented_text) ... ok\ntest_fail (test.TestSlugify) ... FAIL\ntest_err (test.TestSlugify) ... ERROR\ntest_skip (test.TestSlugify) ... skipped 'x'\ntest_é (test.T) ... ok\ntest-x, 'quoted' ... ok\nok ... ok ... ok\n ... ok\ntest_a ... ok trailing\n",
        ],
        "TornadoD5ac65c1" => vec![
            "test_a (tornado.test.web_test.WebTest.test_a) ... ok\ntest_b (tornado.test.web_test.WebTest) ... skipped 'no network'\nERROR: test_c (tornado.test.ioloop_test.IOLoopTest)\nFAIL: test_d (tornado.test.gen_test.GenTest)\nERROR:\nFAIL: one\nx ... y ... ok\ntest_e (t.E) ... FAIL\nRan 4 tests in 0.1s\n",
        ],
        "GoProfile" => vec![
            "=== RUN   TestAlpha\n--- PASS: TestAlpha (0.00s)\n=== RUN   TestBeta\n=== RUN   TestBeta/sub_case\n    --- PASS: TestBeta/sub_case (0.00s)\n--- FAIL: TestBeta (0.01s)\n--- SKIP: TestGamma (0.00s)\n    x_test.go:12: skipped\nFAIL\nFAIL\tgithub.com/owner/repo/pkg\t0.123s\nok  \tgithub.com/owner/repo/other\t0.05s\nPASS\n",
            "FAIL: TestDelta (0.00s)\nFAIL \nFAIL\t\nFAILx y\nFAIL:x\n--- PASS: TestZ\n--- PASS:  TestTwoSpaces (0.00s)\n--- FAIL: TestAlpha (0.00s)\n",
        ],
        "RustProfile" => vec![
            "running 4 tests\ntest foo::bar ... ok\ntest foo::baz ... FAILED\ntest foo::qux ... ignored\ntest tests::slow ... ok\n\nfailures:\n\ntest result: FAILED. 2 passed; 1 failed; 1 ignored\n",
            "test a ... ok\rtest b ... FAILED\x0btest c ... ok\u{2028}test d ... ok\u{85}test e ... FAILED\x1ctest f ... ok\r\n",
            "a... ok\ntest  spaced name ... ok\ntest t ... ok ... FAILED\ntest test x ... ok\ndoc-test src/lib.rs - f (line 3) ... ok\n",
        ],
        "Jqb9e19de76" => vec![
            "PASS: tests/optionaltest\nFAIL: tests/mantest\n  PASS:  tests/jqtest\nPASS:tests/nospace\nXFAIL: tests/x\nPASS: \nFAIL: a: b\n============================================================================\n# TOTAL: 3\n",
        ],
        "Valkeyfc7c04e4" => vec![
            "[ok]: Basic SET and GET (3 ms)\n[err]: Broken thing in tests/unit/type/list.tcl\n[skip]: Skipped test\n[ignore]: Ignored test (10 ms)\n[ok]: Seconds (12s)\n[err]: a in b in c\n[ok]:x\n  [ok]: indented (1 ms)\n[err]: plain failure\n[ok]: twice (1 ms)\n[err]: twice\n",
        ],
        "VirtualClient0bb16489" => vec![
            "  Passed VirtualClient.Core.UnitTests.ATest [12 ms]\n  Failed VirtualClient.Core.UnitTests.BTest [1 s]\n  Skipped VirtualClient.Core.UnitTests.CTest\nPassed!  - Failed:     0, Passed:     3, Skipped:     0\nTotal tests: 3\nFailedX Y\n",
            "Passed\n",
            "x\n   Failed   \n",
        ],
        "Dbal" => vec![
            "Connection (Doctrine\\DBAL\\Tests\\Connection)\n ✔ Is connected\n ✘ Commit fails\n   │ Failed asserting that false is true.\n ↩ Skipped on sqlite\n✔ No space\n✔\n✔   \n✘ twice\n✔ twice\n",
        ],
        "parse_log_jest" => vec![
            "PASS src/a.test.js\n  Suite\n    ✓ renders (5 ms)\n    ✕ fails (10 ms)\n    ○ skipped test\n    ✓ no duration\n    ✓ one second (1s)\n    ✓  double space (2 ms)\n    ✓ x (12 ms) (3 ms)\nTests: 1 failed, 3 passed\n",
            "✓\n✓ \n✕ a\n○ b (ms)\n",
        ],
        "parse_log_mocha" => vec![
            "  Suite\n    ✓ works\n    ✔ works too (12ms)\n    ✖ broke\n    - pending one\n\n  2 passing (20ms)\n  1 pending\n  1 failing\n\n  1) Suite fails:\n     Error: boom\n  2) another (5ms)\n",
            "-\n- \n- x\n10) ten\n1)x\n✔ (1ms)\n",
        ],
        "parse_log_vitest" => vec![
            " ✓ test/a.test.ts (3 tests) 12ms\n ❯ test/b.test.ts (2 tests | 1 failed) 5ms\n   ✓ inner ok (1ms)\n   × inner fail 2ms\n ✗ c.test.ts (2ms)\n ○ d.test.ts\n ✓ e.test.ts (1.5ms)\n ✓ (weird) name\n❯ f\n",
        ],
        "parse_log_karma" => vec![
            "Chrome Headless: Executed 5 of 10 SUCCESS (0.1 secs / 0.05 secs)\nChrome Headless: Executed 3 of 10 (2 FAILED) (0.2 secs)\nChrome Headless: Executed 10 of 12 (1 skipped) (0.2 secs)\nExecuted 7 of 10 SUCCESS\nExecuted 2 of 10 SUCCESS\nExecuted ٣ of 5 (٢ FAILED)\n",
            // Digits of the mathematical styles (five runs of ten back to back) and of Unicode 15
            // (not digits to Python 3.11).
            "Executed 𝟫 of 9 SUCCESS\nExecuted 1 of 9 (𝟹 FAILED)\nExecuted 1 of 1 (\u{1e4f5} skipped)\nExecuted 1 of 1 (𝟶𝟸 skipped)\n",
        ],
        "parse_log_jasmine" => vec![
            "Started\n.....\n\n5 specs, 1 failure, 2 pending specs\n9 specs, 0 failures\n",
            "3 specs, 5 failures\n",
            "1 spec, 0 failures\nFinished in 0.1 seconds\n",
            "𝟸 specs, ߁ failure\n",
        ],
        "parse_log_qunit" => vec!["1..3\nok 1 - a\nnot ok 2 - b\n"],
        "ReactPDFee5c96b8" => vec![
            " ✓ renders 12ms\n ✗ fails 3ms\n ✖ boom\n ✓ plain\n✓ a 1ms b 2ms\n ✓ trailing 5ms more text\n",
        ],
        "Markeddbf29d91" => vec![
            "▶ Suite\n  ✔ parses (1.2ms)\n  ✖ fails (0.5ms)\n  ✔ nodur\n✔ nested (3ms) again (4ms)\n✖ (1ms)\n",
        ],
        "Bit2d92cae7" | "TypeScript0a74ec4e" => vec![
            "  ✓ works\n  1) breaks\n",
            "  12 passing (3s)\n  2 failing\n",
            "passing\n3 failing\n",
            "0 passing\n",
        ],
        "Drizzleorma086f59f" => vec![
            "drizzle-orm:test: cache hit, replaying logs\n@drizzle/kit:test:unit: ✓ x\nintegration-tests:test: ERROR: connection refused\ndrizzle-orm:test: ERROR something\nERROR  run failed: command  exited (1)\n MyTest : ERROR\n\n Tasks:    3 successful, 5 total\n",
            "Tasks:    3 successful, 5 total\nCached:    0 cached, 5 total\n",
            "Tasks: 5 successful, 3 total\n",
        ],
        "parse_log_maven_surefire" => vec![
            "[INFO] Running com.example.FooTest\n[INFO] testA -- Time elapsed: 0.01 s\n[ERROR] testB -- Time elapsed: 0.02 s <<< FAILURE!\n[ERROR] testC -- Time elapsed: 0.02 s <<< ERROR!\n[INFO] Tests run: 3, Failures: 1, Errors: 1, Skipped: 0, Time elapsed: 0.5 s - in com.example.FooTest\n[WARNING] testD -- Time elapsed: 1 s\n",
            "Running com.example.BarTest\ntestX(com.example.BarTest)  Time elapsed: 0.001 sec\ntestY(com.example.BarTest)  Time elapsed: 0 sec  <<< FAILURE!\ntest-Z(com.example.BarTest)  Time elapsed: 0.001 sec\nTests run: 2, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.1 sec\n",
            "[INFO] spaced name here -- Time elapsed: 1.5 s\n[ERROR] a -- Time elapsed: ٣ s <<< FAILURE!\n",
        ],
        "parse_log_gradle_junit_xml" => vec![
            concat!(
                "> Task :test\nBUILD SUCCESSFUL\n",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"com.x.FooTest\" tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\">\n",
                "  <properties/>\n  <testcase name=\"passes\" classname=\"com.x.FooTest\" time=\"0.01\"/>\n",
                "  <testcase name=\"fails\" classname=\"com.x.FooTest\"><failure message=\"boom\" type=\"AssertionError\">trace &amp; more</failure></testcase>\n",
                "  <testcase name=\"errs\" classname=\"com.x.FooTest\"><error message=\"x\"/></testcase>\n",
                "  <testcase name=\"skips\" classname=\"com.x.FooTest\"><skipped/></testcase>\n",
                "  <testcase name=\"noclass\"><system-out><![CDATA[<failure/>]]></system-out></testcase>\n",
                "  <system-out><![CDATA[]]></system-out>\n</testsuite>\n",
                "<?xml version=\"1.0\"?><testsuite name=\"S2\"><testcase name=\"a &lt;b&gt;&#65;&#x42;\" classname=\"c&#10;d\"/><group><testcase name=\"nested\"><x><failure/></x></testcase></group></testsuite>\n",
            ),
            concat!(
                "<?xml version=\"1.0\"?><testsuite name=\"bad\"><testcase name=\"x\"></testsuite>\n",
                "<?xml version=\"2.0\" standalone=\"yes\" ?>\n<!-- comment --><?pi data?>\n<testsuite><testcase classname=\"K\" name=\"ok\"/></testsuite>\n",
                "<?xml version=\"1.0\" standalone=\"maybe\"?><testsuite><testcase name=\"no\"/></testsuite>\n",
                "<?xml version=\"1.0\" encoding=\"1x\"?><testsuite><testcase name=\"no\"/></testsuite>\n",
                "<?xml version=\"1.0\"?><ns:testsuite xmlns:ns=\"urn:x\" name=\"N\"><ns:testcase name=\"prefixed\"/><testcase name=\"plain\" ns:classname=\"P\"/></ns:testsuite>\n",
                "<?xml version=\"1.0\"?><testsuite xmlns=\"urn:d\" name=\"D\"><testcase name=\"defaultns\"/></testsuite>\n",
                "<?xml version=\"1.0\"?><testsuites><testsuite name=\"in\"><testcase name=\"t\"/></testsuite></testsuites>\n",
                "<?xml version=\"1.0\"?><testsuite><testcase name=\"&undefined;\"/></testsuite>\n",
                "<?xml version=\"1.0\"?><testcase name=\"root\"><testcase name=\"child\"/></testcase></testsuite>\n",
                "<?xml version=\"1.0\"?><testsuite><testcase name=\"a\" name=\"b\"/></testsuite>\n",
                "<?xml version=\"1.0\"?><testsuite><testcase name=\"x\u{1}\"/></testsuite>\n",
                "<?xml versionx=\"1.0\"?><testsuite><testcase name=\"v\"/></testsuite>\n",
                "<?xml version=\"1.0\"?><testsuite><testcase name=\"tail\"/></testsuite> <?xml version=\"1.0\"?><testsuite><testcase name=\"second\"/></testsuite>",
            ),
        ],
        "parse_log_ctest" => vec![
            "Test project /testbed/build\n    Start  1: test_a\n 1/4 Test  #1: test_a ...........................   Passed    0.01 sec\n 2/4 Test  #2: test-b/c.d .......................***Failed    0.02 sec\n 3/4 Test  #3: test_c ...........................   Passed    0.01 sec\n 4/4 Test  #4: test_d ...........................***Exception: SegFault  0.01 sec\n\n50% tests passed, 2 tests failed out of 4\n\nThe following tests FAILED:\n\t  2 - test-b/c.d (Failed)\n\t  4 - test_d (SEGFAULT)\nErrors while running CTest\n",
            "1/2 test #1: lower .... passed\n2/2 TEST #2: upper .... FAILED\n3/3 Test #3: longs .... PAſſED\n4/4 Test #4: dotless .... faıled\n",
            "100% tests passed, 0 tests failed out of 5\n",
            "60% tests passed, 2 tests failed out of 5\nThe following tests FAILED:\n\n",
            "The following tests FAILED:\n  7 - only_failed (Failed)\r\n  8 - crlf (Failed)\n",
        ],
        "parse_log_gtest" => vec![
            "[==========] Running 4 tests from 1 test suite.\n[ RUN      ] Suite.A\n[       OK ] Suite.A (0 ms)\n[ RUN      ] Suite.B\n[  FAILED  ] Suite.B (1 ms)\n[  SKIPPED ] Suite.C (0 ms)\n[ DISABLED ] Suite.D\n[==========] 4 tests from 1 test suite ran. (2 ms total)\n[  PASSED  ] 2 tests.\n[  FAILED  ] 1 test, listed below:\n[  FAILED  ] Suite.B\n[  FAILED  ] Suite.E, where TypeParam = int\n\n 1 FAILED TEST\n",
            "[==========] 3 tests from 1 test suite ran. (0 ms total)\n[  PASSED  ] 2 tests.\n[  FAILED  ] 1 test, listed below:\n",
            "[==========] 3 tests from 1 test suite ran.\n",
            "[  PASSED  ] ²\n[       OK ] 12\n[  PASSED  ] Ns::T/0.x (3 ms)\n[  FAILED  ] p/Suite.T/1\n",
        ],
        "parse_log_catch2" => vec![
            "<?xml version=\"1.0\"?>\n<Catch2TestRun>\n  <TestCase name=\"Adds numbers\" filename=\"t.cpp\" line=\"3\">\n    <OverallResult success=\"true\"/>\n  </TestCase>\n  <TestCase name=\"Fails\" filename=\"t.cpp\" line=\"9\">\n    <Expression success=\"false\"/>\n    <OverallResult success=\"false\"/>\n  </TestCase>\n</Catch2TestRun>\n",
            "Test one ... PASSED\nTest two ... failed\n  spaced   ...   Passed\nbad: name ... PASSED\nx[1] ... PASSED\nPAſſED test ... paſſed\n",
            "===============================================================================\ntest cases: 5 | 4 passed | 1 failed\nassertions: 9 | 8 passed | 1 failed\n",
            "All tests passed (10 assertions in 3 test cases)\n",
            "all TESTS passed (1 assertion in 1 test case)\n",
        ],
        "parse_log_boost_test" => vec![
            "Running 3 test cases...\nEntering test suite \"Master\"\nEntering test case \"a\"\nLeaving test case \"a\"\nEntering test case \"b\"\nt.cpp(10): error: in \"Master/b\": check x == y has failed\nt.cpp(12): ERROR in \"b\": boom\nEntering test case \"a\"\n\n*** 1 failure is detected in the test module \"Master\"\n",
            "Running 5 test cases...\n\n*** No errors detected\n5 test cases out of 5 passed\n",
            "*** No errors detected\n",
            "*** 3 failures detected in the test module \"M\"\n",
            "*** 1 failure detected\n",
        ],
        "AirSim13448700" => vec![
            "[==========] Running 2 tests\n[  PASSED  ] A.b\n[  FAILED  ] C.d\n[  PASSED  ] C.d\n[PASSED] tight\n",
            "Running 3 tests\n",
            "Running x tests\n",
        ],
        "Aria2b4fd7cb1" => vec![
            "..........\n\nOK (5)\n",
            ".F.F.\nFAILURES!!!\nTests run: 5,   Failures: 2\n",
            "OK (3)\nFAILURES!!!\n\nTests run: 4,  Failures: 1\n",
            "FAILURES!!!\nTests run: 1, Failures: 3\n",
        ],
        other => panic!("no corpus for the port {other}: add one to worker/tests/parsers_swesmith.rs"),
    };
    v.into_iter().map(str::to_string).collect()
}

/// Hostile input every parser reads.
fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "", "\n", "\r\n\r\n", "   ", "x", "✓", "✓ ", "✕", "✔", "○", "-", "1)", "PASS", "PASS:", "FAIL", "FAIL ", "--- PASS:", "--- FAIL: ",
        "test ", "test x ... ok", " ... ", "[ok]:", "[err]: ", "Passed ", "[", "[]", "[ERROR]", "[INFO] -- Time elapsed: ", "(", ")",
        "<?xml version", "<?xml version=\"1.0\"?>", "<?xml version=\"1.0\"?></testsuite>", "<TestCase name=\"", "Entering test case \"",
        "error in \"\"", "OK (", "OK ()", "FAILURES!!!", "Tests run: ", "Tasks:", "passing", "\0\0\n\0", "\x1b[31m✓ red\x1b[0m",
        "\u{feff}PASS: bom", "ü ✓ ä", "🚀 PASSED", "a\u{2028}b PASSED", "\r", "\x0b\x0c", "[gw0]", "FAILED", "PASSED PASSED",
        "The following tests FAILED:\n", "[==========]", "[  PASSED  ]", "*** No errors", "Running 1 test", "test cases:",
        "Executed 1 of", "1 specs, ", ":test:", "x:test: ERROR", "✔ (", "❯", "✗ (1ms)",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    // Past Python's int() digit limit, where a parser converts a count (the reference raises).
    let five = long_five();
    for template in [
        "Executed {} of 1 SUCCESS", "{} specs, 0 failures", "  {} passing", "Tasks: {} successful, 1 total", "{}% tests passed, 1 tests failed out of 3",
        "[==========] 1 tests from 1\n[  PASSED  ] {} tests", "test cases: 1 | {} passed | 0 failed", "All tests passed (1 assertion in {} test cases)",
        "*** No errors detected\n{} test cases passed", "*** {} failures detected", "OK ({})", "Running {} tests",
    ] {
        v.push(template.replace("{}", &five));
    }
    // Long lines and many lines.
    v.push(format!("{} PASSED", "x".repeat(20_000)));
    v.push("--- PASS: T (0.00s)\n".repeat(2_000));
    v
}

/// The log and its variants: CRLF line ends, cut at a third, a half and two thirds, without its
/// final newline.
fn variants(log: &str) -> Vec<String> {
    let n = log.chars().count();
    let mut out = vec![log.to_string(), log.replace('\n', "\r\n")];
    for at in [n / 3, n / 2, 2 * n / 3] {
        if at > 0 && at < n {
            out.push(log.chars().take(at).collect());
        }
    }
    if let Some(trimmed) = log.strip_suffix('\n') {
        out.push(trimmed.to_string());
    }
    out
}

/// The ports whose order the reference leaves to a Python `set` (compared unordered).
const UNORDERED: &[&str] = &["parse_log_boost_test"];

/// Compares one class on one log; a difference as a message.
fn compare(reference: &mut Reference, family: &str, class: &str, log: &str) -> Option<String> {
    let want = reference.parse_class(class, log);
    let got = ours(class, log);
    let what = || {
        let shown: String = log.chars().take(200).collect();
        format!("{class} ({family}) on {shown:?}")
    };
    match (&got, &want) {
        (Ok(o), Ok(r)) => diff_maps(o, r, !UNORDERED.contains(&family)).map(|d| format!("{}: {d}", what())),
        (Err(_), Err(_)) => None,
        (Ok(o), Err(e)) => Some(format!("{}: the reference raises {e}, ours gives {} entries", what(), o.len())),
        (Err(e), Ok(r)) => Some(format!("{}: ours fails ({e}), the reference gives {} entries", what(), r.len())),
    }
}

#[test]
fn every_port_matches_the_package_on_its_corpus_and_hostile_input() {
    let mut reference = Reference::start_swesmith();
    let families = families(&mut reference);
    let hostile = hostile();
    let mut failures = Vec::new();
    let mut compared = 0usize;
    for (family, classes) in &families {
        let logs = corpus(family);
        // The first class reads everything: the corpus, its variants, the hostile input and the
        // other ports' corpora; every other class of the family reads its own corpus.
        let (first, rest) = classes.split_first().expect("a family has a class");
        let mut all: Vec<String> = logs.iter().flat_map(|l| variants(l)).collect();
        all.extend(hostile.iter().cloned());
        for other in families.keys().filter(|f| *f != family) {
            all.extend(corpus(other));
        }
        for log in &all {
            compared += 1;
            failures.extend(compare(&mut reference, family, first, log));
        }
        for class in rest {
            for log in &logs {
                compared += 1;
                failures.extend(compare(&mut reference, family, class, log));
            }
        }
    }
    assert!(compared > 1000, "only {compared} comparisons");
    assert!(failures.is_empty(), "{} of {compared} comparisons differ from swesmith 0.0.9; first ones:\n{}", failures.len(), failures.iter().take(15).cloned().collect::<Vec<_>>().join("\n"));
}

#[test]
fn the_corpus_reaches_every_branch_that_gives_entries() {
    // Each port's corpus gives the reference at least one non-empty map with every status the
    // port can give (so a corpus that silently stopped matching fails here).
    let mut reference = Reference::start_swesmith();
    let families = families(&mut reference);
    let expect: &[(&str, &[&str])] = &[
        ("PythonProfile", &["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"]),
        ("AutogradAc044f0d", &["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"]),
        ("MypyE93f06ce", &["PASSED", "FAILED"]),
        ("Paramiko23f92003", &["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"]),
        ("PythonSlugify872b3750", &["PASSED", "FAILED", "ERROR"]),
        ("TornadoD5ac65c1", &["PASSED", "FAILED", "SKIPPED"]),
        ("GoProfile", &["PASSED", "FAILED", "SKIPPED"]),
        ("RustProfile", &["PASSED", "FAILED"]),
        ("Jqb9e19de76", &["PASSED", "FAILED"]),
        ("Valkeyfc7c04e4", &["PASSED", "FAILED", "SKIPPED"]),
        ("VirtualClient0bb16489", &["PASSED", "FAILED", "SKIPPED"]),
        ("Dbal", &["PASSED", "FAILED", "SKIPPED"]),
        ("parse_log_jest", &["PASSED", "FAILED", "SKIPPED"]),
        ("parse_log_mocha", &["PASSED", "FAILED", "SKIPPED"]),
        ("parse_log_vitest", &["PASSED", "FAILED", "SKIPPED"]),
        ("parse_log_karma", &["PASSED", "FAILED", "SKIPPED"]),
        ("parse_log_jasmine", &["PASSED", "FAILED", "SKIPPED"]),
        ("ReactPDFee5c96b8", &["PASSED", "FAILED"]),
        ("Markeddbf29d91", &["PASSED", "FAILED"]),
        ("Bit2d92cae7", &["PASSED", "FAILED"]),
        ("TypeScript0a74ec4e", &["PASSED", "FAILED"]),
        ("Drizzleorma086f59f", &["PASSED", "FAILED"]),
        ("parse_log_maven_surefire", &["PASSED", "FAILED"]),
        ("parse_log_gradle_junit_xml", &["PASSED", "FAILED", "SKIPPED"]),
        ("parse_log_ctest", &["PASSED", "FAILED"]),
        ("parse_log_gtest", &["PASSED", "FAILED", "SKIPPED"]),
        ("parse_log_catch2", &["PASSED", "FAILED"]),
        ("parse_log_boost_test", &["PASSED", "FAILED"]),
        ("AirSim13448700", &["PASSED", "FAILED"]),
        ("Aria2b4fd7cb1", &["PASSED", "FAILED"]),
    ];
    let listed: BTreeSet<&str> = expect.iter().map(|(f, _)| *f).collect();
    for family in families.keys() {
        assert!(listed.contains(family.as_str()) || family == "parse_log_qunit", "no expectation for the port {family}");
    }
    for (family, statuses) in expect {
        let class = &families[*family][0];
        let mut seen = BTreeSet::new();
        for log in corpus(family) {
            if let Ok(map) = reference.parse_class(class, &log) {
                seen.extend(map.values().map(|s| format!("{s:?}").to_uppercase()));
            }
        }
        for status in *statuses {
            assert!(seen.contains(*status), "{family}'s corpus never gives {status} (it gives {seen:?})");
        }
    }
}

#[test]
fn what_the_reference_cannot_do_fails_loudly() {
    // Counts the reference would spend minutes and gigabytes on.
    for (class, log) in [
        ("Aria2b4fd7cb1", "OK (99999999999)"),
        ("Albert897c7797", "0% tests passed, 0 tests failed out of 123456789012"),
        ("Piskel51373322", "Executed 1 of 1 SUCCESS\nExecuted 99999999999999999999999999999999999999999 of 1 SUCCESS"),
    ] {
        let got = ours(class, log);
        assert!(got.as_ref().is_err_and(|e| e.reason.contains("made-up")), "{class}: {got:?}");
    }
    // Counts within the limit are made up as the reference makes them.
    let map = ours("Aria2b4fd7cb1", "OK (1000000)").expect("a million entries are within the limit");
    assert_eq!(map.len(), 1_000_000);
    // A DTD in a JUnit XML report (the reference would apply it).
    let doctype = "<?xml version=\"1.0\"?><!DOCTYPE testsuite><testsuite><testcase name=\"a\"/></testsuite>";
    let mut reference = Reference::start_swesmith();
    let java = families(&mut reference)["parse_log_gradle_junit_xml"][0].clone();
    assert!(reference.parse_class(&java, doctype).is_ok_and(|m| m.len() == 1), "the reference reads the DOCTYPE document");
    let err = ours(&java, doctype).expect_err("a DOCTYPE is refused");
    assert!(err.reason.contains("DOCTYPE"), "{err}");
    // jQuery's parser does not exist in the package.
    assert!(reference.parse_class("Jqueryc28c26ae", "").is_err_and(|e| e.starts_with("NameError")));
    assert!(ours("Jqueryc28c26ae", "").is_err());
}
