//! `EpisodeActor`: one per lease. It runs the episode on the runtime's worker threads, publishes
//! the record (retrying until Redis takes it), reports the result to the coordinator, and tells
//! its supervisor how it ended. A panicking episode becomes an `infra_error` record; its
//! container guard removes the container as the panic unwinds.

use std::sync::Arc;

use actix::prelude::*;
use agentmill_proto::{ExitReason, RECORD_SCHEMA, RecordKind, Task, Timing, TrajectoryRecord, v1};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::job::{FinishedSink, JobExit, JobFinished, JobStage, JobStageChanged, PUBLISH_ATTEMPTS};
use super::publisher::{Publisher, publish_with_retry};
use crate::episode::{EpisodeLease, EpisodePhase};
use crate::session::SessionHandle;

/// Reports a phase as the episode enters it.
pub type Progress = Arc<dyn Fn(EpisodePhase) + Send + Sync>;

/// Builds the future that plays one episode. The default runs [`crate::episode::run_episode`];
/// tests substitute their own to make an episode panic or hang.
pub type Runner = Arc<dyn Fn(Task, EpisodeLease, Progress, CancellationToken) -> BoxFuture<'static, TrajectoryRecord> + Send + Sync>;

/// One episode.
pub struct EpisodeActor {
    lease_id: String,
    timing: Option<agentmill_proto::Timing>,
    worker: String,
    task: Option<Task>,
    id: EpisodeLease,
    runner: Runner,
    session: SessionHandle,
    publisher: Addr<Publisher>,
    supervisor: Box<dyn FinishedSink>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for EpisodeActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpisodeActor").field("lease_id", &self.lease_id).field("episode", &self.id.episode).finish()
    }
}

impl EpisodeActor {
    /// An actor for `lease_id` running `task`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lease_id: String,
        worker: String,
        task: Task,
        id: EpisodeLease,
        runner: Runner,
        session: SessionHandle,
        publisher: Addr<Publisher>,
        supervisor: Box<dyn FinishedSink>,
        cancel: CancellationToken,
    ) -> EpisodeActor {
        EpisodeActor { lease_id, timing: None, worker, task: Some(task), id, runner, session, publisher, supervisor, cancel }
    }
}

/// The record of an episode that panicked: an infra failure, never trained on.
pub fn panic_record(task: &Task, id: &EpisodeLease, worker: &str, message: &str) -> TrajectoryRecord {
    TrajectoryRecord {
        schema: RECORD_SCHEMA.into(),
        record_id: TrajectoryRecord::episode_record_id(&task.instance_id, id.rollout, id.attempt),
        kind: RecordKind::Env,
        task_id: task.instance_id.clone(),
        attempt: id.attempt,
        rollout: id.rollout,
        worker: worker.to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        versions: [("agentmill".to_string(), agentmill_proto::VERSION.to_string())].into_iter().collect(),
        provenance: agentmill_proto::Provenance { repo: task.repo.clone(), base_commit: task.base_commit.clone(), image: task.image.clone(), ..Default::default() },
        tools: vec![],
        messages: vec![],
        exit_reason: Some(ExitReason::InfraError),
        error: Some(format!("the episode panicked: {message}")),
        model_patch: None,
        grading: None,
        reward: Some(0.0),
        timing: Timing::default(),
        ctx: None,
        model_calls: vec![],
    }
}

impl Actor for EpisodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(task) = self.task.take() else { return };
        let lease = self.lease_id.clone();
        let session = self.session.clone();
        let me = ctx.address();
        let progress: Progress = Arc::new(move |stage| {
            let s = match stage {
                EpisodePhase::Init => v1::Stage::Init,
                EpisodePhase::Run => v1::Stage::Run,
                EpisodePhase::Grade => v1::Stage::Grade,
            };
            session.progress(&lease, s, format!("{stage:?}").to_lowercase(), 0);
            me.do_send(JobStageChanged { lease_id: lease.clone(), stage: stage.into() });
        });
        let fut = (self.runner)(task.clone(), self.id.clone(), progress, self.cancel.clone());
        let handle = tokio::spawn(fut);
        let id = self.id.clone();
        let worker = self.worker.clone();
        ctx.spawn(
            async move {
                match handle.await {
                    Ok(record) => (record, None),
                    Err(e) => {
                        let msg = if e.is_panic() {
                            let p = e.into_panic();
                            p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into())
                        } else {
                            "the episode task was aborted".into()
                        };
                        (panic_record(&task, &id, &worker, &msg), Some(msg))
                    }
                }
            }
            .into_actor(self)
            .then(|(record, panicked), act, _ctx| {
                act.timing = Some(record.timing.clone());
                act.supervisor.stage(JobStageChanged { lease_id: act.lease_id.clone(), stage: JobStage::Publishing });
                let cancelled = act.cancel.is_cancelled();
                let publisher = act.publisher.clone();
                let session = act.session.clone();
                let lease = act.lease_id.clone();
                async move {
                    let published = publish_with_retry(&publisher, &record, PUBLISH_ATTEMPTS).await;
                    let exit_reason = record.exit_reason.unwrap_or(ExitReason::InfraError);
                    let Some(p) = published else {
                        error!(record = %record.record_id, "could not publish the record; handing the lease back");
                        session.release(&lease, "the record could not be published to Redis");
                        return JobExit::Failure("record not published".into());
                    };
                    if cancelled {
                        return JobExit::Cancelled;
                    }
                    let mut result = v1::EpisodeResult::from(&record);
                    result.stream_id = p.stream_id;
                    session.result(&lease, result);
                    match panicked {
                        Some(m) => JobExit::Panicked(m),
                        None => JobExit::Success(exit_reason),
                    }
                }
                .into_actor(act)
            })
            .map(|exit, act, ctx| {
                act.supervisor.finished(JobFinished { lease_id: act.lease_id.clone(), exit, timing: act.timing.take() });
                ctx.stop();
            }),
        );
    }
}

impl Handler<JobStageChanged> for EpisodeActor {
    type Result = ();

    fn handle(&mut self, msg: JobStageChanged, _ctx: &mut Self::Context) {
        self.supervisor.stage(msg);
    }
}
