//! Views for people: a record as the model sees it, with the tokens it is trained to predict
//! marked ([`annotate`]), and a checkpoint's description ([`describe_checkpoint`]).

use std::fmt::Write as _;
use std::path::Path;

use agentmill_proto::TrajectoryRecord;

use crate::checkpoint::{self, CheckpointError};
use crate::mix::Source;
use crate::pack::LossMask;
use crate::render::{AssistantTokens, Template, render};
use crate::tokenize::{TextTokenizer, TokenizeError, TurnCheck, TurnCounts, TurnOutcome};
use crate::train::{TRAINER_STATE_FILE, TrainerState};

/// How trained text is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marking {
    /// Trained text in green, the rest dimmed (a terminal).
    Ansi,
    /// Trained text wrapped in `[[` … `]]` (files, diffs, tests).
    Plain,
}

/// A record rendered for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotated {
    /// A few lines about the record and the counts.
    pub header: String,
    /// The training text with trained spans marked (empty when the record is not trained).
    pub text: String,
    /// Tokens of the text (0 without a tokenizer).
    pub tokens: usize,
    /// Tokens that are targets under the loss mask (0 without a tokenizer).
    pub trained_tokens: usize,
}

/// Renders `record` as the learner would and marks what is trained under `loss_mask`: with a
/// tokenizer, exactly the target tokens (every token but the first under `none`, the
/// assistant's under `assistant`); without one, the same by characters.
pub fn annotate(
    record: &TrajectoryRecord,
    template: Template,
    tokenizer: Option<&TextTokenizer>,
    loss_mask: LossMask,
    marking: Marking,
) -> Result<Annotated, TokenizeError> {
    let mut header = format!(
        "record {}  kind {}  source {}  task {}",
        record.record_id,
        record.kind.as_str(),
        Source::of(record),
        record.task_id
    );
    if let Some(exit) = record.exit_reason {
        let _ = write!(header, "  exit {exit}");
    }
    let Some(rendered) = render(record, template) else {
        let _ = write!(
            header,
            "\nnot trained: {} episodes are not the model's doing",
            record.exit_reason.map(|e| e.as_str()).unwrap_or("untrainable")
        );
        return Ok(Annotated { header, text: String::new(), tokens: 0, trained_tokens: 0 });
    };
    let text = &rendered.text;
    let mut trained = vec![false; text.len()];
    let (mut tokens, mut trained_tokens) = (0, 0);
    match tokenizer {
        Some(tok) => {
            let spans = tok.encode_spans(&rendered)?;
            tokens = spans.len();
            for (i, span) in spans.iter().enumerate() {
                let target = i > 0 && (loss_mask == LossMask::None || span.assistant);
                if target {
                    trained_tokens += 1;
                    for b in span.bytes.clone() {
                        if let Some(slot) = trained.get_mut(b) {
                            *slot = true;
                        }
                    }
                }
            }
        }
        None => {
            for (b, slot) in trained.iter_mut().enumerate() {
                *slot = loss_mask == LossMask::None || rendered.assistant_spans.iter().any(|s| s.contains(&b));
            }
        }
    }
    let _ = write!(header, "\nloss mask {loss_mask}");
    if tokenizer.is_some() {
        let _ = write!(header, ": {trained_tokens} of {tokens} tokens trained");
    }
    if let Some(tok) = tokenizer.filter(|_| !rendered.recorded.is_empty()) {
        let turns = tok.encode_record(&rendered, AssistantTokens::Rendered)?.turns;
        let mut counts = TurnCounts::default();
        counts.add(&turns);
        let _ = write!(
            header,
            "\npolicy tokens: {} of {} assistant turns carry them; {}",
            counts.total(),
            rendered.assistant_spans.len(),
            counts.describe()
        );
        for turn in turns.iter().filter(|t| t.outcome != TurnOutcome::Match) {
            let _ = write!(header, "\n  {}", describe_turn(tok, turn)?);
        }
    }
    let (open, close, open_rest, close_rest) = match marking {
        Marking::Ansi => ("\x1b[32m", "\x1b[0m", "\x1b[2m", "\x1b[0m"),
        Marking::Plain => ("[[", "]]", "", ""),
    };
    let mut out = String::with_capacity(text.len() + 64);
    let mut current: Option<bool> = None;
    for (b, ch) in text.char_indices() {
        let t = trained[b];
        if current != Some(t) {
            match current {
                Some(true) => out.push_str(close),
                Some(false) => out.push_str(close_rest),
                None => {}
            }
            out.push_str(if t { open } else { open_rest });
            current = Some(t);
        }
        out.push(ch);
    }
    match current {
        Some(true) => out.push_str(close),
        Some(false) => out.push_str(close_rest),
        None => {}
    }
    Ok(Annotated { header, text: out, tokens, trained_tokens })
}

