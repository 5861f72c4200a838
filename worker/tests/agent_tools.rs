//! The agent's tools against a real sandbox container: the editor's SWE-agent semantics and its
//! byte-exactness, bash's timeout and truncation, and submit's binary-safe patch, which must
//! apply in a fresh container and give back the same bytes.

mod agent_support;
mod sandbox_support;

use std::time::Duration;

use agentmill_proto::{FunctionCall, ToolCall};
use agentmill_worker::agent::tools::{EXIT_OK, EXIT_TOOL_ERROR, EXIT_USAGE, Observation, ToolContext, Toolset};
use agentmill_worker::repo::init_archive_repo_script;
use agentmill_worker::sandbox::docker::DockerContainer;
use agentmill_worker::sandbox::{Sandbox, TRUNCATION_MARKER};
use agent_support::{Guard, apply, run, start};
use sandbox_support::docker;
use serde_json::{Value, json};

const WORKDIR: &str = "/testbed";

/// One tool call through the toolset, as the episode loop makes it.
async fn call(tools: &mut Toolset, c: &DockerContainer, name: &str, args: Value) -> Observation {
    call_raw(tools, c, name, &args.to_string(), Duration::from_secs(20), 32 * 1024).await
}

async fn call_raw(tools: &mut Toolset, c: &DockerContainer, name: &str, arguments: &str, step_timeout: Duration, max_output: usize) -> Observation {
    let call = ToolCall { id: "call_1".into(), kind: "function".into(), function: FunctionCall { name: name.into(), arguments: arguments.into() } };
    let ctx = ToolContext { sandbox: c, base_commit: "HEAD", step_timeout, max_output };
    tools.dispatch(&call, &ctx).await.expect("the sandbox answers")
}

async fn edit(tools: &mut Toolset, c: &DockerContainer, args: Value) -> Observation {
    call(tools, c, "str_replace_editor", args).await
}

async fn container(test: &str) -> Option<Guard> {
    let worker = format!("agent-tools-{test}");
    let engine = docker(test, &worker).await?;
    Some(start(&engine, &worker, WORKDIR, test).await)
}

