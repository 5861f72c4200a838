//! Rows of every dataset family are read as they are: the family is recognised, each family's
//! image and workdir rules apply, and a row missing what its family's harness needs is refused
//! naming the field — while a good row beside it is kept.

use agentmill_proto::dataset::{EvalType, Family};
use agentmill_proto::{Task, parse_jsonl, v1};
use serde_json::{Value, json};

fn parse(v: Value) -> Result<Task, Vec<agentmill_proto::FieldError>> {
    Task::from_json_object(v.as_object().cloned().expect("object"))
}

fn swebench_row() -> Value {
    json!({
        "instance_id": "django__django-11099", "repo": "django/django", "version": "3.0",
        "base_commit": "d26b2424437dabeeca94d7900b37d2df4410da0c", "problem_statement": "p",
        "patch": "", "test_patch": "diff --git a/tests/a.py b/tests/a.py\n--- a/tests/a.py\n+++ b/tests/a.py\n@@ -1 +1 @@\n-a\n+b\n",
        "FAIL_TO_PASS": "[\"test_a (auth_tests.T)\"]", "PASS_TO_PASS": "[]",
    })
}

#[test]
fn a_swebench_row_is_recognised_and_named_as_swebench_names_its_images() {
    let t = parse(swebench_row()).expect("parses");
    assert_eq!(t.family, Family::Swebench);
    assert_eq!(t.image, "swebench/sweb.eval.x86_64.django_1776_django-11099:latest");
    assert_eq!(t.workdir, "/testbed");
}

#[test]
fn a_row_without_pass_to_pass_is_refused_naming_the_field() {
    let mut r = swebench_row();
    r.as_object_mut().expect("object").remove("PASS_TO_PASS");
    let errs = parse(r).expect_err("refused");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "PASS_TO_PASS");
    assert!(errs[0].reason.contains("swe-bench rows list the tests that must keep passing"), "{}", errs[0].reason);
    // agentmill's own rows may leave it out.
    let own = parse(json!({"instance_id": "a__b-1", "repo": "acme/b", "FAIL_TO_PASS": ["t.py::x"]})).expect("parses");
    assert_eq!(own.family, Family::Agentmill);
    assert!(own.pass_to_pass.is_empty());
}

#[test]
fn a_version_outside_the_spec_table_is_refused_with_the_versions_it_knows() {
    let mut r = swebench_row();
    r["version"] = "9.9".into();
    let errs = parse(r.clone()).expect_err("refused");
    assert_eq!(errs[0].field, "version");
    assert!(errs[0].reason.contains("\"9.9\" is not a version of django/django") && errs[0].reason.contains("3.0"), "{}", errs[0].reason);
    // With its own eval script, the row runs that script instead.
    r["eval_script"] = "#!/bin/bash\necho hi\n".into();
    assert_eq!(parse(r).expect("parses").family, Family::Swebench);
}

#[test]
fn a_5x_row_needs_its_script_parser_and_type() {
    let mut r = swebench_row();
    r["repo"] = "owner/other".into();
    r["eval_script"] = "#!/bin/bash\n".into();
    r["log_parser"] = "parse_log_pytest".into();
    let errs = parse(r.clone()).expect_err("refused");
    assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["eval_type"]);
    r["eval_type"] = "fail_only".into();
    let t = parse(r).expect("parses");
    assert_eq!((t.family, t.eval_type, t.log_parser.as_deref()), (Family::Swebench5, Some(EvalType::FailOnly), Some("parse_log_pytest")));
}

