//! The Qwen2 decoder-only transformer in tch, mirroring transformers' `Qwen2ForCausalLM`.
//!
//! Modules are nested exactly as in transformers, so every variable in the [`nn::VarStore`] is
//! named like the tensor in a Hugging Face checkpoint (`model.embed_tokens.weight`,
//! `model.layers.3.self_attn.q_proj.bias`, `model.norm.weight`, `lm_head.weight`): loading a
//! checkpoint is a name-for-name copy, and a mismatch names the tensor.
//!
//! The forward pass takes **packed** rows: several documents share a row, each with positions
//! restarting at 0, and a document id per token keeps attention inside its document (a
//! block-diagonal causal mask). Without document ids it is the plain causal model.
//!
//! Precision follows autocast's rules without relying on libtorch's autocast (whose CUDA dtype
//! tch fixes to fp16): weights, the residual stream and RMSNorm stay in the parameters' dtype
//! (fp32), and the matrix products (projections, attention, LM head) run in the *compute kind*
//! — fp32 on the CPU, bf16 on CUDA — with the fp32 weights cast on the fly, so the optimizer
//! updates fp32 master weights.

use tch::{Device, Kind, TchError, Tensor, nn};
use thiserror::Error;

use super::config::{ConfigError, Qwen2Config};

/// Why a model cannot be built or run.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// libtorch refused an operation; `context` says which.
    #[error("{context}: {error}")]
    Torch {
        /// What the model was doing.
        context: String,
        /// libtorch's message.
        error: TchError,
    },
    /// The inputs do not have the shapes or types the forward pass needs.
    #[error("bad model input: {0}")]
    Input(String),
}

trait TorchContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, ModelError>;
}

impl<T> TorchContext<T> for Result<T, TchError> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, ModelError> {
        self.map_err(|error| ModelError::Torch { context: what(), error })
    }
}

/// Casts to `kind`; a no-op (same storage) when the tensor already has it.
fn cast(x: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
    if x.kind() == kind { Ok(x.shallow_clone()) } else { x.f_to_kind(kind) }
}

/// A `torch.nn.Linear` with transformers' weight layout `[out, in]`.
#[derive(Debug)]
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    fn new(path: &nn::Path, in_dim: usize, out_dim: usize, bias: bool, std: f64) -> Result<Linear, TchError> {
        let weight =
            path.f_var("weight", &[out_dim as i64, in_dim as i64], nn::Init::Randn { mean: 0.0, stdev: std })?;
        let bias = if bias { Some(path.f_zeros("bias", &[out_dim as i64])?) } else { None };
        Ok(Linear { weight, bias })
    }

    /// `x @ weight.T + bias`, computed in `kind`.
    fn forward(&self, x: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
        let bias = match &self.bias {
            Some(b) => Some(cast(b, kind)?),
            None => None,
        };
        cast(x, kind)?.f_linear(&cast(&self.weight, kind)?, bias.as_ref())
    }
}

/// Root-mean-square layer norm, computed in fp32 whatever the input dtype (as transformers does).
#[derive(Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(path: &nn::Path, dim: usize, eps: f64) -> Result<RmsNorm, TchError> {
        Ok(RmsNorm { weight: path.f_ones("weight", &[dim as i64])?, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let input_kind = x.kind();
        let xf = cast(x, Kind::Float)?;
        // `x * x` rather than `pow(2)`: the same values (pow computes x·x), and a cheaper backward.
        let variance = xf.f_mul(&xf)?.f_mean_dim(-1, true, Kind::Float)?;
        let normed = xf.f_mul(&variance.f_add_scalar(self.eps)?.f_rsqrt()?)?;
        self.weight.f_mul(&cast(&normed, input_kind)?)
    }
}

/// Rotary position embedding with transformers' "rotate half" layout.
#[derive(Debug)]
struct Rotary {
    /// `1 / theta^(2i/d)` for `i` in `0..d/2`, fp32, not a parameter.
    inv_freq: Tensor,
}

