//! Checkpoints: config.json from transformers 4.x and 5.x, bit-for-bit reloads, transformers'
//! tensor names, and loud failures that name the tensor at fault.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use agentmill_learner::checkpoint::{self, CONFIG_FILE, CheckpointError, WEIGHTS_FILE};
use agentmill_learner::model::{Qwen2Config, TokenIds};
use agentmill_learner::pack::{LossMask, PackConfig, pack};
use agentmill_learner::schedule::LrSchedule;
use agentmill_learner::train::{Batch, OPTIMIZER_FILE, TRAINER_STATE_FILE, TrainConfig, Trainer};
use serde_json::{Value, json};
use tch::Device;

const CPU: Device = Device::Cpu;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn transformers_4_and_5_configs_parse_to_the_same_config() {
    let v4 = Qwen2Config::from_json_str(&fixture("qwen2.5-0.5b.transformers4.config.json")).expect("4.x config");
    let v5 = Qwen2Config::from_json_str(&fixture("qwen2.5-0.5b.transformers5.config.json")).expect("5.x config");
    assert_eq!(v4, v5);
    assert_eq!(
        v4,
        Qwen2Config {
            bos_token_id: Some(151_643),
            eos_token_id: Some(TokenIds::One(151_643)),
            pad_token_id: None,
            dtype: Some("bfloat16".to_string()),
            ..Qwen2Config::qwen2_5_0_5b()
        },
        "the published config is the shape Qwen2Config::qwen2_5_0_5b() gives"
    );
    assert_eq!(v4.num_parameters(), 494_032_768, "Qwen2.5-0.5B's published size");
    // What we write reads back the same, and carries both generations' spellings.
    let written = v4.to_hf_json();
    assert_eq!(Qwen2Config::from_json_str(&written.to_string()).expect("our config.json"), v4);
    assert_eq!(written["rope_theta"], json!(1_000_000.0));
    assert_eq!(written["rope_parameters"], json!({"rope_theta": 1_000_000.0, "rope_type": "default"}));
    assert_eq!(written["torch_dtype"], written["dtype"]);
}

fn trained(config: &Qwen2Config, steps: usize) -> Trainer {
    let train = TrainConfig { seed: 5, schedule: LrSchedule::with_peak(5e-3, 10), ..TrainConfig::paper(10, CPU) };
    let mut trainer = Trainer::new(config, train, CPU).expect("trainer");
    let docs = common::documents(10, 5..30, config.vocab_size as u32, 3);
    let rows = pack(&docs, PackConfig { seq_len: 32, pad_id: 0, loss_mask: LossMask::None }).expect("pack").rows;
    let batch = Batch::from_rows(&rows, CPU).expect("batch");
    for _ in 0..steps {
        trainer.train_step(std::slice::from_ref(&batch)).expect("step");
    }
    trainer
}

/// transformers' parameter names for a 2-layer Qwen2ForCausalLM.
fn hf_names(tied: bool) -> Vec<String> {
    let mut names = vec!["model.embed_tokens.weight".to_string(), "model.norm.weight".to_string()];
    for i in 0..2 {
        for suffix in [
            "input_layernorm.weight",
            "post_attention_layernorm.weight",
            "self_attn.q_proj.weight",
            "self_attn.q_proj.bias",
            "self_attn.k_proj.weight",
            "self_attn.k_proj.bias",
            "self_attn.v_proj.weight",
            "self_attn.v_proj.bias",
            "self_attn.o_proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ] {
            names.push(format!("model.layers.{i}.{suffix}"));
        }
    }
    if !tied {
        names.push("lm_head.weight".to_string());
    }
    names.sort();
    names
}

