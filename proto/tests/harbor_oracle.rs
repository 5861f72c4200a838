//! The Harbor fixtures mean what they say: each one's oracle (`solution/solve.sh`) and verifier
//! (`tests/test.sh`) run in a real container of its environment (built from its Dockerfile, or
//! its `docker_image`), with no network, and the reward files the verifier writes are read by
//! `dataset::harbor::read_rewards` and graded by the task's rule: the passing oracle resolves, the
//! failing one does not, the several-rewards task writes all three. Needs Docker and the sandbox
//! image `agentmill/sandbox-python:bookworm` (deploy/setup.sh builds it); fails loudly without,
//! unless the run declares `AGENTMILL_NO_DOCKER=1`.
//! (Running Harbor tasks on a worker is a later piece; this only checks the fixtures.)

use std::path::{Path, PathBuf};

use agentmill_proto::dataset::harbor;
use agentmill_testkit::docker::{self, docker};

fn fixtures() -> PathBuf {
    agentmill_testkit::workspace().join("tests/fixtures/harbor")
}

/// Builds or names the task's image, runs the oracle then the verifier in one container, and
/// grades what the verifier left in /logs/verifier.
fn run_oracle(name: &str) -> harbor::HarborGrade {
    let dir = fixtures().join(name);
    let task = harbor::read_task(&dir).expect("fixture reads");
    let row = harbor::task_row(&task).expect("fixture maps");
    let t = agentmill_proto::Task::from_json_object(row).expect("row parses");
    let spec = t.harbor.as_ref().expect("harbor spec");
    let tag = format!("agentmill-test/harbor-fixture-{name}:latest");
    let image = match (&spec.docker_image, &spec.dockerfile) {
        (Some(image), _) => image.clone(),
        (None, Some(dockerfile)) => {
            let dockerfile = dir.join(dockerfile);
            let context = dockerfile.parent().expect("context");
            docker(&["build", "--network", "none", "-q", "-t", &tag, "-f", &dockerfile.to_string_lossy(), &context.to_string_lossy()]);
            tag.clone()
        }
        (None, None) => panic!("{name}: neither image nor Dockerfile"),
    };
    let logs = tempfile::tempdir().expect("tempdir");
    let mut args: Vec<String> = ["run", "--rm", "--network", "none"].map(String::from).to_vec();
    let mount = |host: &Path, at: &str, mode: &str| format!("{}:{at}:{mode}", host.display());
    args.extend(["-v".into(), mount(&dir.join("solution"), "/solution", "ro")]);
    args.extend(["-v".into(), mount(&dir.join("tests"), "/tests", "ro")]);
    args.extend(["-v".into(), mount(logs.path(), "/logs/verifier", "rw")]);
    let env = harbor::resolve_env(&spec.env, |_| None).expect("env resolves");
    for (k, v) in env.iter().chain(&spec.solution_env).chain(&spec.verifier_env) {
        args.extend(["-e".into(), format!("{k}={v}")]);
    }
    if let Some(w) = &spec.workdir {
        args.extend(["-w".into(), w.clone()]);
    }
    args.push(image);
    // The oracle, then the verifier; the verifier's exit code is ignored, as Harbor ignores it.
    args.extend(["sh".into(), "-c".into(), "sh /solution/solve.sh; sh /tests/test.sh; true".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args);
    if spec.dockerfile.is_some() {
        docker::quiet(&["rmi", "-f", &tag]);
    }
    let read = |f: &str| std::fs::read(logs.path().join(f)).ok();
    let rewards = harbor::read_rewards(read("reward.json").as_deref(), read("reward.txt").as_deref()).expect("the verifier wrote a reward");
    spec.reward_rule().grade(rewards)
}

#[test]
fn the_fixtures_oracles_grade_as_intended_in_real_containers() {
    if !docker::available("the_fixtures_oracles_grade_as_intended_in_real_containers") {
        return;
    }
    let g = run_oracle("pass-oracle");
    assert!(g.resolved && g.reward == 1.0, "pass-oracle: {g:?}");
    let g = run_oracle("fail-oracle");
    assert!(!g.resolved && g.reward == 0.0, "fail-oracle: {g:?}");
    let g = run_oracle("canary-legacy");
    assert!(g.resolved && g.reward == 1.0, "canary-legacy: {g:?}");
    let g = run_oracle("multi-reward");
    assert!(g.resolved, "multi-reward: {g:?}");
    assert_eq!(g.rewards.keys().map(String::as_str).collect::<Vec<_>>(), ["correct", "lines", "style"], "{g:?}");
    assert_eq!((g.rewards["correct"], g.rewards["style"], g.rewards["lines"]), (1.0, 1.0, 2.0), "{g:?}");
    assert_eq!(g.reward, 1.0, "several rewards, none named reward: 1.0 when resolved");
}
