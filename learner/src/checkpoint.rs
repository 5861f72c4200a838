//! Checkpoints in Hugging Face's layout: `config.json` + `model.safetensors`.
//!
//! A directory written by [`save_pretrained`] loads with
//! `transformers.Qwen2ForCausalLM.from_pretrained(dir)`, and a directory written by
//! transformers (one `model.safetensors`, or shards listed in `model.safetensors.index.json`)
//! loads with [`load_pretrained`]. Tensors carry transformers' names. With tied embeddings the
//! file holds `model.embed_tokens.weight` only, as transformers writes it; an `lm_head.weight`
//! found beside it is ignored, as transformers ignores it.
//!
//! Loading is strict: every variable of the model must be in the files with its exact shape,
//! and every tensor in the files must belong to the model, so a checkpoint for another shape
//! fails with the tensor's name instead of training from half-random weights.
//!
//! Files are written to a temporary name and renamed into place, so a crash mid-save leaves
//! the previous file whole. The trainer's resume state (optimizer moments, step, data
//! position) is written beside these files by [`crate::train::Trainer::save_checkpoint`]
//! through [`write_tensors`] and [`write_json_file`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::{Device, Kind, TchError, Tensor, nn::VarStore};
use thiserror::Error;

use crate::model::{ConfigError, ModelError, Qwen2Config, Qwen2ForCausalLM};

/// The model's hyper-parameters.
pub const CONFIG_FILE: &str = "config.json";
/// The weights, when in one file.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The map from tensor name to shard, when the weights are sharded.
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

/// Tensors by name, as read from a safetensors file.
pub type NamedTensors = HashMap<String, Tensor>;
/// A safetensors file's `__metadata__` (string to string).
pub type Metadata = BTreeMap<String, String>;

/// Why a checkpoint cannot be read or written.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// `config.json` does not describe a model this crate builds.
    #[error("{path}: {error}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        error: ConfigError,
    },
    /// A file is not valid safetensors or JSON.
    #[error("{path} is not a valid {format} file: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// "safetensors" or "JSON".
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The model has a variable the checkpoint lacks.
    #[error("{file} has no tensor {name}; {hint}")]
    MissingTensor {
        /// The variable's name.
        name: String,
        /// Where it was looked for.
        file: PathBuf,
        /// What probably explains it.
        hint: String,
    },
    /// The checkpoint has a tensor the model does not.
    #[error("{file} has a tensor {name} that the model built from config.json does not have; {hint}")]
    UnexpectedTensor {
        /// The tensor's name.
        name: String,
        /// The file it is in.
        file: PathBuf,
        /// What probably explains it.
        hint: String,
    },
    /// A tensor has another shape than the variable it should fill.
    #[error(
        "{file}: tensor {name} has shape {found:?} but config.json implies {expected:?}; the config and the weights are from different models"
    )]
    Shape {
        /// The tensor's name.
        name: String,
        /// The file it is in.
        file: PathBuf,
        /// The variable's shape.
        expected: Vec<i64>,
        /// The stored shape.
        found: Vec<i64>,
    },
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// libtorch refused an operation.
    #[error("{context}: {error}")]
    Torch {
        /// What was being done.
        context: String,
        /// libtorch's message.
        error: TchError,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CheckpointError + 'a {
    move |error| CheckpointError::Io { action, path: path.to_path_buf(), error }
}

fn torch_err(context: impl Into<String>) -> impl FnOnce(TchError) -> CheckpointError {
    let context = context.into();
    move |error| CheckpointError::Torch { context, error }
}

/// Reads `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<Qwen2Config, CheckpointError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_err("reading", &path))?;
    Qwen2Config::from_json_str(&text).map_err(|error| CheckpointError::Config { path, error })
}

/// Writes `dir/config.json` (creating `dir`).
pub fn write_config(dir: &Path, config: &Qwen2Config) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    write_atomic(&dir.join(CONFIG_FILE), config.to_json_string().as_bytes())
}

/// Makes a written checkpoint durable: every file in `dir` and `dir` itself are synced to disk,
/// then its parent folder (which holds the new entry). Until this returns, a host crash may lose
/// the checkpoint; the learner acknowledges stream entries only after it (a SIGKILL loses
/// nothing either way: the page cache survives the process).
pub fn sync_tree(dir: &Path) -> Result<(), CheckpointError> {
    let entries = std::fs::read_dir(dir).map_err(io_err("listing", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err("reading", &path))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io_err("syncing", &path))?;
        }
    }
    sync_dir(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Syncs a folder's entries (a rename or a new file in it) to disk.
fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_err("syncing", dir))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(io_err("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("renaming into", path))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes a serialisable value as pretty JSON, atomically.
pub fn write_json_file<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        format: "JSON",
        message: e.to_string(),
    })?;
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON file into `T`.
pub fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(io_err("reading", path))?;
    serde_json::from_str(&text).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        format: "JSON",
        message: e.to_string(),
    })
}

