//! The `ctx` [`TrajectoryRecord`] of a rendered PR.

use std::collections::BTreeMap;

use agentmill_proto::{ContextualPr, Provenance, RecordKind, TrajectoryRecord};
use serde::{Deserialize, Serialize};

use super::render::Template;
use super::row::PrRow;

/// Who made the records and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordMeta {
    /// The synthesis task (job) the records belong to.
    pub task_id: String,
    /// The worker that made them.
    pub worker: String,
    /// RFC 3339 creation time (UTC), the same for every record of a run so outputs compare.
    pub created_at: String,
}

/// `ctx:<repo>:<pr_id>`: the same PR always gets the same id, so publishing it twice is
/// idempotent downstream.
pub fn ctx_record_id(repo_name: &str, pr_id: &str) -> String {
    format!("ctx:{repo_name}:{pr_id}")
}

/// The record of a PR rendered with `template` into `text`.
pub fn ctx_record(row: &PrRow, template: Template, text: String, meta: &RecordMeta) -> TrajectoryRecord {
    let ctx = ContextualPr { template: template.as_str().to_string(), text, ..row.to_contextual_pr() };
    TrajectoryRecord {
        worker: meta.worker.clone(),
        created_at: meta.created_at.clone(),
        versions: BTreeMap::from([("agentmill".to_string(), env!("CARGO_PKG_VERSION").to_string())]),
        provenance: Provenance { repo: row.repo_name.clone(), base_commit: row.base_commit.clone(), ..Provenance::default() },
        ctx: Some(ctx),
        ..TrajectoryRecord::new(RecordKind::Ctx, ctx_record_id(&row.repo_name, &row.pr_id), meta.task_id.clone())
    }
}