async fn read(c: &DockerContainer, path: &str) -> Vec<u8> {
    Sandbox::read_file(c, path).await.unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_view_numbers_lines_honours_ranges_and_lists_directories() {
    let Some(c) = container("view").await else { return };
    let mut tools = Toolset::swe_agent();
    let text: String = (1..=12).map(|i| format!("line {i}\n")).collect();
    Sandbox::write_file(&*c, "/testbed/pkg/a.py", text.as_bytes()).await.expect("write");
    for p in ["/testbed/pkg/.hidden", "/testbed/pkg/sub/b.py", "/testbed/pkg/sub/deeper/c.py"] {
        Sandbox::write_file(&*c, p, b"x\n").await.expect("write");
    }

    let whole = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/pkg/a.py"})).await;
    assert_eq!(whole.exit_code, EXIT_OK, "{}", whole.content);
    assert!(whole.content.starts_with("Here's the result of running `cat -n` on /testbed/pkg/a.py:\n"), "{}", whole.content);
    assert!(whole.content.contains("     1\tline 1\n") && whole.content.ends_with("    12\tline 12\n"), "{}", whole.content);

    let range = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/pkg/a.py", "view_range": [3, 5]})).await;
    assert!(range.content.ends_with(":\n     3\tline 3\n     4\tline 4\n     5\tline 5\n"), "{}", range.content);
    let to_end = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/pkg/a.py", "view_range": [11, -1]})).await;
    assert!(to_end.content.ends_with(":\n    11\tline 11\n    12\tline 12\n"), "{}", to_end.content);

    let bad_start = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/pkg/a.py", "view_range": [0, 2]})).await;
    assert_eq!(bad_start.exit_code, EXIT_TOOL_ERROR);
    assert!(bad_start.content.contains("first element `0`") && bad_start.content.contains("[1, 12]"), "{}", bad_start.content);
    let bad_end = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/pkg/a.py", "view_range": [5, 13]})).await;
    assert!(bad_end.content.contains("second element `13`"), "{}", bad_end.content);

    let dir = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/pkg"})).await;
    assert_eq!(dir.exit_code, EXIT_OK, "{}", dir.content);
    let listed: Vec<&str> = dir.content.lines().skip(1).collect();
    assert_eq!(listed, ["/testbed/pkg", "/testbed/pkg/a.py", "/testbed/pkg/sub", "/testbed/pkg/sub/b.py", "/testbed/pkg/sub/deeper"], "{}", dir.content);

    let dir_range = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/pkg", "view_range": [1, 2]})).await;
    assert_eq!(dir_range.exit_code, EXIT_USAGE, "{}", dir_range.content);
    let missing = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/nope.py"})).await;
    assert_eq!(missing.exit_code, EXIT_TOOL_ERROR);
    assert!(missing.content.contains("/testbed/nope.py does not exist"), "{}", missing.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_create_refuses_an_existing_file_and_undo_removes_what_it_created() {
    let Some(c) = container("create").await else { return };
    let mut tools = Toolset::swe_agent();
    let created = edit(&mut tools, &c, json!({"command": "create", "path": "/testbed/new/mod.py", "file_text": "def f():\n    return 1\n"})).await;
    assert_eq!(created.exit_code, EXIT_OK, "{}", created.content);
    assert_eq!(created.content, "File created successfully at: /testbed/new/mod.py");
    assert_eq!(read(&c, "/testbed/new/mod.py").await, b"def f():\n    return 1\n");

    let again = edit(&mut tools, &c, json!({"command": "create", "path": "/testbed/new/mod.py", "file_text": "other"})).await;
    assert_eq!(again.exit_code, EXIT_TOOL_ERROR);
    assert!(again.content.starts_with("File already exists at: /testbed/new/mod.py"), "{}", again.content);
    assert_eq!(read(&c, "/testbed/new/mod.py").await, b"def f():\n    return 1\n", "a refused create leaves the file alone");
    let on_dir = edit(&mut tools, &c, json!({"command": "create", "path": "/testbed/new", "file_text": "x"})).await;
    assert_eq!(on_dir.exit_code, EXIT_TOOL_ERROR, "{}", on_dir.content);

    let undone = edit(&mut tools, &c, json!({"command": "undo_edit", "path": "/testbed/new/mod.py"})).await;
    assert_eq!(undone.exit_code, EXIT_OK, "{}", undone.content);
    assert_eq!(run(&c, "test -e /testbed/new/mod.py").await.exit_code, 1, "undoing a create removes the file");
    let nothing = edit(&mut tools, &c, json!({"command": "undo_edit", "path": "/testbed/new/mod.py"})).await;
    assert_eq!((nothing.exit_code, nothing.content.as_str()), (EXIT_TOOL_ERROR, "No edit history found for /testbed/new/mod.py."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_str_replace_needs_exactly_one_match_and_names_the_count() {
    let Some(c) = container("replace").await else { return };
    let mut tools = Toolset::swe_agent();
    let original = b"x = 1\ny = 2\nx = 1\n";
    Sandbox::write_file(&*c, "/testbed/m.py", original).await.expect("write");

    let two = edit(&mut tools, &c, json!({"command": "str_replace", "path": "/testbed/m.py", "old_str": "x = 1", "new_str": "x = 5"})).await;
    assert_eq!(two.exit_code, EXIT_TOOL_ERROR);
    assert!(two.content.contains("occurs 2 times") && two.content.contains("lines 1, 3"), "{}", two.content);
    let zero = edit(&mut tools, &c, json!({"command": "str_replace", "path": "/testbed/m.py", "old_str": "z = 9", "new_str": "z = 1"})).await;
    assert_eq!(zero.exit_code, EXIT_TOOL_ERROR);
    assert!(zero.content.contains("did not appear verbatim") && zero.content.contains("0 occurrences"), "{}", zero.content);
    assert_eq!(read(&c, "/testbed/m.py").await, original, "refused replacements leave the file alone");

    let one = edit(&mut tools, &c, json!({"command": "str_replace", "path": "/testbed/m.py", "old_str": "y = 2\n", "new_str": "y = 3\ny2 = 4\n"})).await;
    assert_eq!(one.exit_code, EXIT_OK, "{}", one.content);
    assert!(one.content.contains("     2\ty = 3\n     3\ty2 = 4\n     4\tx = 1\n"), "{}", one.content);
    assert_eq!(read(&c, "/testbed/m.py").await, b"x = 1\ny = 3\ny2 = 4\nx = 1\n");
    let deleted = edit(&mut tools, &c, json!({"command": "str_replace", "path": "/testbed/m.py", "old_str": "y2 = 4\n"})).await;
    assert_eq!(deleted.exit_code, EXIT_OK, "a missing new_str deletes old_str: {}", deleted.content);
    assert_eq!(read(&c, "/testbed/m.py").await, b"x = 1\ny = 3\nx = 1\n");

    for _ in 0..2 {
        let undo = edit(&mut tools, &c, json!({"command": "undo_edit", "path": "/testbed/m.py"})).await;
        assert_eq!(undo.exit_code, EXIT_OK, "{}", undo.content);
    }
    assert_eq!(read(&c, "/testbed/m.py").await, original, "two undos restore the original bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_insert_goes_after_the_line_at_the_top_and_at_the_end() {
    let Some(c) = container("insert").await else { return };
    let mut tools = Toolset::swe_agent();
    Sandbox::write_file(&*c, "/testbed/i.txt", b"a\nb\n").await.expect("write");
    let top = edit(&mut tools, &c, json!({"command": "insert", "path": "/testbed/i.txt", "insert_line": 0, "new_str": "top"})).await;
    assert_eq!(top.exit_code, EXIT_OK, "{}", top.content);
    assert_eq!(read(&c, "/testbed/i.txt").await, b"top\na\nb\n");
    let end = edit(&mut tools, &c, json!({"command": "insert", "path": "/testbed/i.txt", "insert_line": 3, "new_str": "end1\nend2"})).await;
    assert_eq!(end.exit_code, EXIT_OK, "{}", end.content);
    assert_eq!(read(&c, "/testbed/i.txt").await, b"top\na\nb\nend1\nend2\n");
    assert!(end.content.contains("     4\tend1\n     5\tend2\n"), "{}", end.content);
    let past = edit(&mut tools, &c, json!({"command": "insert", "path": "/testbed/i.txt", "insert_line": 9, "new_str": "x"})).await;
    assert_eq!(past.exit_code, EXIT_TOOL_ERROR);
    assert!(past.content.contains("[0, 5]"), "{}", past.content);
    let as_text = edit(&mut tools, &c, json!({"command": "insert", "path": "/testbed/i.txt", "insert_line": "1", "new_str": "second"})).await;
    assert_eq!(as_text.exit_code, EXIT_OK, "an integer written as a string is accepted: {}", as_text.content);
    assert_eq!(read(&c, "/testbed/i.txt").await, b"top\nsecond\na\nb\nend1\nend2\n");

    Sandbox::write_file(&*c, "/testbed/u.txt", b"a\nb").await.expect("write");
    let after_unterminated = edit(&mut tools, &c, json!({"command": "insert", "path": "/testbed/u.txt", "insert_line": 2, "new_str": "c"})).await;
    assert_eq!(after_unterminated.exit_code, EXIT_OK, "{}", after_unterminated.content);
    assert_eq!(read(&c, "/testbed/u.txt").await, b"a\nb\nc", "an unterminated last line stays unterminated");

    for _ in 0..3 {
        edit(&mut tools, &c, json!({"command": "undo_edit", "path": "/testbed/i.txt"})).await;
    }
    assert_eq!(read(&c, "/testbed/i.txt").await, b"a\nb\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_refuses_relative_paths_and_malformed_calls() {
    let Some(c) = container("paths").await else { return };
    let mut tools = Toolset::swe_agent();
    let relative = edit(&mut tools, &c, json!({"command": "view", "path": "pkg/a.py"})).await;
    assert_eq!(relative.exit_code, EXIT_USAGE);
    assert!(relative.content.contains("not an absolute path") && relative.content.contains("/testbed/pkg/a.py"), "{}", relative.content);
    let unknown = edit(&mut tools, &c, json!({"command": "delete", "path": "/testbed/a.py"})).await;
    assert_eq!(unknown.exit_code, EXIT_USAGE);
    assert!(unknown.content.contains("Unrecognized command \"delete\""), "{}", unknown.content);
    let no_path = edit(&mut tools, &c, json!({"command": "view"})).await;
    assert!(no_path.content.contains("`path` is required"), "{}", no_path.content);
    let bad_range = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed", "view_range": "lines 1 to 3"})).await;
    assert_eq!(bad_range.exit_code, EXIT_USAGE);
    assert!(bad_range.content.contains("list of integers"), "{}", bad_range.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_edits_keep_every_other_byte_crlf_and_line_separators_included() {
    let Some(c) = container("bytes").await else { return };
    let mut tools = Toolset::swe_agent();
    // CRLF lines, a U+2028 inside a line (a line break to Python's splitlines, not to us), a
    // form feed, a byte that is not UTF-8, and no final newline.
    let original = b"first\r\nsecond \xe2\x80\xa8 still second\r\n\x0cthird = 1\r\nlatin \xe9\r\nlast".to_vec();
    Sandbox::write_file(&*c, "/testbed/w.py", &original).await.expect("write");
    assert_eq!(run(&c, "chmod 755 /testbed/w.py && stat -c %a /testbed/w.py").await.output.trim(), "755");

    let view = edit(&mut tools, &c, json!({"command": "view", "path": "/testbed/w.py"})).await;
    assert!(view.content.contains("     2\tsecond \u{2028} still second\r\n     3\t\u{c}third = 1\r\n"), "{:?}", view.content);
    assert!(view.content.ends_with("     5\tlast\n"), "{:?}", view.content);

    let replaced = edit(&mut tools, &c, json!({"command": "str_replace", "path": "/testbed/w.py", "old_str": "third = 1", "new_str": "third = 2"})).await;
    assert_eq!(replaced.exit_code, EXIT_OK, "{}", replaced.content);
    let expected = b"first\r\nsecond \xe2\x80\xa8 still second\r\n\x0cthird = 2\r\nlatin \xe9\r\nlast".to_vec();
    assert_eq!(read(&c, "/testbed/w.py").await, expected, "only the replaced bytes change");
    let inserted = edit(&mut tools, &c, json!({"command": "insert", "path": "/testbed/w.py", "insert_line": 2, "new_str": "inserted\r"})).await;
    assert_eq!(inserted.exit_code, EXIT_OK, "{}", inserted.content);
    let expected = b"first\r\nsecond \xe2\x80\xa8 still second\r\ninserted\r\n\x0cthird = 2\r\nlatin \xe9\r\nlast".to_vec();
    assert_eq!(read(&c, "/testbed/w.py").await, expected, "insert splits on \\n only");
    assert_eq!(run(&c, "stat -c %a /testbed/w.py").await.output.trim(), "755", "an edit keeps the file's mode");
    edit(&mut tools, &c, json!({"command": "undo_edit", "path": "/testbed/w.py"})).await;
    edit(&mut tools, &c, json!({"command": "undo_edit", "path": "/testbed/w.py"})).await;
    assert_eq!(read(&c, "/testbed/w.py").await, original);

    // A symlink is edited through, not replaced.
    run(&c, "ln -s w.py /testbed/link.py").await;
    let through = edit(&mut tools, &c, json!({"command": "str_replace", "path": "/testbed/link.py", "old_str": "first", "new_str": "FIRST"})).await;
    assert_eq!(through.exit_code, EXIT_OK, "{}", through.content);
    assert!(read(&c, "/testbed/w.py").await.starts_with(b"FIRST\r\n"));
    assert_eq!(run(&c, "test -L /testbed/link.py && echo link").await.output.trim(), "link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_kills_a_command_past_its_timeout_with_its_background_children() {
    let Some(c) = container("timeout").await else { return };
    let mut tools = Toolset::swe_agent();
    let args = json!({"command": "echo started; sleep 1000 & sleep 1000"}).to_string();
    let started = std::time::Instant::now();
    let out = call_raw(&mut tools, &c, "bash", &args, Duration::from_secs(2), 32 * 1024).await;
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.exit_code, 137);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(out.content.starts_with("started\n") && out.content.contains("timed out after 2 s"), "{}", out.content);
    let survivors = run(&c, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep 1000' || true").await;
    assert_eq!(survivors.output.trim(), "0", "the background sleep must be killed too");

    let quick = call(&mut tools, &c, "bash", json!({"command": "true"})).await;
    assert_eq!((quick.exit_code, quick.timed_out), (0, false));
    assert_eq!(quick.content, "The command ran successfully and printed nothing.");
    let failing = call(&mut tools, &c, "bash", json!({"command": "echo oops >&2; exit 4"})).await;
    assert_eq!((failing.exit_code, failing.content.as_str()), (4, "oops\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_truncates_ten_megabytes_with_the_marker_and_keeps_the_exit_code() {
    let Some(c) = container("truncate").await else { return };
    let mut tools = Toolset::swe_agent();
    let args = json!({"command": "head -c 10000000 /dev/zero | tr '\\0' a; exit 3"}).to_string();
    let out = call_raw(&mut tools, &c, "bash", &args, Duration::from_secs(30), 16 * 1024).await;
    assert_eq!(out.exit_code, 3);
    assert!(out.truncated && !out.timed_out, "{:?}", (out.truncated, out.timed_out));
    let marker = TRUNCATION_MARKER.replace("{omitted}", &(10_000_000 - 16 * 1024).to_string());
    assert!(out.content.ends_with(&marker), "{:?}", &out.content[out.content.len().saturating_sub(200)..]);
    assert_eq!(out.content.len(), 16 * 1024 + marker.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_gives_a_binary_safe_patch_that_applies_byte_for_byte_in_a_fresh_container() {
    let worker = "agent-tools-submit";
    let Some(engine) = docker("submit", worker).await else { return };
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let base_files: [(&str, &[u8]); 4] = [
        ("/testbed/a.py", b"print('a')\n"),
        ("/testbed/latin1.txt", b"caf\xe9\n"),
        ("/testbed/old.bin", b"\x00\x01old"),
        ("/testbed/keep.txt", b"keep\n"),
    ];
    let prepare = |c: Guard| async move {
        for (path, bytes) in base_files {
            Sandbox::write_file(&*c, path, bytes).await.expect("write a base file");
        }
        let init = run(&c, &init_archive_repo_script()).await;
        assert_eq!(init.exit_code, 0, "{}", init.output);
        (c, init.output.lines().last().unwrap_or_default().to_string())
    };
    let (c, base) = prepare(start(&engine, worker, WORKDIR, "submit-agent").await).await;
    let mut tools = Toolset::swe_agent();
    edit(&mut tools, &c, json!({"command": "str_replace", "path": "/testbed/a.py", "old_str": "'a'", "new_str": "'b'"})).await;
    edit(&mut tools, &c, json!({"command": "create", "path": "/testbed/new dir/x y.py", "file_text": "x = 'é'\n"})).await;
    Sandbox::write_file(&*c, "/testbed/img.bin", &binary).await.expect("write binary");
    Sandbox::write_file(&*c, "/testbed/latin1.txt", b"caf\xe9 cr\xe8me\n").await.expect("write latin-1");
    // The model may commit on the way; the patch is still taken against the base commit.
    let commit = run(&c, "rm /testbed/old.bin && git -c user.name=m -c user.email=m@x commit -qam wip").await;
    assert_eq!(commit.exit_code, 0, "{}", commit.output);
    run(&c, "mkdir -p /agentmill && echo internal > /agentmill/state").await;

    let ctx_call = ToolCall { id: "s".into(), kind: "function".into(), function: FunctionCall { name: "submit".into(), arguments: String::new() } };
    let ctx = ToolContext { sandbox: &*c, base_commit: &base, step_timeout: Duration::from_secs(30), max_output: 1 << 20 };
    let out = tools.dispatch(&ctx_call, &ctx).await.expect("submit");
    let patch = out.submission.expect("submit returns the patch");
    assert!(out.content.contains(&patch), "the observation shows the patch");
    assert!(patch.contains("GIT binary patch"), "{patch}");
    assert!(patch.contains("diff --git a/latin1.txt b/latin1.txt") && patch.contains("diff --git a/old.bin b/old.bin"), "{patch}");
    assert!(!patch.contains("agentmill") && !patch.contains("keep.txt"), "only the model's changes: {patch}");
    let latin1 = patch.split("diff --git ").find(|d| d.starts_with("a/latin1.txt")).unwrap_or_default();
    assert!(latin1.contains("GIT binary patch"), "a diff that is not UTF-8 goes in binary form: {latin1}");
    let python = patch.split("diff --git ").find(|d| d.starts_with("a/a.py")).unwrap_or_default();
    assert!(python.contains("-print('a')\n+print('b')"), "text diffs stay readable: {python}");

    let (fresh, fresh_base) = prepare(start(&engine, worker, WORKDIR, "submit-fresh").await).await;
    assert_eq!(fresh_base, base, "the base commit is deterministic");
    let method = apply(&fresh, "model", &patch).await.unwrap_or_else(|| panic!("the patch does not apply:\n{patch}"));
    assert_eq!(method, "git apply");
    assert_eq!(read(&fresh, "/testbed/a.py").await, b"print('b')\n");
    assert_eq!(read(&fresh, "/testbed/new dir/x y.py").await, "x = 'é'\n".as_bytes());
    assert_eq!(read(&fresh, "/testbed/img.bin").await, binary);
    assert_eq!(read(&fresh, "/testbed/latin1.txt").await, b"caf\xe9 cr\xe8me\n");
    assert_eq!(run(&fresh, "test -e /testbed/old.bin").await.exit_code, 1);
    drop(c);
}