/// A tensor's bytes, laid out for safetensors.
#[derive(Debug)]
struct HostTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_host(name: &str, tensor: &Tensor) -> Result<HostTensor, CheckpointError> {
    let err = || torch_err(format!("copying {name} to the host"));
    let dtype = Dtype::try_from(tensor.kind()).map_err(err())?;
    let host = tensor.f_detach().and_then(|t| t.f_to(Device::Cpu)).and_then(|t| t.f_contiguous()).map_err(err())?;
    let numel = host.numel();
    let mut data = vec![0u8; numel * host.kind().elt_size_in_bytes()];
    host.f_copy_data_u8(&mut data, numel).map_err(err())?;
    Ok(HostTensor { dtype, shape: host.size().iter().map(|&d| d as usize).collect(), data })
}

/// Writes named tensors as one safetensors file with `format: pt` metadata (transformers
/// refuses files without it) plus `metadata`, atomically.
pub fn write_tensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let host = tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), to_host(name, t)?)))
        .collect::<Result<Vec<_>, CheckpointError>>()?;
    let mut meta: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    meta.insert("format".to_string(), "pt".to_string());
    let tmp = tmp_path(path);
    safetensors::serialize_to_file(host.iter().map(|(n, t)| (n.as_str(), t)), &Some(meta), &tmp)
        .map_err(|e| CheckpointError::Format { path: tmp.clone(), format: "safetensors", message: e.to_string() })?;
    std::fs::rename(&tmp, path).map_err(io_err("renaming into", path))
}

/// The tensors of one safetensors file (on the CPU, in their stored dtype) and its metadata.
pub fn read_tensors(path: &Path) -> Result<(NamedTensors, Metadata), CheckpointError> {
    let bytes = std::fs::read(path).map_err(io_err("reading", path))?;
    let format_err = |e: safetensors::SafeTensorError| CheckpointError::Format {
        path: path.to_path_buf(),
        format: "safetensors",
        message: e.to_string(),
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(format_err)?;
    let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let file = SafeTensors::deserialize(&bytes).map_err(format_err)?;
    let mut out = HashMap::new();
    for (name, view) in file.tensors() {
        let kind = Kind::try_from(view.dtype()).map_err(torch_err(format!("{}: tensor {name}", path.display())))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let numel: i64 = shape.iter().product();
        // libtorch copies numel × element-size bytes from the pointer: check before handing it over.
        if view.data().len() != numel as usize * kind.elt_size_in_bytes() {
            return Err(CheckpointError::Format {
                path: path.to_path_buf(),
                format: "safetensors",
                message: format!(
                    "tensor {name} holds {} bytes, not the {numel} × {:?} its header says",
                    view.data().len(),
                    kind
                ),
            });
        }
        let tensor = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(torch_err(format!("{}: tensor {name}", path.display())))?;
        out.insert(name, tensor);
    }
    Ok((out, metadata))
}

/// The `__metadata__` of a safetensors file, reading only its header.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>, CheckpointError> {
    use std::io::Read;
    let format_err =
        |message: String| CheckpointError::Format { path: path.to_path_buf(), format: "safetensors", message };
    let mut file = std::fs::File::open(path).map_err(io_err("opening", path))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io_err("reading", path))?;
    let len = u64::from_le_bytes(len);
    // safetensors caps headers at 100 MB; anything larger is not a safetensors file.
    if len > 100_000_000 {
        return Err(format_err(format!("header length {len} is implausible")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io_err("reading", path))?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| format_err(e.to_string()))?;
    let metadata = match header.get("__metadata__") {
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| format_err(format!("__metadata__: {e}")))?,
        None => BTreeMap::new(),
    };
    Ok(metadata)
}

/// Every weight tensor of the checkpoint in `dir`, with the file it came from.
fn read_weights(dir: &Path) -> Result<HashMap<String, (Tensor, PathBuf)>, CheckpointError> {
    let single = dir.join(WEIGHTS_FILE);
    let index = dir.join(WEIGHTS_INDEX_FILE);
    let files: Vec<PathBuf> = if single.exists() {
        vec![single]
    } else if index.exists() {
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        let index: Index = read_json_file(&index)?;
        let mut shards: Vec<String> = index.weight_map.into_values().collect();
        shards.sort();
        shards.dedup();
        shards.into_iter().map(|s| dir.join(s)).collect()
    } else {
        return Err(CheckpointError::Io {
            action: "finding weights in",
            path: dir.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE} is there (pytorch_model.bin is not supported: convert it to safetensors)"
                ),
            ),
        });
    };
    let mut out = HashMap::new();
    for file in files {
        let (tensors, _) = read_tensors(&file)?;
        out.extend(tensors.into_iter().map(|(name, t)| (name, (t, file.clone()))));
    }
    Ok(out)
}

