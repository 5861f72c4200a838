//! Parity with the reference implementation: transformers' `Qwen2ForCausalLM` (real torch,
//! real transformers from the repo's .venv). A checkpoint made by transformers loads here with
//! the same logits, and a checkpoint written here loads in transformers with the same logits.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use agentmill_learner::checkpoint;
use agentmill_learner::train::{TrainConfig, Trainer};
use tch::{Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

fn our_logits(model: &agentmill_learner::model::Qwen2ForCausalLM, input_ids: &Tensor, packed_path: bool) -> Tensor {
    let (b, t) = input_ids.size2().expect("2-D input");
    let positions = Tensor::arange(t, (Kind::Int64, Device::Cpu)).unsqueeze(0).expand([b, t], false);
    let docs = Tensor::zeros([b, t], (Kind::Int64, Device::Cpu));
    tch::no_grad(|| {
        model
            .forward(input_ids, &positions, if packed_path { Some(&docs) } else { None })
            .expect("forward")
            .to_kind(Kind::Float)
    })
}

#[test]
fn transformers_checkpoints_load_here_with_the_same_logits() {
    common::init();
    let dir = tempfile::tempdir().expect("tempdir");
    common::run_reference(&["make", dir.path().to_str().expect("utf-8 path")]);
    for variant in ["tied", "untied"] {
        let model_dir = dir.path().join(variant);
        let config = checkpoint::read_config(&model_dir).expect("config.json from transformers parses");
        assert_eq!(config.tie_word_embeddings, variant == "tied");
        assert!(config.num_key_value_heads < config.num_attention_heads, "the reference uses GQA");
        let (vs, model) = checkpoint::load_pretrained(&model_dir, Device::Cpu).expect("transformers checkpoint loads");
        assert_eq!(vs.variables().contains_key("lm_head.weight"), variant == "untied");

        let (reference, _) = checkpoint::read_tensors(&model_dir.join("reference.safetensors")).expect("reference");
        let input_ids = &reference["input_ids"];
        let expected = &reference["logits"];
        // Guard against a vacuous comparison (e.g. all-zero logits on both sides).
        assert!(expected.std(true).double_value(&[]) > 0.1, "reference logits are degenerate");
        for packed_path in [false, true] {
            let diff = common::max_abs_diff(&our_logits(&model, input_ids, packed_path), expected);
            eprintln!("{variant} (document mask: {packed_path}): max |logits - transformers| = {diff:.3e}");
            assert!(diff <= TOLERANCE, "{variant}: logits differ from transformers by {diff}");
        }
    }
}

/// Like the reference script: fresh models have zero biases, unit norm gains and tiny weights,
/// which would hide errors in the bias, norm and position paths; make every tensor matter.
fn randomise(vs: &tch::nn::VarStore, seed: u64) {
    agentmill_learner::seed::with_seed(seed, || {
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                let noise = Tensor::randn(t.size(), (Kind::Float, Device::Cpu));
                let value = if name.ends_with("norm.weight") {
                    noise * 0.1 + 1.0
                } else if name.ends_with(".bias") {
                    noise * 0.1
                } else {
                    noise * 0.08
                };
                t.copy_(&value);
            }
        })
    });
}

#[test]
fn checkpoints_written_here_load_in_transformers_with_the_same_logits() {
    common::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let input_ids = Tensor::from_slice(&(0..34).map(|i| (i * 37 + 11) % 512).collect::<Vec<i64>>()).view([2, 17]);
    let mut model_dirs = Vec::new();
    let mut ours = Vec::new();
    for tied in [true, false] {
        let config = common::test_config(tied);
        let trainer = Trainer::new(&config, TrainConfig::paper(1, Device::Cpu), Device::Cpu).expect("trainer");
        randomise(trainer.var_store(), if tied { 1 } else { 2 });
        let model_dir = dir.path().join(if tied { "tied" } else { "untied" });
        checkpoint::save_pretrained(&model_dir, &config, trainer.var_store()).expect("save");
        ours.push(our_logits(trainer.model(), &input_ids, false));
        model_dirs.push(model_dir);
    }
    let inputs = dir.path().join("inputs.safetensors");
    checkpoint::write_tensors(&inputs, &[("input_ids".to_string(), input_ids)], &BTreeMap::new()).expect("inputs");
    let mut args = vec!["logits", inputs.to_str().expect("utf-8")];
    args.extend(model_dirs.iter().map(|d| d.to_str().expect("utf-8")));
    common::run_reference(&args);
    for (model_dir, ours) in model_dirs.iter().zip(&ours) {
        let (theirs, _) = checkpoint::read_tensors(&model_dir.join("transformers_logits.safetensors")).expect("logits");
        let diff = common::max_abs_diff(ours, &theirs["logits"]);
        let name = Path::new(model_dir).file_name().and_then(|n| n.to_str()).unwrap_or("?");
        eprintln!("{name}: max |ours - transformers(our checkpoint)| = {diff:.3e}");
        assert!(diff <= TOLERANCE, "{name}: transformers computes different logits from our checkpoint ({diff})");
    }
}