#[test]
fn each_family_names_its_images_and_workdir_its_own_way() {
    let gym = parse(json!({"instance_id": "getmoto__moto-5752", "repo": "getmoto/moto", "version": "4.0", "base_commit": "a", "test_patch": "diff --git a/t b/t\n", "FAIL_TO_PASS": ["x"], "PASS_TO_PASS": []})).expect("parses");
    assert_eq!((gym.family, gym.image.as_str()), (Family::SweGym, "docker.io/xingyaoww/sweb.eval.x86_64.getmoto_s_moto-5752"));
    let v1 = parse(json!({"instance_id": "Foo__Bar-12", "repo": "foo/bar", "base_commit": "a", "install_config": {"test_cmd": "pytest -rA", "log_parser": "parse_log_pytest"}, "FAIL_TO_PASS": ["x"], "PASS_TO_PASS": []})).expect("parses");
    assert_eq!((v1.family, v1.image.as_str()), (Family::SweRebench, "swerebench/sweb.eval.x86_64.foo_1776_bar-12:latest"));
    let v2 = parse(json!({"instance_id": "unidata__netcdf-c-1925", "repo": "Unidata/netcdf-c", "base_commit": "a", "image_name": "docker.io/swerebenchv2/unidata-netcdf-c:1925-ad6bff3", "language": "c", "install_config": {"test_cmd": ["make check"], "log_parser": "parse_log_redis"}, "FAIL_TO_PASS": ["x"], "PASS_TO_PASS": []})).expect("parses");
    assert_eq!((v2.family, v2.image.as_str(), v2.workdir.as_str()), (Family::SweRebenchV2, "docker.io/swerebenchv2/unidata-netcdf-c:1925-ad6bff3", "/netcdf-c"));
    let r2e = parse(json!({"instance_id": "r2e-1", "repo": "x/y", "docker_image": "namanjain12/orange3_final:abc", "expected_output_json": "{\"a\": \"PASSED\"}"})).expect("parses");
    assert_eq!((r2e.family, r2e.image.as_str()), (Family::R2eGym, "namanjain12/orange3_final:abc"));
    let bad_r2e = parse(json!({"instance_id": "r2e-2", "repo": "x/y", "expected_output_json": "not json"})).expect_err("refused");
    assert_eq!(bad_r2e[0].field, "expected_output_json");
}

#[test]
fn a_swesmith_rows_patch_is_its_bug_and_the_fix_is_its_reverse_once() {
    let bug = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-return a\n+return b\n";
    let t = parse(json!({"instance_id": "tkrajina__gpxpy.09fc46b3.func_pm_x__5d48ok1a", "repo": "swesmith/tkrajina__gpxpy.09fc46b3", "patch": bug, "FAIL_TO_PASS": ["t.py::x"], "PASS_TO_PASS": []})).expect("parses");
    assert_eq!(t.family, Family::SweSmith);
    assert_eq!(t.patch, "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-return b\n+return a\n");
    assert_eq!(t.extra.get("bug_patch").and_then(Value::as_str), Some(bug));
    assert_eq!(t.image, "swebench/swesmith.x86_64.tkrajina_1776_gpxpy.09fc46b3");
    // Through the coordinator's typed form and back: the fix stays the fix.
    let again = Task::try_from(&v1::TaskSpec::from(&t)).expect("round trip");
    assert_eq!(again.patch, t.patch);
    assert_eq!(again.family, Family::SweSmith);
}

#[test]
fn the_typed_form_keeps_the_family_parser_and_type() {
    let mut r = swebench_row();
    r["log_parser"] = "parse_log_pytest_v2".into();
    r["eval_type"] = "pass_and_fail".into();
    r["family"] = "swe_bench".into();
    let t = parse(r).expect("parses");
    let back = Task::try_from(&v1::TaskSpec::from(&t)).expect("round trip");
    assert_eq!((back.family, back.log_parser, back.eval_type), (Family::Swebench, Some("parse_log_pytest_v2".into()), Some(EvalType::PassAndFail)));
    let errs = parse(json!({"instance_id": "a", "family": "swe-bench-9", "FAIL_TO_PASS": ["x"]})).expect_err("refused");
    assert_eq!(errs[0].field, "family");
}