impl Rotary {
    fn new(config: &Qwen2Config, device: Device) -> Result<Rotary, TchError> {
        let dim = config.head_dim as i64;
        // Same expression as transformers' default RoPE init, so fp32 rounding matches it.
        let exponents = Tensor::f_arange_start_step(0, dim, 2, (Kind::Int64, device))?
            .f_to_kind(Kind::Float)?
            .f_div_scalar(dim as f64)?;
        let inv_freq = Tensor::f_pow_scalar(config.rope_theta, &exponents)?.f_reciprocal()?;
        Ok(Rotary { inv_freq })
    }

    /// `(cos, signed sin)` of shape `[B, 1, T, head_dim]` for the given positions, in `kind`,
    /// where the signed sine is `sin` with its first half negated (see [`apply_rotary`]).
    fn cos_sin(&self, position_ids: &Tensor, kind: Kind) -> Result<(Tensor, Tensor), TchError> {
        let freqs = position_ids.f_to_kind(Kind::Float)?.f_unsqueeze(-1)?.f_mul(&self.inv_freq)?;
        let emb = Tensor::f_cat(&[&freqs, &freqs], -1)?.f_unsqueeze(1)?;
        // Sines of the doubled frequencies, as transformers computes them, then signed.
        let sin = emb.f_sin()?;
        let half = sin.size().last().copied().unwrap_or(0) / 2;
        let signed_sin = Tensor::f_cat(&[&sin.f_narrow(-1, 0, half)?.f_neg()?, &sin.f_narrow(-1, half, half)?], -1)?;
        Ok((emb.f_cos()?.f_to_kind(kind)?, signed_sin.f_to_kind(kind)?))
    }
}

/// transformers' `x * cos + rotate_half(x) * sin` for `x` of shape `[B, heads, T, head_dim]`,
/// where `rotate_half(x) = cat(-x₂, x₁)`. Computed as `x * cos + roll(x, half) * signed_sin`
/// with `roll(x, half) = cat(x₂, x₁)` and `signed_sin = cat(-sin₁, sin₂)`: the same products
/// (negating a factor is exact), in fewer kernels forward and backward.
fn apply_rotary(x: &Tensor, cos: &Tensor, signed_sin: &Tensor) -> Result<Tensor, TchError> {
    let half = x.size().last().copied().unwrap_or(0) / 2;
    let rotated = x.f_roll([half], [-1])?;
    x.f_mul(cos)?.f_add(&rotated.f_mul(signed_sin)?)
}