/// Number of decoder layers the tensor names in a checkpoint cover.
fn layers_in(names: impl Iterator<Item = impl AsRef<str>>) -> usize {
    names
        .filter_map(|n| n.as_ref().strip_prefix("model.layers.")?.split('.').next()?.parse::<usize>().ok())
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// Fills every variable of `vs` from the checkpoint in `dir`, converting dtypes to the
/// variables' own. Strict both ways; see the module doc.
pub fn load_weights(vs: &VarStore, dir: &Path, config: &Qwen2Config) -> Result<(), CheckpointError> {
    let mut stored = read_weights(dir)?;
    let file_layers = layers_in(stored.keys());
    let where_ = if dir.join(WEIGHTS_FILE).exists() { dir.join(WEIGHTS_FILE) } else { dir.join(WEIGHTS_INDEX_FILE) };
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut var) in variables {
        let Some((tensor, file)) = stored.remove(&name) else {
            let hint = if name == "lm_head.weight" {
                "config.json says tie_word_embeddings = false; if this model ties its LM head to the embeddings, set it to true".to_string()
            } else if name.starts_with("model.layers.") && file_layers < config.num_hidden_layers {
                format!(
                    "the checkpoint's tensors cover {file_layers} layers but config.json says num_hidden_layers = {}",
                    config.num_hidden_layers
                )
            } else {
                "the checkpoint is not a complete Qwen2ForCausalLM".to_string()
            };
            return Err(CheckpointError::MissingTensor { name, file: where_, hint });
        };
        if tensor.size() != var.size() {
            return Err(CheckpointError::Shape { name, file, expected: var.size(), found: tensor.size() });
        }
        tch::no_grad(|| -> Result<(), TchError> {
            let src = tensor.f_to_kind(var.kind())?.f_to(var.device())?;
            var.f_copy_(&src)
        })
        .map_err(torch_err(format!("copying {name} into the model")))?;
    }
    let mut leftover: Vec<(String, PathBuf)> = stored.into_iter().map(|(n, (_, f))| (n, f)).collect();
    leftover.sort();
    for (name, file) in leftover {
        // transformers ignores both: a tied head's duplicate, and RoPE buffers old versions saved.
        if (config.tie_word_embeddings && name == "lm_head.weight") || name.ends_with("rotary_emb.inv_freq") {
            continue;
        }
        let hint = if name.starts_with("model.layers.") && file_layers > config.num_hidden_layers {
            format!(
                "the checkpoint's tensors cover {file_layers} layers but config.json says num_hidden_layers = {}",
                config.num_hidden_layers
            )
        } else {
            "the checkpoint is not a plain Qwen2ForCausalLM".to_string()
        };
        return Err(CheckpointError::UnexpectedTensor { name, file, hint });
    }
    Ok(())
}

/// Writes every variable of `vs` to `dir/model.safetensors` under its own name, with `metadata`.
pub fn save_weights(vs: &VarStore, dir: &Path, metadata: &BTreeMap<String, String>) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(&dir.join(WEIGHTS_FILE), &tensors, metadata)
}

/// Writes `config.json` and `model.safetensors`: a directory transformers loads.
pub fn save_pretrained(dir: &Path, config: &Qwen2Config, vs: &VarStore) -> Result<(), CheckpointError> {
    save_pretrained_with_metadata(dir, config, vs, &BTreeMap::new())
}

/// [`save_pretrained`] with extra safetensors metadata (e.g. the training step).
pub fn save_pretrained_with_metadata(
    dir: &Path,
    config: &Qwen2Config,
    vs: &VarStore,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    // config.json states the dtype the weights are actually stored in.
    let stored_kind = vs.variables().values().next().map(|t| t.kind()).unwrap_or(Kind::Float);
    let config = Qwen2Config { dtype: Some(hf_dtype_name(stored_kind).to_string()), ..config.clone() };
    save_weights(vs, dir, metadata)?;
    write_config(dir, &config)
}

/// transformers' name for a dtype (`torch.float32` → `"float32"`).
pub fn hf_dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        Kind::Double => "float64",
        _ => "float32",
    }
}

/// Builds the model described by `dir/config.json` on `device` with fp32 variables, and fills
/// it from the checkpoint's weights.
pub fn load_pretrained(dir: &Path, device: Device) -> Result<(VarStore, Qwen2ForCausalLM), CheckpointError> {
    let config = read_config(dir)?;
    let vs = VarStore::new(device);
    // The random initialisation is overwritten at once: no seed needed, but its draws must not
    // land inside another thread's seeded initialisation.
    let model = crate::seed::unseeded(|| Qwen2ForCausalLM::new(&vs.root(), &config))?;
    load_weights(&vs, dir, &config)?;
    Ok((vs, model))
}

/// Writes a freshly initialised model (weights seeded by `seed`) to `dir` in Hugging Face
/// layout: the starting point of a run from scratch, e.g. the embedded tiny default.
pub fn init_pretrained(dir: &Path, config: &Qwen2Config, seed: u64) -> Result<(), CheckpointError> {
    let vs = VarStore::new(Device::Cpu);
    crate::seed::with_seed(seed, || Qwen2ForCausalLM::new(&vs.root(), config))?;
    save_pretrained(dir, config, &vs)
}
