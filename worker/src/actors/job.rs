//! What every leased job — an episode ([`super::episode::EpisodeActor`]) or a synthesis job
//! ([`super::synth::SynthActor`]) — tells its supervisor: the stage it entered
//! ([`JobStageChanged`]) and how it ended ([`JobFinished`], [`JobExit`]).

use actix::prelude::*;
use agentmill_proto::ExitReason;

use crate::episode::EpisodePhase;

/// Tries to publish a record before handing the lease back (about five minutes of backoff).
pub const PUBLISH_ATTEMPTS: u32 = 40;

/// How a job's actor ended, modelled on process exit codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobExit {
    /// The record (a synthesis job: every record) was published and the result reported.
    Success(ExitReason),
    /// Cancelled by the coordinator: nothing reported.
    Cancelled,
    /// The job panicked; an episode's infra-error record was published and reported.
    Panicked(String),
    /// The record could not be published (Redis stayed down past the retries).
    Failure(String),
}

/// Sent to the supervisor when a job's actor stops.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct JobFinished {
    /// The lease it served.
    pub lease_id: String,
    /// How it ended.
    pub exit: JobExit,
    /// Stage durations of the episode (synth jobs: none).
    pub timing: Option<agentmill_proto::Timing>,
}

/// What the supervisor needs to hear about.
pub trait FinishedSink: Send + 'static {
    /// Called once, when the job's actor is done.
    fn finished(&self, msg: JobFinished);
    /// Called as the job enters each stage.
    fn stage(&self, msg: JobStageChanged);
}

impl<A> FinishedSink for Addr<A>
where
    A: Actor + Handler<JobFinished> + Handler<JobStageChanged>,
    A::Context: actix::dev::ToEnvelope<A, JobFinished> + actix::dev::ToEnvelope<A, JobStageChanged>,
{
    fn finished(&self, msg: JobFinished) {
        self.do_send(msg);
    }

    fn stage(&self, msg: JobStageChanged) {
        self.do_send(msg);
    }
}

/// Where one leased job is now: what [`crate::actors::supervisor::HostState::stages`] counts and
/// the `agentmill_worker_episodes_in_stage{stage}` gauge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum JobStage {
    /// Leased, its actor not started yet.
    #[default]
    Pending,
    /// Image, container, repository.
    Init,
    /// The agent loop.
    Run,
    /// The tests.
    Grade,
    /// Publishing the record (retrying while Redis is away).
    Publishing,
    /// A synthesis job producing and publishing records.
    Synthesizing,
}

impl JobStage {
    /// Every stage, in order.
    pub const ALL: [JobStage; 6] = [JobStage::Pending, JobStage::Init, JobStage::Run, JobStage::Grade, JobStage::Publishing, JobStage::Synthesizing];

    /// Its name in metrics and state.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStage::Pending => "pending",
            JobStage::Init => "init",
            JobStage::Run => "run",
            JobStage::Grade => "grade",
            JobStage::Publishing => "publishing",
            JobStage::Synthesizing => "synthesizing",
        }
    }
}

impl From<EpisodePhase> for JobStage {
    fn from(s: EpisodePhase) -> JobStage {
        match s {
            EpisodePhase::Init => JobStage::Init,
            EpisodePhase::Run => JobStage::Run,
            EpisodePhase::Grade => JobStage::Grade,
        }
    }
}

/// A job entered a stage (to the supervisor).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct JobStageChanged {
    /// The lease it serves.
    pub lease_id: String,
    /// The stage it entered.
    pub stage: JobStage,
}
