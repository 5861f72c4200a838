//! The data mix: a recipe of stages, each naming how much of every source it trains on.
//!
//! A record belongs to one [`Source`]: `env-pass` (an episode whose patch resolved its task),
//! `env-fail` (any other trainable episode: the paper keeps failures, labelled) or `ctx` (a
//! rebuilt pull request). A [`RecipeStage`] gives each source a *rate*: how many times each of
//! its records is trained. On a stream that is the natural form of a mixture weight: `3` trains
//! every record three times (the paper's ×3 for passing episodes), `1` once, `0` never, and a
//! fraction trains that share of the records, chosen by a hash of the record id and the stage,
//! so the choice is the same after a restart and on every learner. A source a stage does not
//! name has rate 0.
//!
//! A stage ends when it has handed `tokens` tokens to the packer (copies included); `0` means
//! no budget, so such a stage runs until the stream or `--max-steps` ends. When the last
//! stage's budget is spent the recipe is complete and the learner stops. Each stage also sets
//! the loss mask (`none` for mid-training, the paper's setting; `assistant` for SFT).
//!
//! The default recipe is the paper's mid-training mix on a stream: one stage, `env-pass` ×3,
//! `env-fail` ×1, `ctx` ×1, no budget, no loss mask.
//!
//! Copies of a record are handed to the packer one after the other; with the streaming
//! packer's many open rows they land in different rows but usually in the same or neighbouring
//! optimizer steps. Spreading copies over time would need a shuffle buffer whose contents a
//! checkpoint must also carry; we chose not to.

use std::collections::BTreeMap;
use std::fmt;

use agentmill_proto::{RecordKind, TrajectoryRecord};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::pack::LossMask;

/// Where a record comes from, for mixing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// An `env` episode that resolved its task.
    EnvPass,
    /// An `env` episode that did not (trained too, as the paper does).
    EnvFail,
    /// A `ctx` record (a pull request rebuilt as an agent's information flow).
    Ctx,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 3] = [Source::EnvPass, Source::EnvFail, Source::Ctx];

    /// The source of a record.
    pub fn of(record: &TrajectoryRecord) -> Source {
        match record.kind {
            RecordKind::Ctx => Source::Ctx,
            RecordKind::Env if record.resolved() => Source::EnvPass,
            RecordKind::Env => Source::EnvFail,
        }
    }

    /// Its position in [`Source::ALL`] (the group of the loss by source).
    pub fn index(self) -> usize {
        match self {
            Source::EnvPass => 0,
            Source::EnvFail => 1,
            Source::Ctx => 2,
        }
    }

    /// The name in recipes, metrics and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::EnvPass => "env-pass",
            Source::EnvFail => "env-fail",
            Source::Ctx => "ctx",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeStage {
    /// A name for logs.
    #[serde(default)]
    pub name: String,
    /// How many times each record of a source is trained (fractions: that share of records).
    pub sources: BTreeMap<Source, f64>,
    /// Tokens this stage trains on before the next begins; 0 = no budget.
    #[serde(default)]
    pub tokens: u64,
    /// Which tokens are targets.
    #[serde(default)]
    pub loss_mask: LossMask,
}

impl RecipeStage {
    /// The rate of a source (0 when the stage does not name it).
    pub fn rate(&self, source: Source) -> f64 {
        self.sources.get(&source).copied().unwrap_or(0.0)
    }
}

/// The stages, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Recipe(pub Vec<RecipeStage>);

impl Default for Recipe {
    fn default() -> Recipe {
        Recipe::paper()
    }
}

/// A recipe that cannot be followed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RecipeError {
    /// No stage at all.
    #[error("the recipe has no stage; add one [[stages]] table (or remove `stages` for the paper's mix)")]
    Empty,
    /// A rate is negative or not a number.
    #[error("stage {stage} ({name:?}): source {input} has rate {rate}; use a number ≥ 0 (3 = each record three times)")]
    Rate {
        /// Stage index.
        stage: usize,
        /// Stage name.
        name: String,
        /// The source.
        input: Source,
        /// The rate.
        rate: f64,
    },
    /// Nothing would ever be trained in a stage.
    #[error("stage {stage} ({name:?}) trains on no source; give at least one source a rate above 0")]
    NoSource {
        /// Stage index.
        stage: usize,
        /// Stage name.
        name: String,
    },
    /// A stage without a budget that is not the last would never end.
    #[error(
        "stage {stage} ({name:?}) has no token budget but stages follow it; give it `tokens = N` or make it the last"
    )]
    Unbounded {
        /// Stage index.
        stage: usize,
        /// Stage name.
        name: String,
    },
}

