//! A checkpoint as one GGUF file (`agentmill-learner export-gguf <checkpoint> <out.gguf>`), the
//! format llama.cpp's server (and everything built on it) loads.
//!
//! The file is GGUF version 3 with llama.cpp's `qwen2` architecture: its metadata keys
//! (`qwen2.embedding_length`, …), its tensor names (`token_embd.weight`,
//! `blk.N.attn_q.weight`, …) and its tokenizer keys (`tokenizer.ggml.model = "gpt2"`: the
//! vocabulary, token types and merges of the checkpoint's byte-level BPE `tokenizer.json`).
//! llama.cpp's own converter (`convert_hf_to_gguf.py`) refuses a tokenizer trained here: it
//! recognises pre-tokenizers by hashing the ids a known vocabulary gives for a fixed text. This
//! writer instead reads the pre-tokenizer's definition in `tokenizer.json` and names the
//! llama.cpp pre-tokenizer whose split regex is the same ([`pre_tokenizer_name`]).
//!
//! `tokenizer.chat_template` is [`CHATML_XML_TOOLS_JINJA`], the learner's own rendering, so a
//! server formats a conversation as the learner trains on it.
//!
//! Weights are written as F32, or as F16 for the matrices with `--f16` (norms and biases stay
//! F32, as llama.cpp's converter keeps them). Qwen2's rotary embedding is the "NeoX" layout in
//! llama.cpp, so q/k need no permutation (unlike llama's).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, CheckpointError};
use crate::render::CHATML_XML_TOOLS_JINJA;

/// The GGUF version this writer produces.
pub const GGUF_VERSION: u32 = 3;
/// Tensor data alignment (GGUF's default; the file does not name another).
const ALIGNMENT: u64 = 32;

/// llama.cpp token types (`llama_token_type`).
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;

/// GPT-2's split regex: what a `ByteLevel` pre-tokenizer with `use_regex: true` applies
/// (tokenizers' `byte_level.rs`). llama.cpp's `gpt-2` pre-tokenizer (`LLAMA_VOCAB_PRE_TYPE_GPT2`)
/// splits with this expression.
const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Qwen2's split regex (its tokenizer.json's `Split` pre-tokenizer); llama.cpp's `qwen2`.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Why a checkpoint cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A file could not be read or written.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The tokenizer cannot be expressed as llama.cpp's `gpt2` tokenizer.
    #[error("{path}: {message}")]
    Tokenizer {
        /// The tokenizer.json.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// libtorch refused to convert a tensor.
    #[error("tensor {name}: {error}")]
    Torch {
        /// The tensor.
        name: String,
        /// libtorch's message.
        error: tch::TchError,
    },
}

/// What [`export_gguf`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufSummary {
    /// Tensors in the file.
    pub tensors: usize,
    /// Metadata keys in the file.
    pub metadata: usize,
    /// Entries of the vocabulary (the embedding's rows).
    pub vocab: usize,
    /// The llama.cpp pre-tokenizer named.
    pub pre_tokenizer: &'static str,
    /// Bytes written.
    pub bytes: u64,
}

/// Options of [`export_gguf`].
#[derive(Debug, Clone, Default)]
pub struct GgufOptions {
    /// The tokenizer.json (default: the checkpoint's own).
    pub tokenizer: Option<PathBuf>,
    /// Store the 2-D weights as F16 (norms and biases stay F32).
    pub f16: bool,
}

/// A GGUF metadata value.
#[derive(Debug, Clone)]
enum MetaValue {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    StrArray(Vec<String>),
    I32Array(Vec<i32>),
}

