//! Conversions between the serde types and their `agentmill.v1` protobuf forms.
//!
//! A typed [`v1::TaskSpec`] is validated by the same code as a JSON row: it is turned into the
//! row it stands for and parsed, so both doors into the coordinator accept exactly the same tasks.

use serde_json::{Map, Value, json};

use crate::record::{ExitReason, Resolution, Timing};
use crate::dataset::harbor::HarborSpec;
use crate::task::{FieldError, Limits, Source, SynthSpec, Task, TaskKind};
use crate::v1;

impl From<&Task> for v1::TaskSpec {
    fn from(t: &Task) -> Self {
        v1::TaskSpec {
            instance_id: t.instance_id.clone(),
            repo: t.repo.clone(),
            base_commit: t.base_commit.clone(),
            problem_statement: t.problem_statement.clone(),
            hints_text: t.hints_text.clone(),
            patch: t.patch.clone(),
            test_patch: t.test_patch.clone(),
            fail_to_pass: t.fail_to_pass.clone(),
            pass_to_pass: t.pass_to_pass.clone(),
            version: t.version.clone(),
            environment_setup_commit: t.environment_setup_commit.clone(),
            created_at: t.created_at.clone(),
            image: t.image.clone(),
            workdir: t.workdir.clone(),
            source: Some(source_to_proto(&t.source)),
            test_cmd: t.test_cmd.clone().unwrap_or_default(),
            eval_script: t.eval_script.clone().unwrap_or_default(),
            limits: Some(limits_to_proto(&t.limits)),
            policy: t.policy.clone().unwrap_or_default(),
            rollouts: t.rollouts,
            priority: t.priority,
            labels: t.labels.clone().into_iter().collect(),
            worker_selector: t.worker_selector.clone().into_iter().collect(),
            allow_network: t.allow_network,
            kind: match t.kind {
                TaskKind::Episode => v1::TaskKind::Episode,
                TaskKind::Synth => v1::TaskKind::Synth,
            } as i32,
            synth: t.synth.as_ref().map(synth_to_proto),
            extra_json: if t.extra.is_empty() { String::new() } else { serde_json::to_string(&t.extra).unwrap_or_default() },
            family: t.family.as_str().to_string(),
            log_parser: t.log_parser.clone().unwrap_or_default(),
            eval_type: t.eval_type.map(|e| e.as_str().to_string()).unwrap_or_default(),
            harbor: t.harbor.as_ref().map(harbor_to_proto),
        }
    }
}

impl TryFrom<&v1::TaskSpec> for Task {
    type Error = Vec<FieldError>;

    fn try_from(s: &v1::TaskSpec) -> Result<Self, Self::Error> {
        let mut row = Map::new();
        let mut put = |k: &str, v: Value| {
            row.insert(k.to_string(), v);
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| Value::String(s.to_string()));
        if !s.extra_json.is_empty() {
            match serde_json::from_str::<Map<String, Value>>(&s.extra_json) {
                Ok(extra) => extra.into_iter().for_each(|(k, v)| put(&k, v)),
                Err(e) => {
                    return Err(vec![FieldError { field: "extra_json".into(), reason: format!("is not a JSON object: {e}") }]);
                }
            }
        }
        put("instance_id", json!(s.instance_id));
        put("kind", json!(if s.kind == v1::TaskKind::Synth as i32 { "synth" } else { "episode" }));
        put("repo", json!(s.repo));
        put("base_commit", json!(s.base_commit));
        put("problem_statement", json!(s.problem_statement));
        put("hints_text", json!(s.hints_text));
        put("patch", json!(s.patch));
        put("test_patch", json!(s.test_patch));
        put("FAIL_TO_PASS", json!(s.fail_to_pass));
        put("PASS_TO_PASS", json!(s.pass_to_pass));
        put("version", json!(s.version));
        put("environment_setup_commit", json!(s.environment_setup_commit));
        put("created_at", json!(s.created_at));
        if let Some(v) = non_empty(&s.image) {
            put("image", v);
        }
        if let Some(v) = non_empty(&s.workdir) {
            put("workdir", v);
        }
        match s.source.as_ref().and_then(|src| src.kind.as_ref()) {
            None | Some(v1::source::Kind::Image(_)) => {}
            Some(v1::source::Kind::Archive(a)) => {
                put("source", json!({"type": "archive", "path": a.path, "sha256": non_empty(&a.sha256)}));
            }
            Some(v1::source::Kind::Git(g)) => put("source", json!({"type": "git", "url": g.url})),
        }
        if let Some(v) = non_empty(&s.test_cmd) {
            put("test_cmd", v);
        }
        if let Some(v) = non_empty(&s.eval_script) {
            put("eval_script", v);
        }
        if let Some(v) = non_empty(&s.family) {
            put("family", v);
        }
        if let Some(v) = non_empty(&s.log_parser) {
            put("log_parser", v);
        }
        if let Some(v) = non_empty(&s.eval_type) {
            put("eval_type", v);
        }
        if let Some(l) = &s.limits {
            put("limits", limits_to_json(l));
        }
        if let Some(v) = non_empty(&s.policy) {
            put("policy", v);
        }
        if s.rollouts != 0 {
            put("rollouts", json!(s.rollouts));
        }
        put("priority", json!(s.priority));
        put("labels", json!(s.labels));
        put("worker_selector", json!(s.worker_selector));
        put("allow_network", json!(s.allow_network));
        if let Some(synth) = s.synth.as_ref().and_then(synth_from_proto) {
            put("synth", serde_json::to_value(synth).unwrap_or(Value::Null));
        }
        if let Some(h) = &s.harbor {
            put("harbor", harbor_to_json(h));
        }
        Task::from_json_object(row)
    }
}

