//! `agentmill trajectory`: an episode's record as a transcript for people — who said what,
//! each tool call and the sandbox's real answer with its exit code and time, the grading and
//! the patch.

use std::fmt::Write as _;

use agentmill_proto::{Role, TestStatus, TrajectoryRecord};

/// How much of each message to show.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// Lines of a message shown before the rest is elided (0: every line).
    pub max_lines: usize,
}

fn clip(text: &str, shown: Shown) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if shown.max_lines == 0 || lines.len() <= shown.max_lines {
        return text.trim_end().to_string();
    }
    let head = shown.max_lines.div_ceil(2);
    let tail = shown.max_lines - head;
    let mut out = lines[..head].join("\n");
    let _ = write!(out, "\n  … {} lines …", lines.len() - head - tail);
    if tail > 0 {
        out.push('\n');
        out.push_str(&lines[lines.len() - tail..].join("\n"));
    }
    out
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// The transcript of `record`.
pub fn transcript(record: &TrajectoryRecord, shown: Shown) -> String {
    let mut out = String::new();
    let steps = record.messages.iter().filter(|m| m.role == Role::Assistant).count();
    let policy = record.provenance.policy.as_ref().map(|p| if p.model.is_empty() { p.name.clone() } else { format!("{} ({})", p.name, p.model) });
    let exit = record.exit_reason.map(|e| e.as_str()).unwrap_or("-");
    let _ = writeln!(
        out,
        "{} rollout {} attempt {} · worker {} · policy {} · {exit} · {steps} steps · {:.1} s",
        record.task_id,
        record.rollout,
        record.attempt,
        record.worker,
        policy.as_deref().unwrap_or("-"),
        record.timing.total_ms as f64 / 1000.0
    );
    if let Some(g) = &record.grading {
        let passed = |tests: &[agentmill_proto::TestOutcome]| tests.iter().filter(|t| t.status.is_pass()).count();
        let _ = writeln!(
            out,
            "graded {}: FAIL_TO_PASS {}/{}, PASS_TO_PASS {}/{} (patch applied by {})",
            g.resolution.as_str(),
            passed(&g.fail_to_pass),
            g.fail_to_pass.len(),
            passed(&g.pass_to_pass),
            g.pass_to_pass.len(),
            if g.patch_applied.is_empty() { "-" } else { &g.patch_applied }
        );
    }
    if let Some(e) = &record.error {
        let _ = writeln!(out, "error: {e}");
    }
    for m in &record.messages {
        let mut head = format!("── {}", role(m.role));
        if m.role == Role::Tool {
            let mut facts = Vec::new();
            if let Some(name) = &m.name {
                facts.push(name.clone());
            }
            if let Some(code) = m.exit_code {
                facts.push(format!("exit {code}"));
            }
            if let Some(ms) = m.duration_ms {
                facts.push(format!("{ms} ms"));
            }
            if m.truncated == Some(true) {
                facts.push("truncated".into());
            }
            if !facts.is_empty() {
                let _ = write!(head, " ({})", facts.join(", "));
            }
        }
        let _ = writeln!(out, "\n{head} ──");
        if let Some(r) = m.reasoning_content.as_deref().filter(|r| !r.trim().is_empty()) {
            let _ = writeln!(out, "<think>\n{}\n</think>", clip(r, shown));
        }
        if !m.content.trim().is_empty() {
            let _ = writeln!(out, "{}", clip(&m.content, shown));
        }
        for call in &m.tool_calls {
            let _ = writeln!(out, "→ {}({})", call.function.name, clip(&call.function.arguments, shown));
        }
    }
    if let Some(g) = &record.grading {
        let _ = writeln!(out, "\n── grading ──");
        for (list, tests) in [("FAIL_TO_PASS", &g.fail_to_pass), ("PASS_TO_PASS", &g.pass_to_pass)] {
            for t in tests.iter() {
                let status = match t.status {
                    TestStatus::Passed => "passed",
                    TestStatus::Failed => "FAILED",
                    TestStatus::Error => "ERROR",
                    TestStatus::Skipped => "skipped",
                    TestStatus::Xfail => "xfail",
                    TestStatus::Missing => "MISSING",
                };
                let _ = writeln!(out, "{list} {status:<8} {}", t.name);
            }
        }
    }
    if let Some(p) = record.model_patch.as_deref().filter(|p| !p.trim().is_empty()) {
        let _ = writeln!(out, "\n── patch ──\n{}", clip(p, shown));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentmill_proto::{ExitReason, FunctionCall, Message, RecordKind, ToolCall};

    #[test]
    fn a_transcript_shows_calls_observations_and_elides_long_output() {
        let mut call = Message::text(Role::Assistant, "Let me look.");
        call.tool_calls = vec![ToolCall {
            id: "c1".into(),
            kind: "function".into(),
            function: FunctionCall { name: "bash".into(), arguments: r#"{"command": "ls"}"#.into() },
        }];
        let mut obs = Message::text(Role::Tool, (1..=30).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n"));
        (obs.tool_call_id, obs.name, obs.exit_code, obs.duration_ms) = (Some("c1".into()), Some("bash".into()), Some(0), Some(12));
        let record = TrajectoryRecord {
            worker: "w-1".into(),
            messages: vec![Message::text(Role::User, "Fix it."), call, obs],
            exit_reason: Some(ExitReason::Submitted),
            model_patch: Some("diff --git a/x b/x\n".into()),
            ..TrajectoryRecord::new(RecordKind::Env, "env:t:r0:a1", "t")
        };
        let text = transcript(&record, Shown { max_lines: 6 });
        let want = r#"t rollout 0 attempt 1 · worker w-1 · policy - · submitted · 1 steps · 0.0 s

── user ──
Fix it.

── assistant ──
Let me look.
→ bash({"command": "ls"})

── tool (bash, exit 0, 12 ms) ──
line 1
line 2
line 3
  … 24 lines …
line 28
line 29
line 30

── patch ──
diff --git a/x b/x
"#;
        assert_eq!(text, want, "the transcript as printed:\n{text}");
        let all = transcript(&record, Shown { max_lines: 0 });
        assert_eq!(all.lines().filter(|l| l.starts_with("line ")).count(), 30, "0 shows every line:\n{all}");
    }
}