/// Grouped-query attention with q/k/v biases and no output bias, as Qwen2 has.
#[derive(Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(path: &nn::Path, c: &Qwen2Config) -> Result<Attention, TchError> {
        let (h, d, std) = (c.hidden_size, c.head_dim, c.initializer_range);
        Ok(Attention {
            q_proj: Linear::new(&path.sub("q_proj"), h, c.num_attention_heads * d, true, std)?,
            k_proj: Linear::new(&path.sub("k_proj"), h, c.num_key_value_heads * d, true, std)?,
            v_proj: Linear::new(&path.sub("v_proj"), h, c.num_key_value_heads * d, true, std)?,
            o_proj: Linear::new(&path.sub("o_proj"), c.num_attention_heads * d, h, false, std)?,
            num_heads: c.num_attention_heads as i64,
            num_kv_heads: c.num_key_value_heads as i64,
            head_dim: d as i64,
        })
    }

    fn forward(&self, x: &Tensor, rope: &(Tensor, Tensor), layout: &Layout, kind: Kind) -> Result<Tensor, TchError> {
        let (b, t) = (x.size()[0], x.size()[1]);
        let heads = |proj: &Linear, n: i64| -> Result<Tensor, TchError> {
            proj.forward(x, kind)?.f_view([b, t, n, self.head_dim])?.f_transpose(1, 2)
        };
        let q = apply_rotary(&heads(&self.q_proj, self.num_heads)?, &rope.0, &rope.1)?;
        let k = apply_rotary(&heads(&self.k_proj, self.num_kv_heads)?, &rope.0, &rope.1)?;
        let v = heads(&self.v_proj, self.num_kv_heads)?;
        let causal = |q: &Tensor, k: &Tensor, v: &Tensor| {
            // Plain causal attention: SDPA takes the grouped heads as they are (enable_gqa,
            // which transformers passes too when there is no mask; the CPU flash kernel
            // supports it), saving the copies of repeated keys and values and their gradients.
            Tensor::f_scaled_dot_product_attention(
                q,
                k,
                v,
                None::<&Tensor>,
                0.0,
                true,
                None,
                self.num_heads != self.num_kv_heads,
            )
        };
        let out = match layout {
            Layout::Causal => causal(&q, &k, &v)?,
            // Each document is causal attention over its own span: no mask to build or read,
            // the causal kernel, and the work of the documents' lengths squared instead of the
            // row's.
            Layout::Documents(rows) => {
                let mut out_rows = Vec::with_capacity(rows.len());
                for (r, spans) in rows.iter().enumerate() {
                    let row = |x: &Tensor| x.f_narrow(0, r as i64, 1);
                    let (q, k, v) = (row(&q)?, row(&k)?, row(&v)?);
                    let mut parts = spans
                        .iter()
                        .map(|&(start, len)| {
                            let span = |x: &Tensor| x.f_narrow(2, start, len);
                            causal(&span(&q)?, &span(&k)?, &span(&v)?)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    out_rows.push(if parts.len() == 1 { parts.remove(0) } else { Tensor::f_cat(&parts, 2)? });
                }
                Tensor::f_cat(&out_rows, 0)?
            }
            // With a mask, repeat the key/value heads explicitly rather than passing enable_gqa:
            // the SDPA backends that take an arbitrary mask (math, memory-efficient) accept it.
            Layout::Mask(mask) => Tensor::f_scaled_dot_product_attention(
                &q,
                &self.repeat_kv(&k)?,
                &self.repeat_kv(&v)?,
                Some(mask),
                0.0,
                false,
                None,
                false,
            )?,
        };
        let out = out.f_transpose(1, 2)?.f_reshape([b, t, self.num_heads * self.head_dim])?;
        self.o_proj.forward(&out, kind)
    }

    fn repeat_kv(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let groups = self.num_heads / self.num_kv_heads;
        if groups == 1 {
            return Ok(x.shallow_clone());
        }
        let s = x.size();
        let (b, t) = (s[0], s[2]);
        x.f_unsqueeze(2)?.f_expand([b, self.num_kv_heads, groups, t, self.head_dim], false)?.f_reshape([
            b,
            self.num_heads,
            t,
            self.head_dim,
        ])
    }
}

/// The SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`.
#[derive(Debug)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(path: &nn::Path, c: &Qwen2Config) -> Result<Mlp, TchError> {
        let (h, i, std) = (c.hidden_size, c.intermediate_size, c.initializer_range);
        Ok(Mlp {
            gate_proj: Linear::new(&path.sub("gate_proj"), h, i, false, std)?,
            up_proj: Linear::new(&path.sub("up_proj"), h, i, false, std)?,
            down_proj: Linear::new(&path.sub("down_proj"), i, h, false, std)?,
        })
    }

    fn forward(&self, x: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
        let gate = self.gate_proj.forward(x, kind)?.f_silu()?;
        let up = self.up_proj.forward(x, kind)?;
        self.down_proj.forward(&gate.f_mul(&up)?, kind)
    }
}