fn harbor_to_proto(h: &HarborSpec) -> v1::HarborSpec {
    v1::HarborSpec {
        name: h.name.clone(),
        docker_image: h.docker_image.clone().unwrap_or_default(),
        dockerfile: h.dockerfile.clone().unwrap_or_default(),
        build_timeout_s: h.build_timeout_s,
        test_script: h.test_script.clone(),
        solve_script: h.solve_script.clone().unwrap_or_default(),
        workdir: h.workdir.clone().unwrap_or_default(),
        env: h.env.clone().into_iter().collect(),
        verifier_env: h.verifier_env.clone().into_iter().collect(),
        solution_env: h.solution_env.clone().into_iter().collect(),
        agent_user: h.agent_user.clone().unwrap_or_default(),
        verifier_user: h.verifier_user.clone().unwrap_or_default(),
        network_mode: h.network_mode.clone(),
        allowed_hosts: h.allowed_hosts.clone(),
        gpus: h.gpus.unwrap_or(0),
        min_reward: h.min_reward.clone().into_iter().collect(),
        content: h.content.clone().unwrap_or_default(),
    }
}

/// Empty strings and zero mean "not set", as in the rest of the proto.
fn harbor_to_json(h: &v1::HarborSpec) -> Value {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let sorted = |m: &std::collections::HashMap<String, String>| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<std::collections::BTreeMap<_, _>>();
    let spec = HarborSpec {
        name: h.name.clone(),
        docker_image: opt(&h.docker_image),
        dockerfile: opt(&h.dockerfile),
        build_timeout_s: h.build_timeout_s,
        test_script: h.test_script.clone(),
        solve_script: opt(&h.solve_script),
        workdir: opt(&h.workdir),
        env: sorted(&h.env),
        verifier_env: sorted(&h.verifier_env),
        solution_env: sorted(&h.solution_env),
        agent_user: opt(&h.agent_user),
        verifier_user: opt(&h.verifier_user),
        network_mode: h.network_mode.clone(),
        allowed_hosts: h.allowed_hosts.clone(),
        gpus: (h.gpus != 0).then_some(h.gpus),
        min_reward: h.min_reward.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        content: opt(&h.content),
    };
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

fn source_to_proto(s: &Source) -> v1::Source {
    let kind = match s {
        Source::Image => v1::source::Kind::Image(v1::ImageSource {}),
        Source::Archive { path, sha256 } => {
            v1::source::Kind::Archive(v1::ArchiveSource { path: path.clone(), sha256: sha256.clone().unwrap_or_default() })
        }
        Source::Git { url } => v1::source::Kind::Git(v1::GitSource { url: url.clone() }),
    };
    v1::Source { kind: Some(kind) }
}

fn limits_to_proto(l: &Limits) -> v1::Limits {
    v1::Limits {
        max_steps: l.max_steps.unwrap_or(0),
        step_timeout_s: l.step_timeout_s.unwrap_or(0),
        episode_timeout_s: l.episode_timeout_s.unwrap_or(0),
        test_timeout_s: l.test_timeout_s.unwrap_or(0),
        cpus: l.cpus.unwrap_or(0.0),
        memory_bytes: l.memory.unwrap_or(0),
        pids: l.pids.unwrap_or(0),
        disk_bytes: l.disk.unwrap_or(0),
        context_tokens: l.context_tokens.unwrap_or(0),
    }
}

/// Zero in the proto means "the worker's default", which is `None` here.
fn limits_to_json(l: &v1::Limits) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value, set: bool| {
        if set {
            m.insert(k.to_string(), v);
        }
    };
    put("max_steps", json!(l.max_steps), l.max_steps != 0);
    put("step_timeout_s", json!(l.step_timeout_s), l.step_timeout_s != 0);
    put("episode_timeout_s", json!(l.episode_timeout_s), l.episode_timeout_s != 0);
    put("test_timeout_s", json!(l.test_timeout_s), l.test_timeout_s != 0);
    put("cpus", json!(l.cpus), l.cpus != 0.0);
    put("memory", json!(l.memory_bytes), l.memory_bytes != 0);
    put("pids", json!(l.pids), l.pids != 0);
    put("disk", json!(l.disk_bytes), l.disk_bytes != 0);
    put("context_tokens", json!(l.context_tokens), l.context_tokens != 0);
    Value::Object(m)
}