#[test]
fn a_checkpoint_reloads_bit_for_bit_with_transformers_names() {
    common::init();
    for tied in [true, false] {
        let config = common::test_config(tied);
        let trainer = trained(&config, 3);
        let dir = tempfile::tempdir().expect("tempdir");
        trainer.save_checkpoint(dir.path(), &json!({"offset": 42})).expect("save");

        let (stored, _) = checkpoint::read_tensors(&dir.path().join(WEIGHTS_FILE)).expect("weights");
        let mut names: Vec<String> = stored.keys().cloned().collect();
        names.sort();
        assert_eq!(names, hf_names(tied), "tensor names must be transformers' (tied: {tied})");

        let (vs, _model) = checkpoint::load_pretrained(dir.path(), CPU).expect("load");
        let original = trainer.var_store().variables();
        assert_eq!(vs.variables().len(), original.len());
        for (name, loaded) in vs.variables() {
            assert!(loaded.equal(&original[&name]), "{name} changed in the round trip");
        }

        let (resumed, position) = Trainer::resume(dir.path(), CPU).expect("resume");
        assert_eq!(position, json!({"offset": 42}));
        assert_eq!(resumed.step(), 3);
        assert_eq!(resumed.tokens_seen(), trainer.tokens_seen());
        assert_eq!(resumed.config(), trainer.config());
        assert_eq!(resumed.optimizer().step_count(), 3);
        let saved: BTreeMap<String, tch::Tensor> = trainer.optimizer().state_tensors().into_iter().collect();
        let restored = resumed.optimizer().state_tensors();
        assert_eq!(restored.len(), saved.len());
        for (name, t) in restored {
            assert!(t.equal(&saved[&name]), "optimizer state {name} changed in the round trip");
        }
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join(CONFIG_FILE);
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    edit(&mut config);
    std::fs::write(&path, config.to_string()).expect("write");
}

fn load_error(dir: &Path) -> String {
    match checkpoint::load_pretrained(dir, CPU) {
        Ok(_) => panic!("{} loaded although it does not match its config", dir.display()),
        Err(e) => {
            eprintln!("refused as expected: {e}");
            e.to_string()
        }
    }
}

#[test]
fn a_mismatched_checkpoint_fails_naming_the_tensor() {
    common::init();
    let config = common::test_config(true);
    let trainer = Trainer::new(&config, TrainConfig::paper(1, CPU), CPU).expect("trainer");
    let original = tempfile::tempdir().expect("tempdir");
    checkpoint::save_pretrained(original.path(), &config, trainer.var_store()).expect("save");
    let copy = |name: &str| {
        let dir = original.path().parent().expect("parent").join(format!("{}-{name}", original.path().display()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in [CONFIG_FILE, WEIGHTS_FILE] {
            std::fs::copy(original.path().join(f), dir.join(f)).expect("copy");
        }
        dir
    };

    let more_layers = copy("layers");
    edit_config(&more_layers, |c| c["num_hidden_layers"] = json!(3));
    let err = load_error(&more_layers);
    assert!(err.contains("has no tensor model.layers.2.input_layernorm.weight"), "{err}");
    assert!(err.contains("cover 2 layers but config.json says num_hidden_layers = 3"), "{err}");

    let untied = copy("untied");
    edit_config(&untied, |c| c["tie_word_embeddings"] = json!(false));
    let err = load_error(&untied);
    assert!(err.contains("has no tensor lm_head.weight") && err.contains("tie_word_embeddings"), "{err}");

    let wider = copy("wider");
    edit_config(&wider, |c| c["intermediate_size"] = json!(200));
    let err = load_error(&wider);
    assert!(err.contains("model.layers.0.mlp.down_proj.weight has shape [64, 176]"), "{err}");
    assert!(err.contains("[64, 200]"), "{err}");

    let fewer_layers = copy("fewer");
    edit_config(&fewer_layers, |c| c["num_hidden_layers"] = json!(1));
    let err = load_error(&fewer_layers);
    assert!(err.contains("tensor model.layers.1.") && err.contains("does not have"), "{err}");

    let not_qwen = copy("llama");
    edit_config(&not_qwen, |c| c["model_type"] = json!("llama"));
    assert!(matches!(checkpoint::load_pretrained(&not_qwen, CPU), Err(CheckpointError::Config { .. })));

    for dir in [more_layers, untied, wider, fewer_layers, not_qwen] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_torn_checkpoint_is_refused_on_resume() {
    common::init();
    let config = common::test_config(true);
    let trainer = trained(&config, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    trainer.save_checkpoint(dir.path(), &json!(null)).expect("save");
    assert!(dir.path().join(OPTIMIZER_FILE).exists());
    // As if the process died after writing new weights but before the new trainer_state.json.
    let state_path = dir.path().join(TRAINER_STATE_FILE);
    let mut state: Value = serde_json::from_str(&std::fs::read_to_string(&state_path).expect("read")).expect("json");
    state["step"] = json!(1);
    std::fs::write(&state_path, state.to_string()).expect("write");
    let err = Trainer::resume(dir.path(), CPU).expect_err("torn checkpoint");
    assert!(err.to_string().contains("torn"), "{err}");
    // No stray temporary files are left behind by a completed save.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bf16_and_sharded_checkpoints_load_into_fp32_variables() {
    common::init();
    let config = common::test_config(false);
    let trainer = trained(&config, 1);
    let variables = trainer.var_store().variables();

    // A bf16 checkpoint, as Qwen2.5 ships: config.json says so, and loading widens to fp32.
    let bf16_dir = tempfile::tempdir().expect("tempdir");
    let mut bf16_vs = tch::nn::VarStore::new(CPU);
    agentmill_learner::model::Qwen2ForCausalLM::new(&bf16_vs.root(), &config).expect("model");
    bf16_vs.copy(trainer.var_store()).expect("copy");
    bf16_vs.bfloat16();
    checkpoint::save_pretrained(bf16_dir.path(), &config, &bf16_vs).expect("save bf16");
    assert_eq!(checkpoint::read_config(bf16_dir.path()).expect("config").dtype.as_deref(), Some("bfloat16"));
    let (vs, _) = checkpoint::load_pretrained(bf16_dir.path(), CPU).expect("load bf16");
    for (name, t) in vs.variables() {
        assert_eq!(t.kind(), tch::Kind::Float, "{name}");
        let rounded = variables[&name].to_kind(tch::Kind::BFloat16).to_kind(tch::Kind::Float);
        assert!(t.equal(&rounded), "{name} is not the bf16 rounding of the original");
    }

    // Sharded weights listed in model.safetensors.index.json, as large checkpoints are saved.
    let sharded = tempfile::tempdir().expect("tempdir");
    checkpoint::write_config(sharded.path(), &config).expect("config");
    let mut names: Vec<String> = variables.keys().cloned().collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    for (i, part) in names.chunks(names.len() / 2 + 1).enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let tensors: Vec<(String, tch::Tensor)> =
            part.iter().map(|n| (n.clone(), variables[n].shallow_clone())).collect();
        checkpoint::write_tensors(&sharded.path().join(&file), &tensors, &BTreeMap::new()).expect("shard");
        for n in part {
            weight_map.insert(n.clone(), json!(file));
        }
    }
    std::fs::write(
        sharded.path().join(checkpoint::WEIGHTS_INDEX_FILE),
        json!({"metadata": {"total_size": 0}, "weight_map": weight_map}).to_string(),
    )
    .expect("index");
    let (vs, _) = checkpoint::load_pretrained(sharded.path(), CPU).expect("load sharded");
    for (name, t) in vs.variables() {
        assert!(t.equal(&variables[&name]), "{name} differs after a sharded load");
    }
}
