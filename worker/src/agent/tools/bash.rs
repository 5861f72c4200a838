//! `bash(command)`: one shell command in the sandbox.
//!
//! The command runs through [`Sandbox::exec`](crate::sandbox::Sandbox::exec) from the workdir
//! with the step timeout: at the deadline the whole process group is killed (background children
//! included) and the observation says so, after whatever the command printed. Output past the
//! cap is cut with the truncation marker; the exit code is the command's own.
//!
//! Every call runs in a fresh shell (as SWE-agent's function-calling tools do on a stateless
//! runtime): `cd` and `export` do not carry over to the next call, and the tool's description
//! tells the model so.

use serde_json::{Value, json};

use super::{Args, Observation, Tool, ToolContext};
use crate::sandbox::{ExecRequest, SandboxError};

/// The `bash` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct BashTool;

#[async_trait::async_trait]
impl Tool for BashTool {
    fn name(&self) -> &'static str {
        "bash"
    }

    fn schema(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Run a bash command in the repository's sandbox and return its output (stdout and stderr) and exit code.\n\
                    * Each call runs in a fresh shell started in the repository folder: `cd` and exported variables do not carry over to the next call, so chain dependent commands with `&&`.\n\
                    * A command that runs past the step timeout is killed together with every process it started; run long jobs with a time limit of their own or in smaller pieces.\n\
                    * There is no terminal: interactive programs (editors, pagers, REPLs waiting for input) will not work.\n\
                    * Long output is truncated and marked; narrow it with `head`, `tail`, `grep` or `sed -n`.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "command": {"type": "string", "description": "The bash command to run."}
                    },
                    "required": ["command"]
                }
            }
        })
    }

    async fn call(&mut self, args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let command = match args.required_str("command") {
            Ok(c) if !c.trim().is_empty() => c,
            Ok(_) => return Ok(Observation::usage("The parameter `command` is empty; give the bash command to run.")),
            Err(e) => return Ok(Observation::usage(format!("{e}; give the bash command to run, e.g. {{\"command\": \"ls\"}}."))),
        };
        let request = ExecRequest::new(command).timeout(ctx.step_timeout).max_output(ctx.max_output);
        let out = ctx.sandbox.exec(&request).await?;
        let mut content = out.output;
        if out.timed_out {
            if !content.is_empty() && !content.ends_with('\n') {
                content.push('\n');
            }
            content.push_str(&format!(
                "\nThe command timed out after {} s and was killed, with every process it started. \
                 Run long jobs with a time limit of their own (e.g. `timeout 60 ...`), in the background with output to a file, or in smaller pieces.",
                ctx.step_timeout.as_secs().max(1)
            ));
        } else if content.is_empty() {
            content = if out.exit_code == 0 {
                "The command ran successfully and printed nothing.".to_string()
            } else {
                format!("The command printed nothing and exited with code {}.", out.exit_code)
            };
        }
        Ok(Observation {
            content,
            exit_code: out.exit_code,
            duration: out.duration,
            truncated: out.truncated,
            timed_out: out.timed_out,
            submission: None,
        })
    }
}
