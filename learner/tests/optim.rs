//! The whole training step against the reference: transformers' Qwen2ForCausalLM with
//! `torch.optim.AdamW` (PyTorch's default implementation) and `clip_grad_norm_`, from the same
//! weights on the same batch — forward, loss, backward, clipping and the update, step after step.

mod common;

use std::path::Path;

use agentmill_learner::checkpoint;
use agentmill_learner::pack::{Document, LossMask, PackConfig, pack};
use agentmill_learner::schedule::LrSchedule;
use agentmill_learner::train::{Batch, TrainConfig, Trainer};
use tch::{Device, Kind};

const STEPS: usize = 4;
const LR: f64 = 1e-3;

fn run_torch(model_dir: &Path, batch: &Path, out: &Path, config: &TrainConfig) {
    let a = config.adamw;
    let path = |p: &Path| p.display().to_string();
    let args = [
        path(model_dir),
        path(batch),
        path(out),
        "--steps".into(),
        STEPS.to_string(),
        "--lr".into(),
        LR.to_string(),
        "--beta1".into(),
        a.beta1.to_string(),
        "--beta2".into(),
        a.beta2.to_string(),
        "--eps".into(),
        a.eps.to_string(),
        "--weight-decay".into(),
        a.weight_decay.to_string(),
        "--max-grad-norm".into(),
        config.max_grad_norm.to_string(),
    ];
    common::run_parity_script("torch_train_steps.py", &args);
}

#[test]
fn training_steps_match_transformers_with_torch_adamw() {
    common::init();
    for tied in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = common::test_config(tied);
        let mut config = TrainConfig::paper(100, Device::Cpu);
        config.schedule = LrSchedule { peak_lr: LR, warmup_steps: 0, total_steps: 0, final_lr_ratio: 1.0 };
        let mut trainer = Trainer::new(&cfg, config, Device::Cpu).expect("trainer");
        // Fresh biases are zero and norm gains one, which would hide their paths: perturb all.
        agentmill_learner::seed::with_seed(3, || {
            tch::no_grad(|| {
                let mut variables: Vec<_> = trainer.var_store().variables().into_iter().collect();
                variables.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, mut t) in variables {
                    let _ = t.f_add_(&(t.randn_like() * 0.02)).expect("perturb");
                }
            })
        });
        let model_dir = dir.path().join("model");
        checkpoint::save_pretrained(&model_dir, &cfg, trainer.var_store()).expect("save");

        // Rows of one document each (plain causal attention, as transformers runs them).
        let docs: Vec<Document> = common::documents(3, 40..41, cfg.vocab_size as u32, 11);
        let packed = pack(&docs, PackConfig { seq_len: 40, pad_id: 0, loss_mask: LossMask::None }).expect("pack");
        assert_eq!(packed.rows.len(), 3);
        let ids: Vec<Vec<u32>> = docs.iter().map(|d| d.tokens.clone()).collect();
        let batch_path = dir.path().join("batch.json");
        std::fs::write(&batch_path, serde_json::json!({ "input_ids": ids }).to_string()).expect("write batch");
        let batch = Batch::from_rows(&packed.rows, Device::Cpu).expect("batch");

        let ours: Vec<_> =
            (0..STEPS).map(|_| trainer.train_step(std::slice::from_ref(&batch)).expect("train step")).collect();
        let out = dir.path().join("torch");
        run_torch(&model_dir, &batch_path, &out, &config);
        let theirs: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(out.join("steps.json")).expect("steps.json")).expect("json");

        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            let (loss, norm) = (t["loss"].as_f64().expect("loss"), t["grad_norm"].as_f64().expect("norm"));
            eprintln!("tied {tied} step {i}: loss {} vs {loss}, grad norm {} vs {norm}", o.loss, o.grad_norm);
            assert!((o.loss - loss).abs() <= 1e-5 * loss.abs(), "step {i}: loss {} vs torch {loss}", o.loss);
            assert!((o.grad_norm - norm).abs() <= 1e-4 * norm, "step {i}: grad norm {} vs torch {norm}", o.grad_norm);
        }
        assert!(ours[0].clipped, "the test should exercise clipping");
        let (expected, _) = checkpoint::read_tensors(&out.join("weights.safetensors")).expect("weights");
        let variables = trainer.var_store().variables();
        assert_eq!(variables.len(), expected.len(), "the same parameters on both sides");
        let (mut worst, mut worst_mean) = ((0.0, String::new()), (0.0, String::new()));
        for (name, theirs) in &expected {
            let ours = &variables[name];
            let diff = common::max_abs_diff(ours, theirs);
            let mean = (ours - theirs).abs().mean(Kind::Float).double_value(&[]);
            if diff > worst.0 {
                worst = (diff, name.clone());
            }
            if mean > worst_mean.0 {
                worst_mean = (mean, name.clone());
            }
        }
        eprintln!(
            "tied {tied}: max |weights - torch| = {:.3e} ({}), largest mean = {:.3e} ({})",
            worst.0, worst.1, worst_mean.0, worst_mean.1
        );
        // Each step moves a weight by about the learning rate (checked below). A wrong update
        // would be off by that much everywhere: bias correction or clipping by ~LR, weight decay
        // by LR·wd·|w| ≈ 1e-5 over these steps. What remains is fp32 rounding in the gradients
        // (their sums run in other orders), which Adam amplifies only in the few elements whose
        // gradient is about ε: hence a bound on the mean per tensor, and a looser one on the max.
        let (initial, _) = checkpoint::read_tensors(&model_dir.join(checkpoint::WEIGHTS_FILE)).expect("initial");
        for (name, before) in &initial {
            let moved = common::max_abs_diff(&variables[name], before);
            assert!(moved > 0.5 * LR, "{name} moved by {moved} only");
        }
        assert!(
            worst_mean.0 <= 1e-6,
            "tied {tied}: {} differs from torch by {} on average",
            worst_mean.1,
            worst_mean.0
        );
        assert!(worst.0 <= 0.1 * LR, "tied {tied}: {} differs from torch by {}", worst.1, worst.0);
    }
}
