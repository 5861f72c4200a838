//! `agentmill-worker grade` and `agentmill-worker eval-script`: a row's grading, offline.

use std::path::Path;

use agentmill_proto::Task;
use agentmill_proto::dataset::{Rules, ScriptOptions, eval_plan};

use super::report::{grade_saved_log, report_json, report_text};
use super::{TEST_IDS_FILE, test_command};

/// Reads the task row of `path`: a JSON object, or JSONL rows (one picked by `instance`).
pub fn read_row(path: &Path, instance: Option<&str>) -> Result<Task, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows: Vec<&str> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => vec![text.as_str()],
        _ => text.lines().filter(|l| !l.trim().is_empty()).collect(),
    };
    let describe = |errs: Vec<agentmill_proto::FieldError>| errs.into_iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ");
    let mut tasks = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match Task::from_json_row(row) {
            Ok(t) => tasks.push(t),
            Err(e) => {
                let id = serde_json::from_str::<serde_json::Value>(row).ok().and_then(|v| v.get("instance_id").and_then(|x| x.as_str()).map(str::to_string));
                if instance.is_none() || id.as_deref() == instance {
                    return Err(format!("{} row {}: {}", path.display(), i + 1, describe(e)));
                }
            }
        }
    }
    match instance {
        Some(id) => tasks.into_iter().find(|t| t.instance_id == id).ok_or_else(|| format!("{} has no row with instance_id {id}", path.display())),
        None if tasks.len() == 1 => Ok(tasks.remove(0)),
        None => Err(format!("{} has {} rows; pick one with --instance ID", path.display(), tasks.len())),
    }
}

/// `agentmill-worker grade`: prints the verdict; returns the exit code.
pub fn grade(row: &Path, log: &Path, patch: Option<&Path>, instance: Option<&str>, rules: Option<&str>, json: bool) -> i32 {
    let run = || -> Result<(Task, agentmill_proto::Grading), String> {
        let task = read_row(row, instance)?;
        let bytes = std::fs::read(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let rules = match rules {
            None => None,
            Some(r) => Some(Rules::parse(r).ok_or_else(|| format!("--rules {r:?} is not a rules name; use swe-bench-2, swe-bench-4, swe-bench-5, swe-rebench, swe-gym, swe-smith, r2e-gym or agentmill"))?),
        };
        let patch = match patch {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?),
            None => None,
        };
        let (_, grading) = grade_saved_log(&task, &text, rules, patch.as_deref())?;
        Ok((task, grading))
    };
    match run() {
        Ok((task, grading)) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report_json(&task, &grading)).unwrap_or_default());
            } else {
                print!("{}", report_text(&task, &grading));
            }
            if grading.resolved { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("agentmill-worker grade: {e}");
            2
        }
    }
}

/// `agentmill-worker eval-script`: prints the script; returns the exit code.
pub fn eval_script(row: &Path, instance: Option<&str>, conda: bool) -> i32 {
    let run = || -> Result<String, String> {
        let task = read_row(row, instance)?;
        let plan = eval_plan(&task, &ScriptOptions { conda })?;
        Ok(match plan.script {
            Some(s) => s,
            None => format!(
                "# {} is one of agentmill's own rows: the worker applies its test patch, writes the listed ids to\n# /agentmill/{TEST_IDS_FILE} and runs, from {}:\n{}\n",
                task.instance_id,
                task.workdir,
                test_command(&task, &format!("/agentmill/{TEST_IDS_FILE}"))
            ),
        })
    };
    match run() {
        Ok(s) => {
            print!("{s}");
            0
        }
        Err(e) => {
            eprintln!("agentmill-worker eval-script: {e}");
            2
        }
    }
}