#[test]
fn a_bad_row_does_not_hide_the_good_row_beside_it() {
    let mut bad = swebench_row();
    bad.as_object_mut().expect("object").remove("PASS_TO_PASS");
    bad["instance_id"] = "django__django-2".into();
    let text = format!("{}\n{}\n", swebench_row(), bad);
    let (tasks, errors) = parse_jsonl(text.as_bytes());
    assert_eq!(tasks.len(), 1);
    assert_eq!((errors[0].row, errors[0].field.as_str(), errors[0].task_id.as_deref()), (2, "PASS_TO_PASS", Some("django__django-2")));
}

/// `git apply` takes the reversed patch and undoes the bug exactly (several hunks, an added
/// and a removed file, a line without a final newline).
#[test]
fn git_applies_the_reversed_bug_and_restores_the_tree() {
    let dir = std::env::temp_dir().join(format!("agentmill-reverse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git").args(args).current_dir(&dir).output().expect("git");
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let body: String = (0..40).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("a.py"), &body).expect("write");
    std::fs::write(dir.join("gone.py"), "x = 1\n").expect("write");
    std::fs::write(dir.join("tail.py"), "no newline").expect("write");
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]);
    let buggy = body.replace("line 3\n", "line three\nextra\n").replace("line 30\n", "");
    std::fs::write(dir.join("a.py"), buggy).expect("write");
    std::fs::remove_file(dir.join("gone.py")).expect("rm");
    std::fs::write(dir.join("new.py"), "y = 2\n").expect("write");
    std::fs::write(dir.join("tail.py"), "no newline either").expect("write");
    git(&["add", "-A"]);
    let bug = git(&["diff", "--cached"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "bug"]);
    let fix = agentmill_proto::dataset::patch::reverse_patch(&bug);
    std::fs::write(dir.join("fix.patch"), &fix).expect("write");
    git(&["apply", "--check", "fix.patch"]);
    git(&["apply", "fix.patch"]);
    std::fs::remove_file(dir.join("fix.patch")).expect("rm");
    git(&["add", "-A"]);
    assert_eq!(git(&["diff", "--cached", "HEAD~1", "--stat"]), "", "the fix restores the base tree exactly:\n{fix}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn openswe_row() -> Value {
    json!({
        "instance_id": "acme__calc-7", "repo": "acme/calc", "base_commit": "0123456789abcdef0123456789abcdef01234567",
        "problem_statement": "p", "patch": "diff --git a/a b/a\n", "test_patch": "diff --git a/t b/t\n",
        "Dockerfile": "FROM agentmill/sandbox-python:bookworm\nCOPY . /testbed\nWORKDIR /testbed\n",
        "eval_script": "#!/bin/bash\ncd /testbed\npython -m pytest tests\nrc=$?\necho \"OPENSWE_EXIT_CODE=$rc\"\n",
    })
}

#[test]
fn an_openswe_row_is_recognised_by_its_dockerfile_and_eval_script() {
    let t = parse(openswe_row()).expect("parses");
    assert_eq!(t.family, Family::OpenSwe);
    assert_eq!(t.workdir, "/testbed");
    // Its image is built from the Dockerfile, which stays with the row.
    assert_eq!(t.image, "");
    assert!(t.extra.get("Dockerfile").and_then(Value::as_str).is_some_and(|d| d.starts_with("FROM ")));
    assert!(t.fail_to_pass.is_empty() && t.pass_to_pass.is_empty());
    // The lower-case column, or a built image by name, is as good; so is naming the family.
    let mut lower = openswe_row();
    let d = lower.as_object_mut().expect("object").remove("Dockerfile").expect("Dockerfile");
    lower["dockerfile"] = d;
    assert_eq!(parse(lower).expect("parses").family, Family::OpenSwe);
    let mut named = openswe_row();
    named.as_object_mut().expect("object").remove("Dockerfile");
    named["family"] = "OpenSWE".into();
    named["image_name"] = "openswe--acme__calc-7".into();
    let t = parse(named).expect("parses");
    assert_eq!((t.family, t.image.as_str()), (Family::OpenSwe, "openswe--acme__calc-7"));
    // With a log_parser the row is SWE-bench 5.x's.
    let mut five = openswe_row();
    five["log_parser"] = "parse_log_pytest".into();
    five["eval_type"] = "pass_and_fail".into();
    five["FAIL_TO_PASS"] = json!(["x"]);
    five["PASS_TO_PASS"] = json!([]);
    assert_eq!(parse(five).expect("parses").family, Family::Swebench5);
}