/// One pre-norm decoder layer.
#[derive(Debug)]
struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn new(path: &nn::Path, c: &Qwen2Config) -> Result<DecoderLayer, TchError> {
        Ok(DecoderLayer {
            input_layernorm: RmsNorm::new(&path.sub("input_layernorm"), c.hidden_size, c.rms_norm_eps)?,
            self_attn: Attention::new(&path.sub("self_attn"), c)?,
            post_attention_layernorm: RmsNorm::new(
                &path.sub("post_attention_layernorm"),
                c.hidden_size,
                c.rms_norm_eps,
            )?,
            mlp: Mlp::new(&path.sub("mlp"), c)?,
        })
    }

    fn forward(&self, x: &Tensor, rope: &(Tensor, Tensor), layout: &Layout, kind: Kind) -> Result<Tensor, TchError> {
        let attn = self.self_attn.forward(&self.input_layernorm.forward(x)?, rope, layout, kind)?;
        // Adding a bf16 branch to the fp32 residual promotes to fp32, as under autocast.
        let x = x.f_add(&attn)?;
        let mlp = self.mlp.forward(&self.post_attention_layernorm.forward(&x)?, kind)?;
        x.f_add(&mlp)
    }
}

/// The boolean attention mask `[B, 1, T, T]` for packed rows: token `i` may attend to token `j`
/// when `j <= i` and both carry the same document id.
///
/// Every row of the mask allows at least the diagonal, so no query is left with nothing to
/// attend to (which would make softmax produce NaN); padding should get its own id.
pub fn document_causal_mask(doc_ids: &Tensor) -> Result<Tensor, TchError> {
    let (_, t) = doc_ids.size2()?;
    let same_doc = doc_ids.f_unsqueeze(2)?.f_eq_tensor(&doc_ids.f_unsqueeze(1)?)?;
    let causal = Tensor::f_ones([t, t], (Kind::Bool, doc_ids.device()))?.f_tril(0)?;
    same_doc.f_logical_and(&causal)?.f_unsqueeze(1)
}

/// What the decoder layers of one forward pass share ([`Qwen2ForCausalLM::prepare`]).
#[derive(Debug)]
pub struct LayerContext {
    /// Which tokens attend to which.
    layout: Layout,
    /// `(cos, signed sin)` of every token's position.
    rope: (Tensor, Tensor),
}

/// How attention keeps packed documents apart.
#[derive(Debug)]
enum Layout {
    /// Plain causal attention over each whole row.
    Causal,
    /// Per row, the `(start, len)` spans of its documents (padding is a span of its own):
    /// causal attention inside each span.
    Documents(Vec<Vec<(i64, i64)>>),
    /// The block-diagonal causal mask `[B, 1, T, T]` ([`document_causal_mask`]).
    Mask(Tensor),
}

/// How [`Qwen2ForCausalLM`] keeps the documents of a packed row from attending to each other.
/// Both give the same outputs (to float rounding); they differ in cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DocumentAttention {
    /// Causal attention over each document's span, one SDPA call per document: no `[T, T]`
    /// mask, the causal kernel, and work in the documents' lengths squared (the default).
    #[default]
    Spans,
    /// One SDPA call per batch under a block-diagonal causal mask (the reference).
    Mask,
}

/// The `(start, len)` runs of equal ids in each row of `ids` (rows of `row_len`, flattened).
fn document_spans(ids: &[i64], row_len: usize) -> Vec<Vec<(i64, i64)>> {
    ids.chunks(row_len.max(1))
        .map(|row| {
            let mut spans: Vec<(i64, i64)> = Vec::new();
            for (i, id) in row.iter().enumerate() {
                match spans.last_mut() {
                    Some((start, len)) if row[*start as usize] == *id => *len += 1,
                    _ => spans.push((i as i64, 1)),
                }
            }
            spans
        })
        .collect()
}

/// `Qwen2ForCausalLM`: token embedding, decoder layers, final norm and LM head.
#[derive(Debug)]
pub struct Qwen2ForCausalLM {
    config: Qwen2Config,
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// `None` when the head is tied to `embed_tokens` (no `lm_head.weight` variable exists).
    lm_head: Option<Tensor>,
    rotary: Rotary,
    compute_kind: Kind,
    document_attention: DocumentAttention,
}

