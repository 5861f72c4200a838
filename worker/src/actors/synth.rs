//! `SynthActor`: one per leased synthesis job (`kind = synth`). The synthesis itself (git
//! commands, diffing, rendering) is blocking work, so it runs on tokio's blocking pool and hands
//! each record over a bounded channel; the actor publishes them one by one (the channel's bound
//! is the back-pressure) and reports the job's result — how many records it published — to the
//! coordinator. With `[synth.enhance]` on (it travels in [`SynthSettings::config`]), the job's
//! requests to the enhancement endpoint run on the enhancer's own runtime, not on this actor's
//! arbiter (see [`crate::synth::enhance`]).

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use agentmill_proto::{Task, TrajectoryRecord, v1};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::job::{FinishedSink, JobExit, JobFinished, JobStage, JobStageChanged, PUBLISH_ATTEMPTS};
use super::publisher::{Publisher, publish_with_retry};
use crate::session::SessionHandle;
use crate::synth::{ApproxTokenCounter, HfTokenCounter, RecordMeta, SynthConfig, SynthError, SynthInput, TokenCounter, run};


/// How a worker synthesizes: the synthesis settings and the tokenizer its length filter counts with.
#[derive(Debug, Clone, Default)]
pub struct SynthSettings {
    /// Templates, filters, edit and render options.
    pub config: SynthConfig,
    /// A `tokenizer.json` for the token-length filter; `None` uses the approximate counter.
    pub tokenizer: Option<PathBuf>,
    /// Where a job's inputs come from (content fetched by hash, host paths under the roots).
    pub inputs: crate::inputs::Inputs,
}

/// One synthesis job.
pub struct SynthActor {
    lease_id: String,
    worker: String,
    task: Option<Task>,
    settings: Arc<SynthSettings>,
    session: SessionHandle,
    publisher: Addr<Publisher>,
    supervisor: Box<dyn FinishedSink>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for SynthActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynthActor").field("lease_id", &self.lease_id).finish()
    }
}

impl SynthActor {
    /// An actor for the synthesis job `task` on `lease_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lease_id: String,
        worker: String,
        task: Task,
        settings: Arc<SynthSettings>,
        session: SessionHandle,
        publisher: Addr<Publisher>,
        supervisor: Box<dyn FinishedSink>,
        cancel: CancellationToken,
    ) -> SynthActor {
        SynthActor { lease_id, worker, task: Some(task), settings, session, publisher, supervisor, cancel }
    }
}

fn token_counter(settings: &SynthSettings) -> Result<Box<dyn TokenCounter>, SynthError> {
    Ok(match &settings.tokenizer {
        Some(path) => Box::new(HfTokenCounter::from_file(path)?),
        None => Box::new(ApproxTokenCounter::default()),
    })
}

impl Actor for SynthActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(task) = self.task.take() else { return };
        self.supervisor.stage(JobStageChanged { lease_id: self.lease_id.clone(), stage: JobStage::Synthesizing });
        let (tx, mut rx) = tokio::sync::mpsc::channel::<TrajectoryRecord>(64);
        let settings = self.settings.clone();
        let cancel = self.cancel.clone();
        let meta = RecordMeta {
            task_id: task.instance_id.clone(),
            worker: self.worker.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let job_task = task.clone();
        let producer = tokio::spawn(async move {
            // The job's inputs on this host first: content fetched, host paths checked.
            let dir = tempfile::tempdir().map_err(|e| SynthError::Input { path: "a temporary folder".into(), reason: e.to_string() })?;
            let job_task = settings.inputs.localise_synth(&job_task, dir.path()).await.map_err(|e| SynthError::Input { path: "the job's input".into(), reason: e.to_string() })?;
            let blocking = tokio::task::spawn_blocking(move || {
                let _inputs_live_until_the_run_ends = dir;
                let input = SynthInput::from_task(&job_task)?;
                let tokens = token_counter(&settings)?;
                run(&input, settings.config.clone(), tokens, meta, &mut |record| {
                    if cancel.is_cancelled() {
                        return Err(SynthError::Write(std::io::Error::other("the job was cancelled")));
                    }
                    tx.blocking_send(record).map_err(|_| SynthError::Write(std::io::Error::other("the publisher side stopped")))
                })
            });
            blocking.await.map_err(|e| SynthError::Input { path: "the synthesis run".into(), reason: format!("panicked: {e}") })?
        });
        let publisher = self.publisher.clone();
        let session = self.session.clone();
        let lease = self.lease_id.clone();
        let cancel = self.cancel.clone();
        let task_id = task.instance_id.clone();
        ctx.spawn(
            async move {
                let (mut published, mut duplicates, mut lost) = (0u64, 0u64, 0u64);
                while let Some(record) = rx.recv().await {
                    match publish_with_retry(&publisher, &record, PUBLISH_ATTEMPTS).await {
                        Some(p) if p.duplicate => duplicates += 1,
                        Some(_) => published += 1,
                        None => {
                            lost += 1;
                            break;
                        }
                    }
                    if (published + duplicates) % 100 == 0 {
                        session.progress(&lease, v1::Stage::Run, format!("synth: {published} records"), (published + duplicates) as u32);
                    }
                }
                drop(rx);
                let outcome = producer.await;
                if cancel.is_cancelled() {
                    return JobExit::Cancelled;
                }
                let mut result = v1::EpisodeResult { record_id: format!("synth:{task_id}"), records_published: published, ..Default::default() };
                let exit = match outcome {
                    Ok(Ok(report)) if lost == 0 => {
                        info!(task = %task_id, published, duplicates, kept = report.kept, "synthesis job done");
                        result.exit_reason = v1::ExitReason::Submitted as i32;
                        result.resolution = v1::Resolution::Unspecified as i32;
                        JobExit::Success(agentmill_proto::ExitReason::Submitted)
                    }
                    Ok(Ok(_)) => {
                        result.exit_reason = v1::ExitReason::InfraError as i32;
                        result.error = "records could not be published to Redis".into();
                        JobExit::Failure(result.error.clone())
                    }
                    Ok(Err(e)) => {
                        warn!(task = %task_id, "synthesis job failed: {e}");
                        result.exit_reason = v1::ExitReason::InfraError as i32;
                        result.error = e.to_string();
                        JobExit::Failure(result.error.clone())
                    }
                    Err(e) => {
                        result.exit_reason = v1::ExitReason::InfraError as i32;
                        result.error = format!("the synthesis job panicked: {e}");
                        JobExit::Panicked(result.error.clone())
                    }
                };
                session.result(&lease, result);
                exit
            }
            .into_actor(self)
            .map(|exit, act, ctx| {
                act.supervisor.finished(JobFinished { lease_id: act.lease_id.clone(), exit, timing: None });
                ctx.stop();
            }),
        );
    }
}
