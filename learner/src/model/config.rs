//! The Qwen2 architecture's hyper-parameters, read from and written to Hugging Face `config.json`.
//!
//! transformers 4.x and 5.x write the same model differently: 4.x puts `rope_theta` at the top
//! level and the dtype in `torch_dtype`; 5.x nests the RoPE settings in `rope_parameters`
//! (`{"rope_theta": …, "rope_type": "default"}`), names the dtype `dtype` and adds
//! `layer_types`. [`Qwen2Config`] reads both into one resolved value, refuses settings this
//! implementation would silently get wrong (RoPE scaling, sliding-window layers, another
//! activation), and writes a file that both generations of transformers read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

/// RoPE base used by transformers when a config names none (its 4.x default).
const DEFAULT_ROPE_THETA: f64 = 10_000.0;

/// Why a `config.json` cannot describe a model this crate builds.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The text is not JSON, or a field has the wrong type.
    #[error("config.json is not a valid Qwen2 config: {0}")]
    Json(serde_json::Error),
    /// Fields transformers always writes are missing.
    #[error("config.json has no {}; a Qwen2 config from transformers always has them", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// The values contradict each other or the architecture.
    #[error("config.json: {0}")]
    Invalid(String),
    /// A setting this implementation does not compute, refused rather than ignored.
    #[error("config.json asks for {0}, which agentmill's Qwen2 does not implement; use a config without it")]
    Unsupported(String),
}

// By hand rather than `#[from]`, which would also make the parser's error the `source()` and
// print it twice in an error chain.
impl From<serde_json::Error> for ConfigError {
    fn from(error: serde_json::Error) -> ConfigError {
        ConfigError::Json(error)
    }
}

/// `eos_token_id` is a single id in most configs and a list in some (Qwen2.5-Instruct).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// One id.
    One(u32),
    /// Several ids, any of which ends generation.
    Many(Vec<u32>),
}

/// A resolved Qwen2 configuration: every field has its effective value.
#[derive(Debug, Clone, PartialEq)]
pub struct Qwen2Config {
    /// Rows of the embedding and the LM head.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP's inner layer.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    pub num_key_value_heads: usize,
    /// Width of one head (`hidden_size / num_attention_heads` unless the file says otherwise).
    pub head_dim: usize,
    /// Longest position the model was configured for (not enforced: RoPE extrapolates).
    pub max_position_embeddings: usize,
    /// Epsilon inside RMSNorm's square root.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// Whether the LM head reuses the token embedding matrix.
    pub tie_word_embeddings: bool,
    /// Standard deviation of the normal initialisation of fresh weights.
    pub initializer_range: f64,
    /// Beginning-of-sequence token, if the tokenizer has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s).
    pub eos_token_id: Option<TokenIds>,
    /// Padding token, if any.
    pub pad_token_id: Option<u32>,
    /// The dtype the weights were saved in (`"float32"`, `"bfloat16"`, …), as transformers names it.
    pub dtype: Option<String>,
}

/// `rope_parameters` as transformers 5.x writes it.
#[derive(Debug, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
    /// Any other key (`factor`, …) belongs to a scaled RoPE variant.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// The file as written, before defaults and validation.
#[derive(Debug, Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    hidden_act: Option<String>,
    max_position_embeddings: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<Value>,
    use_sliding_window: Option<bool>,
    /// Present in both generations; only meaningful when `use_sliding_window` is true.
    #[allow(dead_code)]
    sliding_window: Option<Value>,
    layer_types: Option<Vec<String>>,
    tie_word_embeddings: Option<bool>,
    initializer_range: Option<f64>,
    attention_dropout: Option<f64>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<TokenIds>,
    pad_token_id: Option<u32>,
    torch_dtype: Option<String>,
    dtype: Option<String>,
}