impl Qwen2ForCausalLM {
    /// Creates the model's variables under `root` (pass `vs.root()`), initialised as
    /// transformers initialises a fresh model: weights ~ N(0, initializer_range), biases 0,
    /// norms 1. Seed libtorch first (see [`crate::seed::with_seed`]) for reproducible weights.
    pub fn new(root: &nn::Path, config: &Qwen2Config) -> Result<Qwen2ForCausalLM, ModelError> {
        config.validate()?;
        let build = || -> Result<Qwen2ForCausalLM, TchError> {
            let model = root.sub("model");
            let embed_tokens = model.sub("embed_tokens").f_var(
                "weight",
                &[config.vocab_size as i64, config.hidden_size as i64],
                nn::Init::Randn { mean: 0.0, stdev: config.initializer_range },
            )?;
            let layers_path = model.sub("layers");
            let layers = (0..config.num_hidden_layers)
                .map(|i| DecoderLayer::new(&layers_path.sub(i), config))
                .collect::<Result<Vec<_>, _>>()?;
            let norm = RmsNorm::new(&model.sub("norm"), config.hidden_size, config.rms_norm_eps)?;
            let lm_head = if config.tie_word_embeddings {
                None
            } else {
                Some(root.sub("lm_head").f_var(
                    "weight",
                    &[config.vocab_size as i64, config.hidden_size as i64],
                    nn::Init::Randn { mean: 0.0, stdev: config.initializer_range },
                )?)
            };
            Ok(Qwen2ForCausalLM {
                config: config.clone(),
                embed_tokens,
                layers,
                norm,
                lm_head,
                rotary: Rotary::new(config, root.device())?,
                compute_kind: Kind::Float,
                document_attention: DocumentAttention::default(),
            })
        };
        build().context(|| "creating the Qwen2 variables".to_string())
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &Qwen2Config {
        &self.config
    }

    /// The dtype matrix products run in (fp32 unless [`Self::set_compute_kind`] chose bf16).
    pub fn compute_kind(&self) -> Kind {
        self.compute_kind
    }

    /// How packed documents are kept apart ([`DocumentAttention::Spans`] unless set).
    pub fn set_document_attention(&mut self, how: DocumentAttention) {
        self.document_attention = how;
    }

    /// Runs the matrix products in `kind` (`Kind::BFloat16` on CUDA for mixed precision),
    /// keeping the weights and the residual stream in their own dtype.
    pub fn set_compute_kind(&mut self, kind: Kind) {
        self.compute_kind = kind;
    }

    /// Logits `[B, T, vocab]` (in the compute kind) for `input_ids [B, T]` (int64).
    ///
    /// `position_ids [B, T]` give each token's position inside its document. With
    /// `doc_ids [B, T]`, a token attends only to earlier tokens of the same id (packed rows);
    /// without, attention is plainly causal over the whole row.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        position_ids: &Tensor,
        doc_ids: Option<&Tensor>,
    ) -> Result<Tensor, ModelError> {
        let h = self.hidden_states(input_ids, position_ids, doc_ids)?;
        self.head(&h)
    }

    /// The residual stream after the last decoder layer, `[B, T, hidden]` (before the final
    /// norm): [`Self::forward`] without the head, for callers that run the head in pieces.
    pub fn hidden_states(
        &self,
        input_ids: &Tensor,
        position_ids: &Tensor,
        doc_ids: Option<&Tensor>,
    ) -> Result<Tensor, ModelError> {
        let context = self.prepare(input_ids, position_ids, doc_ids)?;
        let mut h = self.embed(input_ids)?;
        for i in 0..self.layers.len() {
            h = self.layer(i, &h, &context)?;
        }
        Ok(h)
    }

