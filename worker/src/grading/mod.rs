//! Grading: run the repository's own tests and resolve by SWE-bench's rule.
//!
//! [`test_command`] is what runs (the row's own command, or pytest on exactly the listed ids);
//! [`pytest`] reads the log; [`grade_log`] turns it into a [`Grading`].

pub mod pytest;

use agentmill_proto::{Grading, Task, TestOutcome};

use crate::shell::quote;

/// The command that runs a task's tests from its workdir: the row's `test_cmd`, or
/// `python -m pytest -rA -p no:cacheprovider <FAIL_TO_PASS> <PASS_TO_PASS>` — exactly the listed
/// node ids, so every listed test runs wherever it lives; `python -m` puts the repo on the path.
pub fn test_command(task: &Task) -> String {
    if let Some(cmd) = &task.test_cmd {
        return cmd.clone();
    }
    let mut cmd = String::from("python -m pytest -rA -p no:cacheprovider");
    for id in task.all_tests() {
        cmd.push(' ');
        cmd.push_str(&quote(id));
    }
    cmd
}

/// Grades a pytest log against the task's lists.
pub fn grade_log(task: &Task, log: &str, patch_applied: &str) -> Grading {
    let parsed = pytest::PytestLog::parse(log);
    let outcomes = |ids: &[String]| ids.iter().map(|id| TestOutcome { name: id.clone(), status: parsed.status(id) }).collect();
    Grading::from_outcomes(outcomes(&task.fail_to_pass), outcomes(&task.pass_to_pass), patch_applied)
}
