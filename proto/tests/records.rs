//! TrajectoryRecord v1: JSON and wire round trips, the schema file, and the proto summary.

use std::path::Path;

use agentmill_proto::*;

fn sample_env() -> TrajectoryRecord {
    let mut assistant = Message::text(Role::Assistant, "Let me look at the parser.");
    assistant.reasoning_content = Some("The bug is probably in split().".into());
    assistant.tool_calls = vec![ToolCall {
        id: "call_1".into(),
        kind: "function".into(),
        function: FunctionCall { name: "bash".into(), arguments: r#"{"command": "grep -n split src/ini.py"}"#.into() },
    }];
    assistant.token_ids = Some(vec![151644, 77091, 198]);
    assistant.logprobs = Some(vec![-0.25, -1.5, 0.0]);
    assistant.usage = Some(Usage { prompt_tokens: 812, completion_tokens: 3 });
    let mut tool = Message::text(Role::Tool, "12:    key, value = line.split('=')\n");
    tool.tool_call_id = Some("call_1".into());
    tool.name = Some("bash".into());
    tool.exit_code = Some(0);
    tool.duration_ms = Some(41);
    tool.truncated = Some(false);
    TrajectoryRecord {
        schema: RECORD_SCHEMA.into(),
        record_id: TrajectoryRecord::episode_record_id("agentmill__inifile-1", 2, 1),
        kind: RecordKind::Env,
        task_id: "agentmill__inifile-1".into(),
        attempt: 1,
        rollout: 2,
        worker: "worker-a".into(),
        created_at: "2026-11-24T09:00:00Z".into(),
        versions: [("agentmill".to_string(), VERSION.to_string())].into_iter().collect(),
        provenance: Provenance {
            repo: "agentmill/inifile".into(),
            base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            image: "agentmill/sandbox-python:bookworm".into(),
            image_digest: "sha256:feedface".into(),
            policy: Some(PolicyInfo {
                name: "openai".into(),
                model: "qwen2.5-coder".into(),
                sampling: serde_json::json!({"temperature": 0.7, "top_p": 0.95}),
                weight_version: "step-1200".into(),
            }),
            limits: Some(agentmill_proto::Limits { pids: Some(512), memory: Some(2 << 30), step_timeout_s: Some(180), ..Default::default() }),
        },
        tools: vec![serde_json::json!({"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}})],
        messages: vec![Message::text(Role::System, "You are a software engineer."), Message::text(Role::User, "Fix the issue."), assistant, tool],
        exit_reason: Some(ExitReason::Submitted),
        error: None,
        model_patch: Some("diff --git a/src/ini.py b/src/ini.py\n".into()),
        grading: Some(Grading::from_outcomes(
            vec![
                TestOutcome::new("tests/test_ini.py::test_eq[a=b=c]", TestStatus::Passed),
                TestOutcome::new("tests/test_ini.py::test_empty", TestStatus::Failed),
            ],
            vec![TestOutcome::new("tests/test_ini.py::test_basic", TestStatus::Passed)],
            "git apply",
        )),
        reward: Some(0.0),
        timing: Timing { queue_ms: 5, image_ms: 1, start_ms: 800, agent_ms: 9000, grade_ms: 2100, total_ms: 11906 },
        ctx: None,
        model_calls: vec![],
    }
}

fn sample_ctx() -> TrajectoryRecord {
    TrajectoryRecord {
        worker: "worker-b".into(),
        created_at: "2026-11-24T09:00:00Z".into(),
        provenance: Provenance { repo: "agentmill/inifile".into(), base_commit: "abc".into(), ..Default::default() },
        ctx: Some(ContextualPr {
            repo_name: "agentmill/inifile".into(),
            title: "Allow '=' in values".into(),
            related_issue: Some(Issue { title: "values are cut".into(), body: "…".into(), comments: vec![Comment { author: "a".into(), body: "+1".into() }] }),
            relevant_files: vec![RelevantFile { path: "src/ini.py".into(), content: "x = 1\u{2028}\u{85}\x0c\n".into() }],
            commits: vec![Commit { message: "fix".into(), refined_message: None, diffs: vec![FileDiff { path: "src/ini.py".into(), patch: "@@".into() }] }],
            template: "python_pr".into(),
            text: "# Repository Context\n…".into(),
            ..Default::default()
        }),
        ..TrajectoryRecord::new(RecordKind::Ctx, "ctx:agentmill/inifile:pr-7", "synth-1")
    }
}

#[test]
fn records_round_trip_through_json_unchanged() {
    for record in [sample_env(), sample_ctx()] {
        let json = serde_json::to_string(&record).expect("serialize");
        let back: TrajectoryRecord = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, record);
        assert_eq!(serde_json::to_string(&back).expect("serialize again"), json);
    }
}

#[test]
fn records_round_trip_through_the_compressed_wire_form_unchanged() {
    for record in [sample_env(), sample_ctx()] {
        let bytes = wire::encode(&record).expect("encode");
        let json_len = serde_json::to_vec(&record).expect("json").len();
        assert!(bytes.len() < json_len, "compressed {} ≥ json {json_len}", bytes.len());
        assert_eq!(wire::decode(wire::CODEC_ZSTD_JSON, &bytes).expect("decode"), record);
    }
}

#[test]
fn the_wire_form_refuses_what_it_cannot_read() {
    let bytes = wire::encode(&sample_env()).expect("encode");
    assert!(matches!(wire::decode("gzip+json", &bytes), Err(wire::WireError::UnknownCodec(_))));
    assert!(wire::decode(wire::CODEC_ZSTD_JSON, b"not zstd").is_err());
    let mut other = sample_env();
    other.schema = "agentmill.trajectory/v9".into();
    let bytes = wire::encode(&other).expect("encode");
    assert!(matches!(wire::decode(wire::CODEC_ZSTD_JSON, &bytes), Err(wire::WireError::Schema(_))));
}

#[test]
fn the_json_field_names_follow_openai_and_the_design() {
    let v = serde_json::to_value(sample_env()).expect("to value");
    assert_eq!(v["kind"], "env");
    assert_eq!(v["exit_reason"], "submitted");
    assert_eq!(v["grading"]["resolution"], "PARTIAL");
    assert_eq!(v["grading"]["resolved"], false);
    let call = &v["messages"][2]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "bash");
    assert_eq!(v["messages"][3]["role"], "tool");
    assert_eq!(v["messages"][3]["tool_call_id"], "call_1");
    assert_eq!(v["messages"][3]["exit_code"], 0);
}

#[test]
fn resolution_follows_swe_bench() {
    assert_eq!(Resolution::from_counts(2, 2, 5, 5), Resolution::Full);
    assert_eq!(Resolution::from_counts(1, 2, 5, 5), Resolution::Partial);
    assert_eq!(Resolution::from_counts(0, 2, 5, 5), Resolution::No);
    assert_eq!(Resolution::from_counts(2, 2, 4, 5), Resolution::No);
    assert_eq!(Resolution::from_counts(1, 2, 4, 5), Resolution::No);
}

#[test]
fn infra_failures_are_never_trainable() {
    let mut r = sample_env();
    for reason in ExitReason::ALL {
        r.exit_reason = Some(reason);
        let infra = matches!(reason, ExitReason::PolicyError | ExitReason::SandboxError | ExitReason::InfraError);
        assert_eq!(reason.is_infra(), infra, "{reason}");
        assert_eq!(r.is_trainable(), !infra && reason != ExitReason::Cancelled, "{reason}");
        let proto = v1::ExitReason::from(reason);
        assert_eq!(ExitReason::try_from(proto), Ok(reason));
    }
    assert!(sample_ctx().is_trainable());
}

#[test]
fn the_summary_a_worker_reports_matches_the_record() {
    let r = sample_env();
    let summary = v1::EpisodeResult::from(&r);
    assert_eq!(summary.record_id, "env:agentmill__inifile-1:r2:a1");
    assert_eq!(summary.exit_reason, v1::ExitReason::Submitted as i32);
    assert_eq!(summary.resolution, v1::Resolution::Partial as i32);
    assert!(!summary.resolved);
    assert_eq!(summary.steps, 1);
    assert_eq!(summary.timing.as_ref().map(|t| t.total_ms), Some(11906));
}

/// The committed schema files are what the types generate: regenerate with
/// `AGENTMILL_BLESS=1 cargo test -p agentmill-proto --test records`.
#[test]
fn the_committed_json_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    for (file, generated) in [("trajectory-record.v1.schema.json", record_schema()), ("task.schema.json", task_schema())] {
        let path = dir.join(file);
        if std::env::var("AGENTMILL_BLESS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(&dir).expect("mkdir schema");
            std::fs::write(&path, &generated).expect("write schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == generated, "{} is stale; regenerate with AGENTMILL_BLESS=1 cargo test -p agentmill-proto --test records", path.display());
    }
}