#[test]
fn an_openswe_row_without_its_script_or_an_image_is_refused_naming_the_field() {
    let mut r = openswe_row();
    r["family"] = "openswe".into();
    r.as_object_mut().expect("object").remove("eval_script");
    let errs = parse(r).expect_err("refused");
    assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["eval_script"], "{errs:?}");
    assert!(errs[0].reason.contains("OPENSWE_EXIT_CODE"), "{}", errs[0].reason);
    let mut r = openswe_row();
    r["family"] = "openswe".into();
    r.as_object_mut().expect("object").remove("Dockerfile");
    let errs = parse(r).expect_err("refused");
    assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["Dockerfile"], "{errs:?}");
    assert!(errs[0].reason.contains("image_name"), "{}", errs[0].reason);
}

#[test]
fn an_openswe_rows_eval_plan_runs_its_script_as_is_after_the_5x_apply_chain() {
    use agentmill_proto::dataset::{ApplyChain, Rules, ScriptOptions, eval_plan};
    let t = parse(openswe_row()).expect("parses");
    let plan = eval_plan(&t, &ScriptOptions::default()).expect("plan");
    assert_eq!(plan.script.as_deref(), t.eval_script.as_deref());
    assert_eq!((plan.rules, plan.apply), (Rules::OpenSwe, ApplyChain::Swebench5));
}

/// A row of its own spec may write `test_cmd` as a list of commands, as SWE-bench's spec tables
/// write Java's (one `mvn test -Dtest=…` per test, which `parse_log_maven` pairs with each
/// result): the eval script runs them one per line between the markers. A list of anything but
/// one-line commands is refused naming the field.
#[test]
fn a_test_cmd_list_runs_one_command_per_line() {
    use agentmill_proto::dataset::{ScriptOptions, eval_plan};
    let row = json!({
        "instance_id": "agentmill__lib-1", "repo": "agentmill/lib", "version": "0.1", "base_commit": "abc",
        "problem_statement": "p", "patch": "", "family": "swe-bench", "language": "java", "log_parser": "parse_log_maven",
        "test_patch": "diff --git a/src/test/java/p/XTest.java b/src/test/java/p/XTest.java\n--- a/src/test/java/p/XTest.java\n+++ b/src/test/java/p/XTest.java\n@@ -1 +1 @@\n-a\n+b\n",
        "FAIL_TO_PASS": ["p.XTest#a"], "PASS_TO_PASS": ["p.XTest#b"],
        "test_cmd": ["mvn test -B -Dtest=p.XTest#a", "mvn test -B -Dtest=p.XTest#b"],
    });
    let task = parse(row.clone()).expect("parses");
    assert_eq!(task.test_cmd.as_deref(), Some("mvn test -B -Dtest=p.XTest#a\nmvn test -B -Dtest=p.XTest#b"));
    let script = eval_plan(&task, &ScriptOptions { conda: false }).expect("plan").script.expect("a script");
    let between = ": '>>>>> Start Test Output'\nmvn test -B -Dtest=p.XTest#a\nmvn test -B -Dtest=p.XTest#b\n: '>>>>> End Test Output'\n";
    assert!(script.contains(between), "{script}");

    for (bad, says) in [
        (json!(["mvn test", 3]), "holds a JSON number"),
        (json!(["mvn test\nrm -rf target"]), "expected one-line commands"),
        (json!({"cmd": "mvn test"}), "is a JSON object"),
    ] {
        let mut r = row.clone();
        r["test_cmd"] = bad;
        let errs = parse(r).expect_err("refused");
        assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["test_cmd"], "{errs:?}");
        assert!(errs[0].reason.contains(says), "{}", errs[0].reason);
    }
}