impl MetaValue {
    fn write(&self, out: &mut Vec<u8>) {
        const UINT32: u32 = 4;
        const INT32: u32 = 5;
        const FLOAT32: u32 = 6;
        const BOOL: u32 = 7;
        const STRING: u32 = 8;
        const ARRAY: u32 = 9;
        match self {
            MetaValue::U32(v) => {
                out.extend(UINT32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            MetaValue::F32(v) => {
                out.extend(FLOAT32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            MetaValue::Bool(v) => {
                out.extend(BOOL.to_le_bytes());
                out.push(u8::from(*v));
            }
            MetaValue::Str(s) => {
                out.extend(STRING.to_le_bytes());
                put_str(out, s);
            }
            MetaValue::StrArray(items) => {
                out.extend(ARRAY.to_le_bytes());
                out.extend(STRING.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    put_str(out, s);
                }
            }
            MetaValue::I32Array(items) => {
                out.extend(ARRAY.to_le_bytes());
                out.extend(INT32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for v in items {
                    out.extend(v.to_le_bytes());
                }
            }
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// The tokenizer as llama.cpp's `gpt2` model holds it.
struct GgufVocab {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    pre: &'static str,
    bos: u32,
    eos: u32,
    pad: u32,
}

/// Names the llama.cpp pre-tokenizer that splits text as `pre` (a tokenizer.json's
/// `pre_tokenizer`) does, or says why none does.
///
/// The learner's own tokenizers use a bare `ByteLevel` pre-tokenizer (`use_regex: true`,
/// `add_prefix_space: false`): GPT-2's regex, llama.cpp's `gpt-2`. Qwen2's tokenizer.json
/// (`Sequence[Split(its regex), ByteLevel(use_regex: false)]`) is llama.cpp's `qwen2`.
pub fn pre_tokenizer_name(pre: &Value) -> Result<&'static str, String> {
    let kind = pre.get("type").and_then(Value::as_str).unwrap_or("");
    let byte_level_ok = |p: &Value, regex: bool| {
        p.get("type").and_then(Value::as_str) == Some("ByteLevel")
            && p.get("add_prefix_space").and_then(Value::as_bool) != Some(true)
            && p.get("use_regex").and_then(Value::as_bool).unwrap_or(true) == regex
    };
    if kind == "ByteLevel" {
        return if byte_level_ok(pre, true) {
            Ok("gpt-2")
        } else {
            Err("its ByteLevel pre-tokenizer adds a prefix space or has no regex, which no llama.cpp pre-tokenizer does".into())
        };
    }
    if kind == "Sequence" {
        let parts = pre.get("pretokenizers").and_then(Value::as_array).cloned().unwrap_or_default();
        if let [split, byte_level] = parts.as_slice() {
            let regex = split.pointer("/pattern/Regex").and_then(Value::as_str);
            if split.get("type").and_then(Value::as_str) == Some("Split") && byte_level_ok(byte_level, false) {
                match regex {
                    Some(r) if r == QWEN2_REGEX => return Ok("qwen2"),
                    Some(r) if r == GPT2_REGEX => return Ok("gpt-2"),
                    _ => {}
                }
            }
        }
    }
    Err(format!(
        "its pre-tokenizer ({}) splits text in a way this exporter cannot name for llama.cpp; the learner's ByteLevel tokenizers (`agentmill-learner tokenizer train`) and Qwen2's are supported",
        serde_json::to_string(pre).unwrap_or_default()
    ))
}

fn read_vocab(path: &Path, vocab_size: usize) -> Result<GgufVocab, GgufError> {
    let bad = |message: String| GgufError::Tokenizer { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|error| GgufError::Io { action: "reading", path: path.to_path_buf(), error })?;
    let json: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e}); pass a Hugging Face tokenizer.json")))?;
    let model = json.get("model").ok_or_else(|| bad("no \"model\"; pass a Hugging Face tokenizer.json".into()))?;
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        return Err(bad("its model is not BPE; llama.cpp's gpt2 tokenizer needs a byte-level BPE".into()));
    }
    match json.get("normalizer") {
        None | Some(Value::Null) => {}
        // Qwen2's; llama.cpp applies none, which differs only on text that is not in NFC.
        Some(n) if n.get("type").and_then(Value::as_str) == Some("NFC") => {}
        Some(n) => return Err(bad(format!("its normalizer {n} has no llama.cpp equivalent"))),
    }
    let pre = pre_tokenizer_name(json.get("pre_tokenizer").unwrap_or(&Value::Null)).map_err(bad)?;

    let mut tokens: Vec<Option<String>> = vec![None; vocab_size];
    let mut types = vec![TOKEN_UNUSED; vocab_size];
    let mut place = |id: u64, token: &str, kind: i32| -> Result<(), GgufError> {
        let slot = usize::try_from(id).ok().filter(|&i| i < vocab_size).ok_or_else(|| {
            bad(format!("token {token:?} has id {id}, beyond the model's vocab_size {vocab_size}; the tokenizer belongs to another model"))
        })?;
        tokens[slot] = Some(token.to_string());
        types[slot] = kind;
        Ok(())
    };
    let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| bad("model.vocab is not a map".into()))?;
    for (token, id) in vocab {
        let id = id.as_u64().ok_or_else(|| bad(format!("token {token:?} has a non-integer id")))?;
        place(id, token, TOKEN_NORMAL)?;
    }
    let mut by_content = BTreeMap::new();
    for added in json.get("added_tokens").and_then(Value::as_array).into_iter().flatten() {
        let (Some(id), Some(content)) = (added.get("id").and_then(Value::as_u64), added.get("content").and_then(Value::as_str)) else {
            return Err(bad(format!("added token {added} has no id or content")));
        };
        let special = added.get("special").and_then(Value::as_bool).unwrap_or(false);
        place(id, content, if special { TOKEN_CONTROL } else { TOKEN_USER_DEFINED })?;
        by_content.insert(content.to_string(), id as u32);
    }
    let tokens: Vec<String> =
        tokens.into_iter().enumerate().map(|(i, t)| t.unwrap_or_else(|| format!("[PAD{i}]"))).collect();
    let merges = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("model.merges is missing".into()))?
        .iter()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(a), Value::String(b)] => Ok(format!("{a} {b}")),
                _ => Err(bad(format!("merge {m} is not a pair of strings"))),
            },
            _ => Err(bad(format!("merge {m} is neither \"a b\" nor [a, b]"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Qwen's conventions: <|endoftext|> begins (never added: add_bos_token is false) and pads;
    // <|im_end|> ends a turn, so a chat completion stops at the end of the assistant's turn.
    let endoftext = by_content.get("<|endoftext|>").copied();
    let im_end = by_content.get("<|im_end|>").copied();
    let eos = im_end.or(endoftext).ok_or_else(|| bad("has neither <|im_end|> nor <|endoftext|> as an added token; train it with `agentmill-learner tokenizer train`".into()))?;
    let bos = endoftext.unwrap_or(eos);
    Ok(GgufVocab { tokens, types, merges, pre, bos, eos, pad: bos })
}

/// llama.cpp's name for a transformers Qwen2 tensor.
fn gguf_tensor_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let part = match tail {
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.q_proj.bias" => "attn_q.bias",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.k_proj.bias" => "attn_k.bias",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.v_proj.bias" => "attn_v.bias",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{part}"))
}

struct TensorData {
    name: String,
    /// GGUF order: the innermost dimension first (the reverse of torch's shape).
    dims: Vec<u64>,
    /// 0: F32, 1: F16.
    ggml_type: u32,
    bytes: Vec<u8>,
}

fn tensor_bytes(name: &str, t: &Tensor, kind: Kind) -> Result<Vec<u8>, GgufError> {
    let torch = |error| GgufError::Torch { name: name.to_string(), error };
    let t = t.f_to_kind(kind).map_err(torch)?.f_contiguous().map_err(torch)?;
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut bytes, numel).map_err(torch)?;
    Ok(bytes)
}