fn synth_to_proto(s: &SynthSpec) -> v1::SynthSpec {
    let input = match s {
        SynthSpec::Git { repo_path, from_rev, to_rev, single_commits, issues_path } => {
            v1::synth_spec::Input::Git(v1::SynthGitRange {
                repo_path: repo_path.clone(),
                from_rev: from_rev.clone(),
                to_rev: to_rev.clone(),
                single_commits: *single_commits,
                issues_path: issues_path.clone(),
            })
        }
        SynthSpec::Rows { path, offset, limit } => {
            v1::synth_spec::Input::Rows(v1::SynthRowsShard { path: path.clone(), offset: *offset, limit: *limit })
        }
    };
    v1::SynthSpec { input: Some(input) }
}

fn synth_from_proto(s: &v1::SynthSpec) -> Option<SynthSpec> {
    Some(match s.input.as_ref()? {
        v1::synth_spec::Input::Git(g) => SynthSpec::Git {
            repo_path: g.repo_path.clone(),
            from_rev: g.from_rev.clone(),
            to_rev: g.to_rev.clone(),
            single_commits: g.single_commits,
            issues_path: g.issues_path.clone(),
        },
        v1::synth_spec::Input::Rows(r) => SynthSpec::Rows { path: r.path.clone(), offset: r.offset, limit: r.limit },
    })
}

impl From<ExitReason> for v1::ExitReason {
    fn from(r: ExitReason) -> Self {
        match r {
            ExitReason::Submitted => v1::ExitReason::Submitted,
            ExitReason::MaxSteps => v1::ExitReason::MaxSteps,
            ExitReason::ContextOverflow => v1::ExitReason::ContextOverflow,
            ExitReason::StepTimeout => v1::ExitReason::StepTimeout,
            ExitReason::EpisodeTimeout => v1::ExitReason::EpisodeTimeout,
            ExitReason::PolicyError => v1::ExitReason::PolicyError,
            ExitReason::SandboxError => v1::ExitReason::SandboxError,
            ExitReason::InfraError => v1::ExitReason::InfraError,
            ExitReason::Cancelled => v1::ExitReason::Cancelled,
        }
    }
}

impl TryFrom<v1::ExitReason> for ExitReason {
    type Error = ();