impl Qwen2Config {
    /// Parses the text of a Hugging Face `config.json` (transformers 4.x or 5.x).
    pub fn from_json_str(text: &str) -> Result<Qwen2Config, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text)?;
        Qwen2Config::from_raw(raw)
    }

    /// The embedded default: a tiny model that trains in seconds on a CPU.
    ///
    /// Its shape exercises everything the full architecture has: grouped-query attention
    /// (4 query heads share 2 key/value heads), q/k/v biases and tied embeddings.
    pub fn tiny() -> Qwen2Config {
        Qwen2Config {
            vocab_size: 1024,
            hidden_size: 64,
            intermediate_size: 176,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 16,
            max_position_embeddings: 4096,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            tie_word_embeddings: true,
            initializer_range: 0.02,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
            dtype: Some("float32".to_string()),
        }
    }

    /// The shape of Qwen2.5-0.5B (494 M parameters, tied embeddings) as its `config.json` gives
    /// it, without its token ids; for benchmarks and memory planning at a real size.
    pub fn qwen2_5_0_5b() -> Qwen2Config {
        Qwen2Config {
            vocab_size: 151_936,
            hidden_size: 896,
            intermediate_size: 4864,
            num_hidden_layers: 24,
            num_attention_heads: 14,
            num_key_value_heads: 2,
            head_dim: 64,
            max_position_embeddings: 32_768,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            ..Qwen2Config::tiny()
        }
    }

    /// Query heads that share one key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// Number of weights the model has (the tied LM head counted once).
    pub fn num_parameters(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let attention = (h * q + q) + 2 * (h * kv + kv) + q * h;
        let mlp = 3 * h * i;
        let layer = attention + mlp + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers * layer + h + head
    }

    /// Checks the invariants the model relies on; every constructor runs it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ] {
            if value == 0 {
                return invalid(format!("{name} is 0; it must be positive"));
            }
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return invalid(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({}); grouped-query attention needs whole groups",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return invalid(format!("head_dim is {}; RoPE rotates pairs, so it must be even", self.head_dim));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return invalid(format!("rope_theta is {}; it must be a positive number", self.rope_theta));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return invalid(format!("rms_norm_eps is {}; it must be a non-negative number", self.rms_norm_eps));
        }
        Ok(())
    }

    fn from_raw(raw: RawConfig) -> Result<Qwen2Config, ConfigError> {
        if let Some(model_type) = &raw.model_type
            && model_type != "qwen2"
        {
            return Err(ConfigError::Unsupported(format!(
                "model_type {model_type:?} (this is the qwen2 implementation)"
            )));
        }
        if let Some(act) = &raw.hidden_act
            && act != "silu"
        {
            return Err(ConfigError::Unsupported(format!("hidden_act {act:?} (Qwen2 uses silu)")));
        }
        if raw.attention_dropout.is_some_and(|p| p != 0.0) {
            return Err(ConfigError::Unsupported("attention_dropout > 0".to_string()));
        }
        if raw.use_sliding_window == Some(true) {
            return Err(ConfigError::Unsupported("use_sliding_window = true".to_string()));
        }
        if let Some(types) = &raw.layer_types
            && let Some(other) = types.iter().find(|t| t.as_str() != "full_attention")
        {
            return Err(ConfigError::Unsupported(format!("layer_types entry {other:?}")));
        }
        if let Some(scaling) = &raw.rope_scaling {
            let default = scaling.is_null()
                || scaling.get("rope_type").or_else(|| scaling.get("type")).and_then(Value::as_str) == Some("default");
            if !default {
                return Err(ConfigError::Unsupported(format!("rope_scaling {scaling}")));
            }
        }

        // 5.x nests the base in rope_parameters; 4.x keeps it at the top level. When both are
        // present (transformers 5 reading a 4.x file writes both) they must agree.
        let nested_theta = match &raw.rope_parameters {
            Some(rope) => {
                let rope_type = rope.rope_type.as_deref().unwrap_or("default");
                if rope_type != "default" {
                    return Err(ConfigError::Unsupported(format!("rope_parameters.rope_type {rope_type:?}")));
                }
                if let Some(key) = rope.rest.keys().next() {
                    return Err(ConfigError::Unsupported(format!("rope_parameters.{key}")));
                }
                rope.rope_theta
            }
            None => None,
        };
        let rope_theta = match (raw.rope_theta, nested_theta) {
            (Some(top), Some(nested)) if top != nested => {
                return Err(ConfigError::Invalid(format!(
                    "rope_theta is {top} but rope_parameters.rope_theta is {nested}; they must agree"
                )));
            }
            (Some(theta), _) | (None, Some(theta)) => theta,
            (None, None) => DEFAULT_ROPE_THETA,
        };

        let required = [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("intermediate_size", raw.intermediate_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("num_attention_heads", raw.num_attention_heads),
        ];
        let missing: Vec<&'static str> = required.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        let [
            Some(vocab_size),
            Some(hidden_size),
            Some(intermediate_size),
            Some(num_hidden_layers),
            Some(num_attention_heads),
        ] = required.map(|(_, v)| v)
        else {
            return Err(ConfigError::Missing(missing));
        };
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None => {
                if num_attention_heads == 0 || hidden_size % num_attention_heads != 0 {
                    return Err(ConfigError::Invalid(format!(
                        "hidden_size ({hidden_size}) is not a multiple of num_attention_heads ({num_attention_heads}) and no head_dim is given"
                    )));
                }
                hidden_size / num_attention_heads
            }
        };
        let config = Qwen2Config {
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(num_attention_heads),
            head_dim,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(32_768),
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            initializer_range: raw.initializer_range.unwrap_or(0.02),
            bos_token_id: raw.bos_token_id,
            eos_token_id: raw.eos_token_id,
            pad_token_id: raw.pad_token_id,
            dtype: raw.dtype.or(raw.torch_dtype),
        };
        config.validate()?;
        Ok(config)
    }

    /// The `config.json` object: transformers 5.x's layout, plus the 4.x spellings of the two
    /// renamed fields (`rope_theta` at the top, `torch_dtype`) so that 4.x reads it too.
    pub fn to_hf_json(&self) -> Value {
        let dtype = self.dtype.clone().unwrap_or_else(|| "float32".to_string());
        serde_json::json!({
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": { "rope_theta": self.rope_theta, "rope_type": "default" },
            "rope_scaling": null,
            "use_sliding_window": false,
            "sliding_window": null,
            "max_window_layers": self.num_hidden_layers,
            "layer_types": vec!["full_attention"; self.num_hidden_layers],
            "attention_dropout": 0.0,
            "tie_word_embeddings": self.tie_word_embeddings,
            "initializer_range": self.initializer_range,
            "use_cache": true,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "dtype": dtype,
            "torch_dtype": dtype,
        })
    }

    /// [`Qwen2Config::to_hf_json`] as pretty-printed text, as `save_pretrained` writes it.
    pub fn to_json_string(&self) -> String {
        // Serialising a Value built from plain numbers, strings and lists cannot fail.
        serde_json::to_string_pretty(&self.to_hf_json()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_is_valid_and_round_trips() {
        let tiny = Qwen2Config::tiny();
        assert!(tiny.validate().is_ok());
        let back = Qwen2Config::from_json_str(&tiny.to_json_string()).expect("our own output parses");
        assert_eq!(back, tiny);
    }

    #[test]
    fn head_dim_defaults_to_hidden_over_heads() {
        let c = Qwen2Config::from_json_str(
            r#"{"vocab_size": 10, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4}"#,
        )
        .expect("minimal config parses");
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.num_key_value_heads, 4);
        assert_eq!(c.rope_theta, DEFAULT_ROPE_THETA);
        assert!(!c.tie_word_embeddings);
    }

    #[test]
    fn refuses_what_it_would_get_wrong() {
        let base = r#""vocab_size": 10, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4"#;
        for (extra, needle) in [
            (r#""use_sliding_window": true"#, "use_sliding_window"),
            (r#""rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1.0}"#, "yarn"),
            (r#""rope_scaling": {"type": "linear", "factor": 2.0}"#, "rope_scaling"),
            (r#""hidden_act": "gelu""#, "gelu"),
            (r#""num_key_value_heads": 3"#, "multiple of num_key_value_heads"),
            (r#""rope_theta": 5.0, "rope_parameters": {"rope_theta": 6.0}"#, "must agree"),
            (r#""model_type": "llama""#, "llama"),
        ] {
            let err = Qwen2Config::from_json_str(&format!("{{{base}, {extra}}}")).expect_err(extra);
            assert!(err.to_string().contains(needle), "{extra}: {err}");
        }
        let err = Qwen2Config::from_json_str(r#"{"hidden_size": 64}"#).expect_err("missing fields");
        assert_eq!(
            err.to_string(),
            "config.json has no vocab_size, intermediate_size, num_hidden_layers, num_attention_heads; a Qwen2 config from transformers always has them"
        );
    }

    #[test]
    fn parameter_count_matches_shapes() {
        // Qwen2.5-0.5B: 494,032,768 parameters with tied embeddings.
        assert_eq!(Qwen2Config::qwen2_5_0_5b().num_parameters(), 494_032_768);
    }
}