    /// Checks the inputs and computes what every decoder layer of one pass shares: the
    /// attention mask (none for plain causal rows) and the rotary tables.
    pub fn prepare(
        &self,
        input_ids: &Tensor,
        position_ids: &Tensor,
        doc_ids: Option<&Tensor>,
    ) -> Result<LayerContext, ModelError> {
        let (b, t) = input_ids
            .size2()
            .map_err(|_| ModelError::Input(format!("input_ids must be [batch, seq], got {:?}", input_ids.size())))?;
        for (name, tensor) in [("position_ids", Some(position_ids)), ("doc_ids", doc_ids)] {
            if let Some(tensor) = tensor
                && tensor.size() != [b, t]
            {
                return Err(ModelError::Input(format!(
                    "{name} has shape {:?} but input_ids has [{b}, {t}]; they must match",
                    tensor.size()
                )));
            }
        }
        if input_ids.kind() != Kind::Int64 {
            return Err(ModelError::Input(format!("input_ids must be int64, got {:?}", input_ids.kind())));
        }
        // Rows holding one document (ids 0, then padding at -1) need no block mask: plain causal
        // attention gives every real token the same result (padding comes last and its labels are
        // ignored), and SDPA can take its causal fast path instead of reading a [B,1,T,T] mask.
        // One read of the ids to the host (a sync on CUDA) serves both the check and the spans.
        let host_ids = doc_ids
            .map(|d| Vec::<i64>::try_from(d.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?))
            .transpose()
            .context(|| "reading doc_ids".to_string())?;
        let single_document = host_ids.as_ref().is_none_or(|ids| ids.iter().all(|&d| d <= 0));
        let layout = match (doc_ids, host_ids) {
            (Some(doc_ids), Some(ids)) if !single_document => match self.document_attention {
                DocumentAttention::Spans => Layout::Documents(document_spans(&ids, t as usize)),
                DocumentAttention::Mask => {
                    Layout::Mask(document_causal_mask(doc_ids).context(|| "building the document mask".to_string())?)
                }
            },
            _ => Layout::Causal,
        };
        let rope = self.rotary.cos_sin(position_ids, self.compute_kind).context(|| "computing RoPE".to_string())?;
        Ok(LayerContext { layout, rope })
    }

    /// The token embeddings of `input_ids`, `[B, T, hidden]`.
    pub fn embed(&self, input_ids: &Tensor) -> Result<Tensor, ModelError> {
        Tensor::f_embedding(&self.embed_tokens, input_ids, -1, false, false)
            .context(|| format!("embedding input_ids (vocab_size {})", self.config.vocab_size))
    }

    /// Decoder layer `i` applied to the residual stream `h`.
    pub fn layer(&self, i: usize, h: &Tensor, context: &LayerContext) -> Result<Tensor, ModelError> {
        let layer = self.layers.get(i).ok_or_else(|| {
            ModelError::Input(format!("layer {i} does not exist; the model has {}", self.layers.len()))
        })?;
        layer.forward(h, &context.rope, &context.layout, self.compute_kind).context(|| format!("model.layers.{i}"))
    }

    /// The final norm and the LM head: logits `[..., vocab]` (in the compute kind) of residual
    /// states `[..., hidden]`. Every token's logits depend on its own state only, so the head
    /// can run on any slice of tokens.
    pub fn head(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        let h = self.norm.forward(h).context(|| "model.norm".to_string())?;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed_tokens);
        let run_head = || cast(&h, self.compute_kind)?.f_linear(&cast(head, self.compute_kind)?, None::<&Tensor>);
        run_head().context(|| "lm_head".to_string())
    }

    /// Decoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Logits for one unpacked sequence of token ids (positions `0..len`), as `[len, vocab]`
    /// fp32 — the reference the packed path must reproduce.
    pub fn forward_single(&self, ids: &[i64], device: Device) -> Result<Tensor, ModelError> {
        let run = || -> Result<(Tensor, Tensor), TchError> {
            let input = Tensor::f_from_slice(ids)?.f_to(device)?.f_unsqueeze(0)?;
            let positions = Tensor::f_arange(ids.len() as i64, (Kind::Int64, device))?.f_unsqueeze(0)?;
            Ok((input, positions))
        };
        let (input, positions) = run().context(|| "preparing a single sequence".to_string())?;
        let logits = self.forward(&input, &positions, None)?;
        logits.f_squeeze_dim(0).and_then(|l| l.f_to_kind(Kind::Float)).context(|| "squeezing logits".to_string())
    }
}