/// Where a recorded assistant turn parts from the tokenizer's tokens of its text.
fn describe_turn(tok: &TextTokenizer, turn: &TurnCheck) -> Result<String, TokenizeError> {
    let n = turn.turn + 1;
    let (recorded, rendered) = (&turn.recorded, &turn.rendered);
    Ok(match turn.outcome {
        TurnOutcome::Match => format!("assistant turn {n}: {} ids match", recorded.len()),
        TurnOutcome::OutOfVocab => {
            let max = recorded.iter().max().copied().unwrap_or_default();
            format!("assistant turn {n}: id {max} is beyond this tokenizer's {} (not the policy's tokenizer?)", tok.vocab_size())
        }
        TurnOutcome::Misaligned => format!("assistant turn {n}: a token crosses the turn's start or end"),
        TurnOutcome::Unmapped => format!("assistant turn {n}: a sampled token's text is no single id's text here (not the server's tokenizer?)"),
        TurnOutcome::OtherText => format!(
            "assistant turn {n}: the sampled ids are another text than the turn's: recorded {:?}, rendered {:?}",
            excerpt(&tok.decode(recorded)?),
            excerpt(&tok.decode(rendered)?)
        ),
        TurnOutcome::Drift => {
            let at = recorded.iter().zip(rendered).take_while(|(a, b)| a == b).count();
            let show = |ids: &[u32]| -> Result<String, TokenizeError> {
                Ok(match ids.get(at) {
                    Some(&id) => format!("{:?} (id {id})", tok.decode(&[id])?),
                    None => "the end".to_string(),
                })
            };
            format!(
                "assistant turn {n}: drift at token {at}: recorded {} of {} ids, re-tokenized {} of {}",
                show(recorded)?,
                recorded.len(),
                show(rendered)?,
                rendered.len()
            )
        }
    })
}

/// The first 120 characters of a text.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A checkpoint directory in words: architecture, size and, if present, the training state.
pub fn describe_checkpoint(dir: &Path) -> Result<String, CheckpointError> {
    let config = checkpoint::read_config(dir)?;
    let mut out = String::new();
    let _ = writeln!(out, "architecture: Qwen2ForCausalLM");
    let _ = writeln!(out, "parameters: {}", config.num_parameters());
    let _ = writeln!(
        out,
        "layers: {}  hidden: {}  intermediate: {}  heads: {} (kv {})  head_dim: {}  vocab: {}",
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.head_dim,
        config.vocab_size
    );
    let _ = writeln!(
        out,
        "rope_theta: {}  tied embeddings: {}  dtype: {}",
        config.rope_theta,
        config.tie_word_embeddings,
        config.dtype.as_deref().unwrap_or("unknown")
    );
    let state_path = dir.join(TRAINER_STATE_FILE);
    if state_path.exists() {
        let state: TrainerState = checkpoint::read_json_file(&state_path)?;
        let _ = writeln!(
            out,
            "step: {}  tokens seen: {}  target tokens seen: {}",
            state.step, state.tokens_seen, state.target_tokens_seen
        );
        let _ = writeln!(out, "learning rate at next step: {:.3e}", state.train.schedule.lr_at(state.step));
        let _ = writeln!(out, "data position: {}", state.data_position);
    } else {
        let _ = writeln!(out, "training state: none (weights only)");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentmill_proto::*;

    fn episode() -> TrajectoryRecord {
        let mut a = Message::text(Role::Assistant, "ls");
        a.tool_calls = vec![];
        TrajectoryRecord {
            worker: "w".into(),
            messages: vec![Message::text(Role::User, "go"), a],
            exit_reason: Some(ExitReason::Submitted),
            ..TrajectoryRecord::new(RecordKind::Env, "env:t:r0:a1", "t")
        }
    }

    #[test]
    fn assistant_turns_are_marked_plainly() {
        let got =
            annotate(&episode(), Template::default(), None, LossMask::Assistant, Marking::Plain).expect("annotates");
        assert_eq!(
            got.text, "<|im_start|>user\ngo<|im_end|>\n<|im_start|>assistant\n[[ls<|im_end|>]]\n",
            "{}",
            got.text
        );
        let mut infra = episode();
        infra.exit_reason = Some(ExitReason::SandboxError);
        let got = annotate(&infra, Template::default(), None, LossMask::None, Marking::Plain).expect("annotates");
        assert!(got.text.is_empty() && got.header.contains("not trained: sandbox_error"), "{}", got.header);
    }
}
