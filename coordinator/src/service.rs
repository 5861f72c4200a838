//! The `agentmill.v1.Coordinator` gRPC service: validation and translation at the edge, the
//! lifecycle in [`crate::core`].

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agentmill_proto::v1::{self, coordinator_server::Coordinator, task_input::Input, worker_message::Msg as In};
use agentmill_proto::{FieldError, Task};
use futures::{Stream, StreamExt};
use prost::Message as _;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info};

use crate::auth::{Role, require};
use crate::config::RowLimits;
use crate::content::{CHUNK, ContentError, ContentStore, is_sha256};
use crate::core::{Command, CoreHandle, NewTask};
use crate::observe::ClusterView;
use crate::state::TaskMeta;

/// Tasks the core stores in one go; a bigger batch is stored slice by slice.
const SUBMIT_SLICE: usize = 500;

/// The service; cheap to clone.
#[derive(Debug, Clone)]
pub struct CoordinatorService {
    core: CoreHandle,
    max_batch: usize,
    next_session: Arc<AtomicU64>,
    view: Option<ClusterView>,
    /// The trajectory stream and a connection to its Redis, for `GetTrajectory`.
    stream: Option<(redis::aio::ConnectionManager, String)>,
    /// Where tasks' content is kept (`PutContent` / `GetContent`).
    content: Option<ContentStore>,
    /// The largest fields a submitted row may have.
    row_limits: RowLimits,
}

impl CoordinatorService {
    /// A service over a running core. Its `ClusterStats` reports no stream or learner figures
    /// until it is given the observer's view ([`with_view`](Self::with_view)).
    pub fn new(core: CoreHandle, max_batch: usize) -> Self {
        CoordinatorService { core, max_batch, next_session: Arc::new(AtomicU64::new(1)), view: None, stream: None, content: None, row_limits: RowLimits::default() }
    }

    /// Keeps tasks' content in `store` (without one, `PutContent` is refused and a task naming
    /// content is too).
    pub fn with_content(mut self, store: ContentStore) -> Self {
        self.content = Some(store);
        self
    }

    /// Refuses rows with a field over `limits` (the defaults otherwise).
    pub fn with_row_limits(mut self, limits: RowLimits) -> Self {
        self.row_limits = limits;
        self
    }

    /// Serves `GetTrajectory` from `stream` (the workers' trajectory stream) over `con`.
    pub fn with_stream(mut self, con: redis::aio::ConnectionManager, stream: String) -> Self {
        self.stream = Some((con, stream));
        self
    }

    /// Serves the stream and learner figures of `view` (fed by [`crate::observe::spawn`]) in
    /// `ClusterStats`.
    pub fn with_view(mut self, view: ClusterView) -> Self {
        self.view = Some(view);
        self
    }
}

