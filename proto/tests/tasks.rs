//! Task rows: the public datasets' shapes, agentmill's bundled corpus, and bad rows.

use std::path::{Path, PathBuf};

use agentmill_proto::{Source, Task, parse_jsonl, read_jsonl_file, v1};
use agentmill_testkit::workspace;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

#[test]
fn rows_shaped_like_the_public_datasets_parse_as_they_are() {
    let (tasks, errors) = read_jsonl_file(&data("public_rows.jsonl")).expect("read fixture");
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(tasks.len(), 5);

    // SWE-bench Verified: JSON-encoded lists, SWE-bench's default image, `difficulty` kept verbatim.
    let astropy = &tasks[0];
    assert_eq!(astropy.instance_id, "astropy__astropy-12907");
    assert_eq!(astropy.fail_to_pass.len(), 2);
    assert_eq!(astropy.fail_to_pass[0], "astropy/modeling/tests/test_separable.py::test_separable[compound_model6-result6]");
    assert_eq!(astropy.pass_to_pass.len(), 2);
    assert_eq!(astropy.image, "swebench/sweb.eval.x86_64.astropy_1776_astropy-12907:latest");
    assert_eq!(astropy.workdir, "/testbed");
    assert_eq!(astropy.source, Source::Image);
    assert_eq!(astropy.environment_setup_commit, "298ccb478e6bf092953bca67a3d29dc6c35f6752");
    assert_eq!(astropy.extra.get("difficulty").and_then(|v| v.as_str()), Some("15 min - 1 hour"));
    assert_eq!(astropy.rollouts, 1);

    // Django-style test names with spaces survive.
    assert_eq!(tasks[1].fail_to_pass[0], "test_ascii_validator (auth_tests.test_validators.UsernameValidatorsTests)");
    assert_eq!(tasks[1].image, "swebench/sweb.eval.x86_64.django_1776_django-11099:latest");

    // SWE-Gym: arrays, and a numeric version.
    assert_eq!(tasks[2].fail_to_pass, ["tests/test_ssm/test_ssm_boto3.py::test_describe_parameters__multiple_tags"]);
    assert_eq!(tasks[2].version, "4.0");
    assert_eq!(tasks[2].hints_text, "Here's the culprit:\n");

    // SWE-rebench: docker_image names the image; install_config and meta are kept.
    assert_eq!(tasks[3].image, "swerebench/sweb.eval.x86_64.0b01001001_1776_spectree-64");
    assert!(tasks[3].extra.contains_key("install_config"));
    assert!(tasks[3].extra.contains_key("meta"));

    // SWE-smith: image_name names the image.
    assert_eq!(tasks[4].image, "swebench/swesmith.x86_64.oauthlib_1776_oauthlib.1fd52536");
    assert_eq!(tasks[4].pass_to_pass.len(), 1);
}

#[test]
fn a_bad_batch_is_rejected_row_by_row_and_keeps_its_good_rows() {
    let text = std::fs::read_to_string(data("bad_batch.jsonl")).expect("read fixture");
    let (tasks, errors) = parse_jsonl(text.as_bytes());

    let ids: Vec<&str> = tasks.iter().map(|t| t.instance_id.as_str()).collect();
    assert_eq!(ids, ["ok__ok-1", "ok__ok-2"]);
    let good = &tasks[1];
    assert_eq!(good.rollouts, 4);
    assert_eq!(good.limits.memory, Some(2 << 30));
    assert_eq!(good.limits.max_steps, Some(30));
    assert_eq!(good.source, Source::Archive { path: "archives/x.tar.gz".into(), sha256: None });

    let summary: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(
        summary,
        [(1, "instance_id"), (3, "FAIL_TO_PASS"), (4, "source"), (6, "FAIL_TO_PASS"), (6, "limits.memroy"), (6, "rollouts"), (7, "(row)")]
    );
    let msg = |row: usize| errors.iter().find(|e| e.row == row).map(ToString::to_string).unwrap_or_default();
    assert_eq!(msg(1), "task row 1: instance_id: is missing; every task needs a unique id (SWE-bench's instance_id)");
    assert!(msg(3).starts_with("task row 3 (bad__f2p-1): FAIL_TO_PASS: is not a JSON list of test names"), "{}", msg(3));
    assert!(msg(4).contains("unknown source \"ftp\"; use one of \"image\", \"archive\", \"git\""), "{}", msg(4));
    assert!(msg(7).contains("is not valid JSON"), "{}", msg(7));
}

#[test]
fn a_typed_spec_and_a_json_row_are_validated_alike_and_round_trip() {
    let (tasks, errors) = read_jsonl_file(&data("public_rows.jsonl")).expect("read fixture");
    assert!(errors.is_empty());
    for task in &tasks {
        let spec = v1::TaskSpec::from(task);
        let back = Task::try_from(&spec).expect("spec converts back");
        assert_eq!(&back, task);
    }
    let bad = v1::TaskSpec { instance_id: String::new(), ..Default::default() };
    let errs = Task::try_from(&bad).expect_err("an empty spec is refused");
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["instance_id", "FAIL_TO_PASS"]);
}

#[test]
fn every_bundled_task_row_parses() {
    let path = workspace().join("deploy/tasks/tasks.jsonl");
    let (tasks, errors) = read_jsonl_file(&path).expect("deploy/tasks/tasks.jsonl is readable");
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(tasks.len() >= 8, "the corpus has {} tasks; at least 8 are bundled", tasks.len());
    for t in &tasks {
        assert!(t.instance_id.starts_with("agentmill__"), "{}", t.instance_id);
        assert!(!t.fail_to_pass.is_empty() && t.pass_to_pass.len() >= 10, "{}", t.instance_id);
        assert!(!t.patch.is_empty() && !t.test_patch.is_empty() && !t.problem_statement.is_empty(), "{}", t.instance_id);
        assert_eq!(t.image, "agentmill/sandbox-python:bookworm");
        match &t.source {
            Source::Archive { path, .. } => assert!(Path::new(path).is_file(), "{} names a missing archive {path}", t.instance_id),
            other => panic!("{}: bundled tasks ship archives, found {other:?}", t.instance_id),
        }
        assert_eq!(t.base_commit.len(), 40, "{}", t.instance_id);
    }
}