    /// `UNSPECIFIED` has no serde form.
    fn try_from(r: v1::ExitReason) -> Result<Self, ()> {
        Ok(match r {
            v1::ExitReason::Unspecified => return Err(()),
            v1::ExitReason::Submitted => ExitReason::Submitted,
            v1::ExitReason::MaxSteps => ExitReason::MaxSteps,
            v1::ExitReason::ContextOverflow => ExitReason::ContextOverflow,
            v1::ExitReason::StepTimeout => ExitReason::StepTimeout,
            v1::ExitReason::EpisodeTimeout => ExitReason::EpisodeTimeout,
            v1::ExitReason::PolicyError => ExitReason::PolicyError,
            v1::ExitReason::SandboxError => ExitReason::SandboxError,
            v1::ExitReason::InfraError => ExitReason::InfraError,
            v1::ExitReason::Cancelled => ExitReason::Cancelled,
        })
    }
}

impl From<Resolution> for v1::Resolution {
    fn from(r: Resolution) -> Self {
        match r {
            Resolution::Full => v1::Resolution::Full,
            Resolution::Partial => v1::Resolution::Partial,
            Resolution::No => v1::Resolution::No,
        }
    }
}

impl TryFrom<v1::Resolution> for Resolution {
    type Error = ();

    /// `UNSPECIFIED` (not graded) has no serde form.
    fn try_from(r: v1::Resolution) -> Result<Self, ()> {
        match r {
            v1::Resolution::Unspecified => Err(()),
            v1::Resolution::Full => Ok(Resolution::Full),
            v1::Resolution::Partial => Ok(Resolution::Partial),
            v1::Resolution::No => Ok(Resolution::No),
        }
    }
}

impl From<&Timing> for v1::Timing {
    fn from(t: &Timing) -> Self {
        v1::Timing {
            queue_ms: t.queue_ms,
            image_ms: t.image_ms,
            start_ms: t.start_ms,
            agent_ms: t.agent_ms,
            grade_ms: t.grade_ms,
            total_ms: t.total_ms,
        }
    }
}

impl From<&v1::Timing> for Timing {
    fn from(t: &v1::Timing) -> Self {
        Timing {
            queue_ms: t.queue_ms,
            image_ms: t.image_ms,
            start_ms: t.start_ms,
            agent_ms: t.agent_ms,
            grade_ms: t.grade_ms,
            total_ms: t.total_ms,
        }
    }
}

impl From<&crate::TrajectoryRecord> for v1::EpisodeResult {
    /// The summary a worker reports to the coordinator for a published record.
    fn from(r: &crate::TrajectoryRecord) -> Self {
        let resolution = r.grading.as_ref().map(|g| v1::Resolution::from(g.resolution)).unwrap_or(v1::Resolution::Unspecified);
        v1::EpisodeResult {
            record_id: r.record_id.clone(),
            exit_reason: r.exit_reason.map(v1::ExitReason::from).unwrap_or(v1::ExitReason::Unspecified) as i32,
            resolution: resolution as i32,
            resolved: r.resolved(),
            reward: r.reward.unwrap_or(0.0),
            error: r.error.clone().unwrap_or_default(),
            timing: Some(v1::Timing::from(&r.timing)),
            image_digest: r.provenance.image_digest.clone(),
            stream_id: String::new(),
            steps: r.messages.iter().filter(|m| m.role == crate::Role::Assistant).count() as u32,
            records_published: 1,
        }
    }
}

/// One set of names for the wire enums, used in reports, metrics labels and logs.
impl v1::TaskState {
    /// The lower-case name (`queued`, `leased`, ...).
    pub fn name(self) -> &'static str {
        match self {
            v1::TaskState::Unspecified => "unspecified",
            v1::TaskState::Queued => "queued",
            v1::TaskState::Leased => "leased",
            v1::TaskState::Running => "running",
            v1::TaskState::Done => "done",
            v1::TaskState::Failed => "failed",
            v1::TaskState::Cancelled => "cancelled",
        }
    }
}

impl v1::ExitReason {
    /// The snake_case name of [`ExitReason::as_str`] (`unspecified` for the zero value).
    pub fn name(self) -> &'static str {
        ExitReason::try_from(self).map(ExitReason::as_str).unwrap_or("unspecified")
    }
}

impl v1::Resolution {
    /// The name of [`Resolution::as_str`] (`UNSPECIFIED` for an episode not graded).
    pub fn name(self) -> &'static str {
        Resolution::try_from(self).map(Resolution::as_str).unwrap_or("UNSPECIFIED")
    }
}
