//! The checkpoint a run resumes from: the Hugging Face layout, the optimizer's moments and
//! `trainer_state.json`, each tensor file stamped with its step so a torn save is refused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::Device;

use super::{TrainConfig, TrainError, Trainer, torch_err};
use crate::checkpoint;

/// Optimizer moments inside a checkpoint directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Step, counters, configuration and data position inside a checkpoint directory.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";
/// The schema of [`TRAINER_STATE_FILE`].
pub const TRAINER_STATE_FORMAT: &str = "agentmill.trainer_state/v1";
/// Safetensors metadata key holding the step a tensor file was saved at.
const STEP_METADATA: &str = "agentmill_step";

/// What `trainer_state.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Always [`TRAINER_STATE_FORMAT`].
    pub format: String,
    /// Optimizer steps completed.
    pub step: u64,
    /// Real tokens trained on so far.
    pub tokens_seen: u64,
    /// Target tokens trained on so far.
    pub target_tokens_seen: u64,
    /// The optimisation's configuration.
    pub train: TrainConfig,
    /// Where the caller's data stream stood (opaque to the trainer; e.g. stream ids).
    pub data_position: Value,
}

impl Trainer {
    /// Writes a checkpoint to `dir`: the Hugging Face layout (loads in transformers), the
    /// optimizer moments, and `trainer_state.json` with `data_position` (written last).
    pub fn save_checkpoint(&self, dir: &Path, data_position: &Value) -> Result<(), TrainError> {
        let metadata = BTreeMap::from([(STEP_METADATA.to_string(), self.step.to_string())]);
        checkpoint::save_pretrained_with_metadata(dir, self.model.config(), &self.vs, &metadata)?;
        checkpoint::write_tensors(&dir.join(OPTIMIZER_FILE), &self.optimizer.state_tensors(), &metadata)?;
        let state = TrainerState {
            format: TRAINER_STATE_FORMAT.to_string(),
            step: self.step,
            tokens_seen: self.tokens_seen,
            target_tokens_seen: self.target_tokens_seen,
            train: self.config,
            data_position: data_position.clone(),
        };
        checkpoint::write_json_file(&dir.join(TRAINER_STATE_FILE), &state)?;
        Ok(())
    }

    /// Rebuilds the trainer saved in `dir` on `device` and returns it with the saved data
    /// position: the next [`Trainer::train_step`] continues the saved run's loss curve.
    pub fn resume(dir: &Path, device: Device) -> Result<(Trainer, Value), TrainError> {
        let state_path = dir.join(TRAINER_STATE_FILE);
        let state: TrainerState = checkpoint::read_json_file(&state_path)?;
        if state.format != TRAINER_STATE_FORMAT {
            return Err(TrainError::State {
                path: state_path,
                message: format!("format is {:?}, expected {TRAINER_STATE_FORMAT:?}", state.format),
            });
        }
        let (vs, model) = checkpoint::load_pretrained(dir, device)?;
        let mut trainer = Trainer::assemble(vs, model, state.train)?;
        let optimizer_path = dir.join(OPTIMIZER_FILE);
        let (moments, optimizer_meta) = checkpoint::read_tensors(&optimizer_path)?;
        let weights_meta = checkpoint::read_metadata(&dir.join(checkpoint::WEIGHTS_FILE))?;
        for (path, meta) in [(&optimizer_path, &optimizer_meta), (&dir.join(checkpoint::WEIGHTS_FILE), &weights_meta)] {
            let saved = meta.get(STEP_METADATA).and_then(|s| s.parse::<u64>().ok());
            if saved != Some(state.step) {
                return Err(TrainError::State {
                    path: path.clone(),
                    message: format!(
                        "saved at step {saved:?} but {TRAINER_STATE_FILE} says step {}; the checkpoint was torn by an interrupted save — resume from an earlier one",
                        state.step
                    ),
                });
            }
        }
        let moments = moments
            .into_iter()
            .map(|(name, t)| t.f_to(device).map(|t| (name, t)))
            .collect::<Result<_, _>>()
            .map_err(torch_err("moving optimizer state to the device"))?;
        trainer.optimizer.load_state(moments, state.step)?;
        trainer.step = state.step;
        trainer.tokens_seen = state.tokens_seen;
        trainer.target_tokens_seen = state.target_tokens_seen;
        Ok((trainer, state.data_position))
    }
}