/// Writes the checkpoint in `dir` (config.json, safetensors, tokenizer.json) as a GGUF file.
pub fn export_gguf(dir: &Path, out: &Path, options: &GgufOptions) -> Result<GgufSummary, GgufError> {
    let config = checkpoint::read_config(dir)?;
    let tokenizer_path = options.tokenizer.clone().unwrap_or_else(|| dir.join("tokenizer.json"));
    if !tokenizer_path.is_file() {
        return Err(GgufError::Tokenizer {
            path: tokenizer_path,
            message: "not found; pass --tokenizer (the run's output_dir/tokenizer.json)".into(),
        });
    }
    let vocab = read_vocab(&tokenizer_path, config.vocab_size)?;
    let (vs, _model) = checkpoint::load_pretrained(dir, Device::Cpu)?;

    let mut tensors = Vec::new();
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (hf, t) in &variables {
        let name = gguf_tensor_name(hf).ok_or_else(|| GgufError::Torch {
            name: hf.clone(),
            error: tch::TchError::Kind(format!("{hf} has no llama.cpp qwen2 name")),
        })?;
        let half = options.f16 && t.dim() == 2;
        let kind = if half { Kind::Half } else { Kind::Float };
        let dims = t.size().iter().rev().map(|&d| d as u64).collect();
        tensors.push(TensorData { name, dims, ggml_type: u32::from(half), bytes: tensor_bytes(hf, t, kind)? });
    }
    // llama.cpp's own order: embeddings, then layer by layer, then the output.
    let rank = |n: &str| {
        if n.starts_with("token_embd") {
            (0, 0, n.to_string())
        } else if let Some(rest) = n.strip_prefix("blk.") {
            let (l, tail) = rest.split_once('.').unwrap_or((rest, ""));
            (1, l.parse::<usize>().unwrap_or(0), tail.to_string())
        } else {
            (2, 0, n.to_string())
        }
    };
    tensors.sort_by_key(|t| rank(&t.name));

    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "agentmill".into());
    let c = &config;
    // Tied embeddings need no key: llama.cpp reuses token_embd when `output.weight` is absent.
    let meta: Vec<(&str, MetaValue)> = vec![
        ("general.architecture", MetaValue::Str("qwen2".into())),
        ("general.name", MetaValue::Str(name)),
        ("general.file_type", MetaValue::U32(u32::from(options.f16))),
        ("qwen2.context_length", MetaValue::U32(c.max_position_embeddings as u32)),
        ("qwen2.embedding_length", MetaValue::U32(c.hidden_size as u32)),
        ("qwen2.block_count", MetaValue::U32(c.num_hidden_layers as u32)),
        ("qwen2.feed_forward_length", MetaValue::U32(c.intermediate_size as u32)),
        ("qwen2.attention.head_count", MetaValue::U32(c.num_attention_heads as u32)),
        ("qwen2.attention.head_count_kv", MetaValue::U32(c.num_key_value_heads as u32)),
        ("qwen2.attention.key_length", MetaValue::U32(c.head_dim as u32)),
        ("qwen2.attention.value_length", MetaValue::U32(c.head_dim as u32)),
        ("qwen2.rope.freq_base", MetaValue::F32(c.rope_theta as f32)),
        ("qwen2.attention.layer_norm_rms_epsilon", MetaValue::F32(c.rms_norm_eps as f32)),
        ("tokenizer.ggml.model", MetaValue::Str("gpt2".into())),
        ("tokenizer.ggml.pre", MetaValue::Str(vocab.pre.into())),
        ("tokenizer.ggml.tokens", MetaValue::StrArray(vocab.tokens.clone())),
        ("tokenizer.ggml.token_type", MetaValue::I32Array(vocab.types.clone())),
        ("tokenizer.ggml.merges", MetaValue::StrArray(vocab.merges.clone())),
        ("tokenizer.ggml.bos_token_id", MetaValue::U32(vocab.bos)),
        ("tokenizer.ggml.eos_token_id", MetaValue::U32(vocab.eos)),
        ("tokenizer.ggml.padding_token_id", MetaValue::U32(vocab.pad)),
        ("tokenizer.ggml.add_bos_token", MetaValue::Bool(false)),
        ("tokenizer.chat_template", MetaValue::Str(CHATML_XML_TOOLS_JINJA.into())),
    ];

    let mut head = Vec::new();
    head.extend(b"GGUF");
    head.extend(GGUF_VERSION.to_le_bytes());
    head.extend((tensors.len() as u64).to_le_bytes());
    head.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in &meta {
        put_str(&mut head, key);
        value.write(&mut head);
    }
    let mut offset = 0u64;
    for t in &tensors {
        put_str(&mut head, &t.name);
        head.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            head.extend(d.to_le_bytes());
        }
        head.extend(t.ggml_type.to_le_bytes());
        head.extend(offset.to_le_bytes());
        offset = (offset + t.bytes.len() as u64).next_multiple_of(ALIGNMENT);
    }
    head.resize((head.len() as u64).next_multiple_of(ALIGNMENT) as usize, 0);

    let io = |action, error| GgufError::Io { action, path: out.to_path_buf(), error };
    let tmp = out.with_extension("gguf.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
    let mut w = std::io::BufWriter::new(file);
    w.write_all(&head).map_err(|e| io("writing", e))?;
    let mut written = head.len() as u64;
    for t in &tensors {
        w.write_all(&t.bytes).map_err(|e| io("writing", e))?;
        let end = (t.bytes.len() as u64).next_multiple_of(ALIGNMENT);
        w.write_all(&vec![0u8; (end - t.bytes.len() as u64) as usize]).map_err(|e| io("writing", e))?;
        written += end;
    }
    let file = w.into_inner().map_err(|e| io("writing", e.into_error()))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    std::fs::rename(&tmp, out).map_err(|e| io("renaming into place", e))?;
    Ok(GgufSummary { tensors: tensors.len(), metadata: meta.len(), vocab: vocab.tokens.len(), pre_tokenizer: vocab.pre, bytes: written })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_follow_llama_cpp() {
        assert_eq!(gguf_tensor_name("model.layers.3.self_attn.k_proj.bias").as_deref(), Some("blk.3.attn_k.bias"));
        assert_eq!(gguf_tensor_name("model.layers.0.post_attention_layernorm.weight").as_deref(), Some("blk.0.ffn_norm.weight"));
        assert_eq!(gguf_tensor_name("lm_head.weight").as_deref(), Some("output.weight"));
        assert_eq!(gguf_tensor_name("model.layers.0.mlp.act.weight"), None);
    }

    #[test]
    fn pre_tokenizers_are_named_by_their_regex() {
        let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        assert_eq!(pre_tokenizer_name(&byte_level), Ok("gpt-2"));
        let qwen2 = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]});
        assert_eq!(pre_tokenizer_name(&qwen2), Ok("qwen2"));
        let err = pre_tokenizer_name(&serde_json::json!({"type": "Whitespace"})).expect_err("no llama.cpp name");
        assert!(err.contains("Whitespace") && err.contains("tokenizer train"), "{err}");
    }
}