impl Recipe {
    /// The paper's mid-training mix on a stream: env-pass ×3, env-fail ×1, ctx ×1, no loss mask.
    pub fn paper() -> Recipe {
        Recipe(vec![RecipeStage {
            name: "mid-training".to_string(),
            sources: BTreeMap::from([(Source::EnvPass, 3.0), (Source::EnvFail, 1.0), (Source::Ctx, 1.0)]),
            tokens: 0,
            loss_mask: LossMask::None,
        }])
    }

    /// Checks the recipe can be followed.
    pub fn validate(&self) -> Result<(), RecipeError> {
        if self.0.is_empty() {
            return Err(RecipeError::Empty);
        }
        let last = self.0.len() - 1;
        for (i, stage) in self.0.iter().enumerate() {
            for (&source, &rate) in &stage.sources {
                if !rate.is_finite() || rate < 0.0 {
                    return Err(RecipeError::Rate { stage: i, name: stage.name.clone(), input: source, rate });
                }
            }
            if stage.sources.values().all(|&r| r == 0.0) {
                return Err(RecipeError::NoSource { stage: i, name: stage.name.clone() });
            }
            if stage.tokens == 0 && i != last {
                return Err(RecipeError::Unbounded { stage: i, name: stage.name.clone() });
            }
        }
        Ok(())
    }

    /// Tokens over every stage, when every stage has a budget.
    pub fn total_tokens(&self) -> Option<u64> {
        self.0.iter().map(|s| (s.tokens > 0).then_some(s.tokens)).sum()
    }
}

/// Where a [`Mixer`] stands (saved in checkpoints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixState {
    /// The current stage (== number of stages once the recipe is complete).
    pub stage: usize,
    /// Tokens handed out in the current stage.
    pub stage_tokens: u64,
}

/// Follows a recipe over a stream of records.
#[derive(Debug, Clone)]
pub struct Mixer {
    recipe: Recipe,
    state: MixState,
}

impl Mixer {
    /// A mixer at the start of `recipe` (which must validate).
    pub fn new(recipe: Recipe) -> Result<Mixer, RecipeError> {
        Mixer::resume(recipe, MixState::default())
    }

    /// A mixer where a checkpoint left it.
    pub fn resume(recipe: Recipe, state: MixState) -> Result<Mixer, RecipeError> {
        recipe.validate()?;
        Ok(Mixer { recipe, state })
    }

    /// Where it stands.
    pub fn state(&self) -> MixState {
        self.state
    }

    /// The current stage, or `None` once the recipe is complete.
    pub fn stage(&self) -> Option<&RecipeStage> {
        self.recipe.0.get(self.state.stage)
    }

    /// True when every stage's budget is spent.
    pub fn is_complete(&self) -> bool {
        self.stage().is_none()
    }

    /// How many copies of a record the current stage trains (0 when complete or excluded).
    pub fn copies(&self, record_id: &str, source: Source) -> u32 {
        let Some(stage) = self.stage() else { return 0 };
        let rate = stage.rate(source);
        let whole = rate.trunc();
        let frac = rate - whole;
        let extra = frac > 0.0 && unit_hash(record_id, self.state.stage) < frac;
        whole as u32 + u32::from(extra)
    }

    /// The current stage's loss mask (the last stage's once complete).
    pub fn loss_mask(&self) -> LossMask {
        self.stage().or(self.recipe.0.last()).map(|s| s.loss_mask).unwrap_or_default()
    }

    /// Counts tokens handed to the packer; moves to the next stage when the budget is spent.
    /// Returns the new stage's index when it changed.
    pub fn add_tokens(&mut self, tokens: u64) -> Option<usize> {
        let budget = self.stage()?.tokens;
        self.state.stage_tokens += tokens;
        if budget > 0 && self.state.stage_tokens >= budget {
            self.state = MixState { stage: self.state.stage + 1, stage_tokens: 0 };
            return Some(self.state.stage);
        }
        None
    }
}