/// A field of a task that names stored content, and its sha256.
type ContentUse = (&'static str, String);
/// Why a row is refused: its id, when readable, and each problem.
type Refusal = (Option<String>, Vec<FieldError>);

/// Validates one submitted input into a storable task, or the reasons it is refused. Returns the
/// content the task names (field, sha256), which must be stored before it is accepted.
fn validate(input: v1::TaskInput, limits: &RowLimits) -> Result<(NewTask, Vec<ContentUse>), Refusal> {
    let task = match input.input {
        Some(Input::JsonRow(row)) => {
            let id = serde_json::from_str::<serde_json::Value>(&row)
                .ok()
                .and_then(|v| v.get("instance_id").and_then(|i| i.as_str()).map(str::to_string));
            Task::from_json_row(&row).map_err(|e| (id, e))?
        }
        Some(Input::Spec(spec)) => {
            let id = (!spec.instance_id.is_empty()).then(|| spec.instance_id.clone());
            Task::try_from(&spec).map_err(|e| (id, e))?
        }
        None => {
            return Err((None, vec![FieldError { field: "input".into(), reason: "is empty; send a json_row or a spec".into() }]));
        }
    };
    // A path is opened on a worker's disk, so only an absolute one can mean anything there (and
    // only under the roots that worker allows); a client's own files travel as content.
    let relative: Vec<FieldError> = task
        .host_paths()
        .into_iter()
        .filter(|(_, p)| !Path::new(p.strip_prefix("file://").unwrap_or(p)).is_absolute())
        .map(|(field, p)| FieldError {
            field: field.into(),
            reason: format!("{p:?} is a relative path, which means nothing on a worker; upload the file with the task (agentmill submit does, as content:<sha256>) or name an absolute path under the workers' allowed roots"),
        })
        .collect();
    if !relative.is_empty() {
        return Err((Some(task.instance_id.clone()), relative));
    }
    let oversized = oversized_fields(&task, limits);
    if !oversized.is_empty() {
        return Err((Some(task.instance_id.clone()), oversized));
    }
    let refs = task.content_refs().into_iter().map(|(f, h)| (f, h.to_string())).collect();
    let spec = v1::TaskSpec::from(&task);
    Ok((NewTask {
        id: task.instance_id.clone(),
        meta: TaskMeta {
            seq: 0,
            submitted_ms: 0,
            priority: task.priority,
            image: task.image.clone(),
            labels: task.labels.clone(),
            worker_selector: task.worker_selector.clone(),
            rollouts: task.rollouts,
        },
        spec: spec.encode_to_vec(),
    }, refs))
}

/// A lease id is what a worker proves it holds a lease with: only operators see them (a client
/// has no use for one, and must not be able to hand one to a forger).
fn hide_leases(role: Role, tasks: &mut [v1::TaskStatus]) {
    if role == Role::Operator {
        return;
    }
    for r in tasks.iter_mut().flat_map(|t| t.rollouts.iter_mut()) {
        r.lease_id.clear();
    }
}

/// `n` bytes for people: `9437185 bytes (9.0 MiB)`.
fn size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{n} bytes ({:.1} MiB)", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{n} bytes ({:.1} KiB)", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// Each field of `task` over its limit, named with its size and the limit.
fn oversized_fields(task: &Task, l: &RowLimits) -> Vec<FieldError> {
    let mut out = Vec::new();
    let check = |out: &mut Vec<FieldError>, field: &str, n: u64, limit: u64, key: &str| {
        if n > limit {
            out.push(FieldError {
                field: field.into(),
                reason: format!("is {}, over the limit of {} (row_limits.{key} in the coordinator's config)", size(n), size(limit)),
            });
        }
    };
    check(&mut out, "patch", task.patch.len() as u64, l.patch_bytes, "patch_bytes");
    check(&mut out, "test_patch", task.test_patch.len() as u64, l.test_patch_bytes, "test_patch_bytes");
    check(&mut out, "problem_statement", task.problem_statement.len() as u64, l.problem_statement_bytes, "problem_statement_bytes");
    check(&mut out, "hints_text", task.hints_text.len() as u64, l.hints_text_bytes, "hints_text_bytes");
    check(&mut out, "eval_script", task.eval_script.as_ref().map_or(0, |s| s.len() as u64), l.script_bytes, "script_bytes");
    check(&mut out, "test_cmd", task.test_cmd.as_ref().map_or(0, |s| s.len() as u64), l.script_bytes, "script_bytes");
    for (field, tests) in [("FAIL_TO_PASS", &task.fail_to_pass), ("PASS_TO_PASS", &task.pass_to_pass)] {
        if tests.len() as u64 > l.tests {
            out.push(FieldError {
                field: field.into(),
                reason: format!("lists {} tests, over the limit of {} (row_limits.tests in the coordinator's config)", tests.len(), l.tests),
            });
        }
        if let Some((i, t)) = tests.iter().enumerate().find(|(_, t)| t.len() as u64 > l.test_name_bytes) {
            out.push(FieldError {
                field: format!("{field}[{i}]"),
                reason: format!("is a test name of {}, over the limit of {} (row_limits.test_name_bytes in the coordinator's config)", size(t.len() as u64), size(l.test_name_bytes)),
            });
        }
    }
    if !task.extra.is_empty() {
        let n = serde_json::to_vec(&task.extra).map_or(u64::MAX, |v| v.len() as u64);
        check(&mut out, "extra", n, l.extra_bytes, "extra_bytes");
    }
    out
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn content_status(e: ContentError) -> Status {
    match e {
        ContentError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
        ContentError::NotFound(_) => Status::not_found(e.to_string()),
        ContentError::BadHash(_) => Status::invalid_argument(e.to_string()),
        ContentError::Redis(_) => Status::unavailable(e.to_string()),
    }
}

#[tonic::async_trait]
impl Coordinator for CoordinatorService {
    async fn submit_tasks(&self, request: Request<v1::SubmitTasksRequest>) -> Result<Response<v1::SubmitTasksResponse>, Status> {
        require(&request, "SubmitTasks", &[Role::Client])?;
        let req = request.into_inner();
        if req.tasks.len() > self.max_batch {
            return Err(Status::resource_exhausted(format!(
                "tasks: a batch holds at most {} tasks, this one has {}; split it",
                self.max_batch,
                req.tasks.len()
            )));
        }
        let mut good = Vec::with_capacity(req.tasks.len());
        let mut rejected = Vec::new();
        for (i, input) in req.tasks.into_iter().enumerate() {
            match validate(input, &self.row_limits) {
                Ok((t, refs)) => {
                    let mut missing = Vec::new();
                    for (field, sha) in refs {
                        let known = match &self.content {
                            Some(store) => store.exists(&sha).await.map_err(|e| Status::unavailable(e.to_string()))?,
                            None => false,
                        };
                        if !known {
                            missing.push(v1::RowError {
                                row: i as u32 + 1,
                                field: field.into(),
                                reason: format!("names content sha256 {sha}, which this coordinator does not store; upload it first (PutContent; agentmill submit does)"),
                                task_id: t.id.clone(),
                            });
                        }
                    }
                    if missing.is_empty() {
                        good.push(t);
                    } else {
                        rejected.extend(missing);
                    }
                }
                Err((task_id, errors)) => {
                    for e in errors {
                        rejected.push(v1::RowError { row: i as u32 + 1, field: e.field, reason: e.reason, task_id: task_id.clone().unwrap_or_default() });
                    }
                }
            }
        }
        self.core.metrics.submit_rejected.inc_by(rejected.iter().map(|e| e.row).collect::<std::collections::HashSet<_>>().len() as u64);
        if good.is_empty() && !rejected.is_empty() {
            let first = &rejected[0];
            let mut status = Status::invalid_argument(format!(
                "task row {}: {}: {} ({} problem(s) in {} row(s); no row was accepted)",
                first.row,
                first.field,
                first.reason,
                rejected.len(),
                rejected.iter().map(|e| e.row).collect::<std::collections::HashSet<_>>().len()
            ));
            // The full list travels in the details as the normal reply message.
            let details = v1::SubmitTasksResponse { accepted: vec![], existing: vec![], rejected }.encode_to_vec();
            status = Status::with_details(status.code(), status.message().to_string(), details.into());
            return Err(status);
        }
        // Large batches go to the core in slices, so results and leases of running work
        // interleave with them instead of waiting behind one huge write.
        let (mut accepted, mut existing) = (Vec::new(), Vec::new());
        let mut good = good.into_iter().peekable();
        while good.peek().is_some() {
            let slice: Vec<NewTask> = good.by_ref().take(SUBMIT_SLICE).collect();
            let outcome = self.core.ask(|tx| Command::Submit(slice, tx)).await?;
            accepted.extend(outcome.accepted);
            existing.extend(outcome.existing);
        }
        Ok(Response::new(v1::SubmitTasksResponse { accepted, existing, rejected }))
    }

    async fn get_task(&self, request: Request<v1::GetTaskRequest>) -> Result<Response<v1::TaskStatus>, Status> {
        let caller = require(&request, "GetTask", &[Role::Client])?;
        let id = request.into_inner().task_id;
        if id.is_empty() {
            return Err(Status::invalid_argument("task_id: is empty"));
        }
        let mut status = self.core.ask(|tx| Command::Get(id, tx)).await??;
        hide_leases(caller.role, std::slice::from_mut(&mut status));
        Ok(Response::new(status))
    }

    async fn get_trajectory(&self, request: Request<v1::GetTrajectoryRequest>) -> Result<Response<v1::GetTrajectoryResponse>, Status> {
        require(&request, "GetTrajectory", &[Role::Client])?;
        let req = request.into_inner();
        if req.task_id.is_empty() {
            return Err(Status::invalid_argument("task_id: is empty"));
        }
        let Some((con, stream)) = &self.stream else {
            return Err(Status::unimplemented("this coordinator was started without the trajectory stream"));
        };
        let task = self.core.ask(|tx| Command::Get(req.task_id.clone(), tx)).await??;
        if task.task.as_ref().is_some_and(|t| t.kind == v1::TaskKind::Synth as i32) {
            return Err(Status::invalid_argument(format!(
                "task_id: {} is a synthesis job; its ctx records are in the stream {stream} (agentmill-learner inspect-record, export --stream)",
                req.task_id
            )));
        }
        let Some(rollout) = task.rollouts.iter().find(|r| r.rollout == req.rollout) else {
            return Err(Status::invalid_argument(format!("rollout: {} has rollouts 0 to {}", req.task_id, task.rollouts.len().saturating_sub(1))));
        };
        if req.attempt > rollout.attempt {
            return Err(Status::invalid_argument(format!("attempt: rollout {} of {} has reached attempt {}", req.rollout, req.task_id, rollout.attempt)));
        }
        // The latest attempt that published, unless one is named.
        let attempts: Vec<u32> = if req.attempt > 0 { vec![req.attempt] } else { (1..=rollout.attempt.max(1)).rev().collect() };
        let mut con = con.clone();
        for attempt in attempts {
            let record_id = agentmill_proto::TrajectoryRecord::episode_record_id(&req.task_id, req.rollout, attempt);
            let found = agentmill_proto::stream::find_published(&mut con, stream, &record_id)
                .await
                .map_err(|e| Status::unavailable(format!("reading the trajectory stream {stream}: {e}")))?;
            match found {
                agentmill_proto::stream::Published::Missing => continue,
                agentmill_proto::stream::Published::Trimmed { stream_id } => {
                    return Err(Status::not_found(format!(
                        "{record_id} was entry {stream_id} of {stream}, trimmed after every consumer group acknowledged it (trim_acknowledged); the learner's ledger still lists it"
                    )));
                }
                agentmill_proto::stream::Published::Found { stream_id, record } => {
                    let record = record.map_err(|e| Status::data_loss(format!("{record_id}: entry {stream_id} of {stream} does not decode: {e}")))?;
                    let record_json = serde_json::to_string(&record).map_err(|e| Status::internal(e.to_string()))?;
                    return Ok(Response::new(v1::GetTrajectoryResponse { record_id, stream_id, attempt, record_json }));
                }
            }
        }
        let state = v1::TaskState::try_from(rollout.state).map(|s| s.name().to_string()).unwrap_or_else(|_| "?".into());
        Err(Status::not_found(format!(
            "rollout {} of {} has published no record (it is {state}, attempt {}); a record is published when an episode ends",
            req.rollout, req.task_id, rollout.attempt
        )))
    }

    async fn list_tasks(&self, request: Request<v1::ListTasksRequest>) -> Result<Response<v1::ListTasksResponse>, Status> {
        let caller = require(&request, "ListTasks", &[Role::Client])?;
        let req = request.into_inner();
        let mut page = self.core.ask(|tx| Command::List(req, tx)).await??;
        hide_leases(caller.role, &mut page.tasks);
        Ok(Response::new(page))
    }

    async fn cancel_tasks(&self, request: Request<v1::CancelTasksRequest>) -> Result<Response<v1::CancelTasksResponse>, Status> {
        require(&request, "CancelTasks", &[Role::Client])?;
        let req = request.into_inner();
        if req.task_ids.is_empty() {
            return Err(Status::invalid_argument("task_ids: is empty; name the tasks to cancel"));
        }
        self.core.ask(|tx| Command::Cancel(req.task_ids, req.reason, tx)).await.map(Response::new)
    }

    async fn retry_tasks(&self, request: Request<v1::RetryTasksRequest>) -> Result<Response<v1::RetryTasksResponse>, Status> {
        require(&request, "RetryTasks", &[Role::Client])?;
        let req = request.into_inner();
        if req.task_ids.is_empty() {
            return Err(Status::invalid_argument("task_ids: is empty; name the tasks to retry"));
        }
        self.core.ask(|tx| Command::Retry(req.task_ids, req.reason, tx)).await.map(Response::new)
    }

    async fn cordon_workers(&self, request: Request<v1::CordonWorkersRequest>) -> Result<Response<v1::CordonWorkersResponse>, Status> {
        require(&request, "CordonWorkers", &[])?;
        let req = request.into_inner();
        if let Some(i) = req.worker_ids.iter().position(|w| w.trim().is_empty()) {
            return Err(Status::invalid_argument(format!("worker_ids[{i}]: is empty; name the workers (their worker_id, as `agentmill stats` shows it)")));
        }
        self.core.ask(|tx| Command::Cordon(req.worker_ids, req.uncordon, tx)).await.map(Response::new)
    }

    type WatchEventsStream = BoxStream<v1::TaskEvent>;

    async fn watch_events(&self, request: Request<v1::WatchEventsRequest>) -> Result<Response<Self::WatchEventsStream>, Status> {
        require(&request, "WatchEvents", &[Role::Client])?;
        let filter: std::collections::HashSet<String> = request.into_inner().task_ids.into_iter().collect();
        let mut rx = self.core.subscribe();
        let stream = async_stream::stream! {
            let mut dropped = 0u64;
            loop {
                match rx.recv().await {
                    Ok(mut event) => {
                        if !filter.is_empty() && !filter.contains(&event.task_id) {
                            continue;
                        }
                        event.dropped_before = std::mem::take(&mut dropped);
                        yield Ok(event);
                    }
                    // A slow watcher skips ahead instead of holding dispatch back.
                    Err(broadcast::error::RecvError::Lagged(n)) => dropped += n,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cluster_stats(&self, request: Request<v1::ClusterStatsRequest>) -> Result<Response<v1::ClusterStatsResponse>, Status> {
        require(&request, "ClusterStats", &[Role::Client])?;
        let stats = self.core.ask(Command::Stats).await?;
        Ok(Response::new(match &self.view {
            Some(view) => view.merge(stats),
            None => stats,
        }))
    }

    async fn put_content(&self, request: Request<Streaming<v1::ContentChunk>>) -> Result<Response<v1::ContentRef>, Status> {
        require(&request, "PutContent", &[Role::Client])?;
        let Some(store) = &self.content else { return Err(Status::unimplemented("this coordinator keeps no content")) };
        let mut inbound = request.into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = inbound.message().await? {
            if (data.len() + chunk.data.len()) as u64 > store.max_bytes() {
                return Err(Status::resource_exhausted(ContentError::TooLarge { limit: store.max_bytes() }.to_string()));
            }
            data.extend_from_slice(&chunk.data);
        }
        let size = data.len() as u64;
        let sha256 = store.put(&data).await.map_err(content_status)?;
        info!(%sha256, size, "content stored");
        Ok(Response::new(v1::ContentRef { sha256, size }))
    }

    type GetContentStream = BoxStream<v1::ContentChunk>;

    async fn get_content(&self, request: Request<v1::GetContentRequest>) -> Result<Response<Self::GetContentStream>, Status> {
        require(&request, "GetContent", &[Role::Worker])?;
        let Some(store) = self.content.clone() else { return Err(Status::unimplemented("this coordinator keeps no content")) };
        let sha = request.into_inner().sha256;
        if !is_sha256(&sha) {
            return Err(Status::invalid_argument(ContentError::BadHash(sha).to_string()));
        }
        let size = store.size(&sha).await.map_err(content_status)?;
        let stream = async_stream::try_stream! {
            let mut at = 0u64;
            while at < size {
                let data = store.read(&sha, at, CHUNK as u64).await.map_err(content_status)?;
                if data.is_empty() {
                    break;
                }
                at += data.len() as u64;
                yield v1::ContentChunk { data };
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    type AttachStream = BoxStream<v1::CoordinatorMessage>;

    async fn attach(&self, request: Request<Streaming<v1::WorkerMessage>>) -> Result<Response<Self::AttachStream>, Status> {
        // The role is checked once per session; the messages on it are the credential's.
        let identity = require(&request, "Attach", &[Role::Worker])?;
        let mut inbound = request.into_inner();
        let register = match inbound.message().await? {
            Some(v1::WorkerMessage { msg: Some(In::Register(r)) }) => r,
            _ => return Err(Status::invalid_argument("the first message on Attach must be register")),
        };
        if register.worker_id.is_empty() {
            return Err(Status::invalid_argument("register.worker_id: is empty; every worker needs a stable id"));
        }
        if !identity.may_attach_as(&register.worker_id) {
            return Err(Status::permission_denied(format!(
                "register.worker_id: the credential {:?} may attach as worker ids {:?}, not {:?}; give this worker its own credential bound to its id (worker_ids in the coordinator's [[credentials]]) or set its worker_id",
                identity.name, identity.worker_ids, register.worker_id
            )));
        }
        let sid = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.core.config.session_buffer.max(1));
        self.core.send(Command::Attach(sid, register, tx, identity.name.clone())).await?;
        let core = self.core.clone();
        tokio::spawn(async move {
            while let Some(msg) = inbound.next().await {
                match msg {
                    Ok(v1::WorkerMessage { msg: Some(m) }) => {
                        if core.send(Command::Worker(sid, m)).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => debug!(session = sid, "empty worker message ignored"),
                    Err(e) => {
                        // A worker that dies or drops its connection ends here; its leases run
                        // out their TTL unless it comes back.
                        info!(session = sid, "worker stream broke: {}", e.message());
                        break;
                    }
                }
            }
            let _ = core.send(Command::Detach(sid)).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