/// A number in [0, 1) fixed by a key and a salt (the recipe's draws: the record id and the
/// stage; FNV-1a, then SplitMix64's finaliser so nearby keys spread out).
pub(crate) fn unit_hash(key: &str, salt: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain((salt as u64).to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_index_is_its_place_in_all() {
        for (i, s) in Source::ALL.iter().enumerate() {
            assert_eq!(s.index(), i, "{s}");
        }
    }

    fn stage(sources: &[(Source, f64)], tokens: u64) -> RecipeStage {
        RecipeStage { name: "s".into(), sources: sources.iter().copied().collect(), tokens, loss_mask: LossMask::None }
    }

    #[test]
    fn the_paper_mix_upsamples_passing_episodes_three_times() {
        let m = Mixer::new(Recipe::paper()).expect("valid");
        assert_eq!(m.copies("a", Source::EnvPass), 3);
        assert_eq!(m.copies("a", Source::EnvFail), 1);
        assert_eq!(m.copies("a", Source::Ctx), 1);
        assert_eq!(m.loss_mask(), LossMask::None);
        assert!(!m.is_complete());
    }

    #[test]
    fn fractional_rates_keep_that_share_deterministically() {
        let m = Mixer::new(Recipe(vec![stage(&[(Source::Ctx, 0.25), (Source::EnvFail, 1.5)], 0)])).expect("valid");
        let ids: Vec<String> = (0..4000).map(|i| format!("ctx:pr-{i}")).collect();
        let kept = ids.iter().filter(|id| m.copies(id, Source::Ctx) == 1).count();
        assert!((900..1100).contains(&kept), "kept {kept} of 4000 at rate 0.25");
        let copies: u32 = ids.iter().map(|id| m.copies(id, Source::EnvFail)).sum();
        assert!((5800..6200).contains(&copies), "{copies} copies of 4000 at rate 1.5");
        let again = Mixer::new(Recipe(vec![stage(&[(Source::Ctx, 0.25), (Source::EnvFail, 1.5)], 0)])).expect("valid");
        assert!(ids.iter().all(|id| m.copies(id, Source::Ctx) == again.copies(id, Source::Ctx)));
        assert_eq!(m.copies("x", Source::EnvPass), 0, "an unnamed source is excluded");
    }

    #[test]
    fn stages_advance_on_their_budget_and_the_recipe_completes() {
        let mut m = Mixer::new(Recipe(vec![stage(&[(Source::Ctx, 1.0)], 100), stage(&[(Source::EnvPass, 2.0)], 50)]))
            .expect("valid");
        assert_eq!(m.add_tokens(60), None);
        assert_eq!(m.copies("r", Source::EnvPass), 0);
        assert_eq!(m.add_tokens(60), Some(1));
        assert_eq!(m.state(), MixState { stage: 1, stage_tokens: 0 });
        assert_eq!(m.copies("r", Source::EnvPass), 2);
        assert_eq!(m.add_tokens(50), Some(2));
        assert!(m.is_complete());
        assert_eq!(m.copies("r", Source::EnvPass), 0);
        assert_eq!(m.add_tokens(10), None);
    }

    #[test]
    fn bad_recipes_are_refused_with_the_stage() {
        assert_eq!(Recipe(vec![]).validate(), Err(RecipeError::Empty));
        let err = Recipe(vec![stage(&[(Source::Ctx, -1.0)], 0)]).validate().expect_err("negative");
        assert!(err.to_string().contains("rate -1"), "{err}");
        let err = Recipe(vec![stage(&[(Source::Ctx, 1.0)], 0), stage(&[(Source::Ctx, 1.0)], 0)])
            .validate()
            .expect_err("unbounded");
        assert!(err.to_string().contains("no token budget"), "{err}");
        assert!(matches!(Recipe(vec![stage(&[(Source::Ctx, 0.0)], 0)]).validate(), Err(RecipeError::NoSource { .. })));
    }

    #[test]
    fn recipes_read_from_toml_names() {
        let stage: RecipeStage = serde_json::from_value(serde_json::json!({
            "name": "sft", "sources": {"env-pass": 1.0, "ctx": 0.5}, "tokens": 10, "loss_mask": "assistant"
        }))
        .expect("parses");
        assert_eq!(stage.rate(Source::EnvPass), 1.0);
        assert_eq!(stage.rate(Source::Ctx), 0.5);
        assert_eq!(stage.loss_mask, LossMask::Assistant);
    }
}
