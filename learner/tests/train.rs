//! The training core on real libtorch (CPU): packing isolation, the loss mask, overfitting,
//! gradient accumulation, resume equivalence and the bf16 mixed-precision path.

mod common;

use std::time::Instant;

use agentmill_learner::model::{DocumentAttention, Qwen2Config};
use agentmill_learner::pack::{Document, LossMask, PAD_DOC_ID, PackConfig, PackedRow, pack};
use agentmill_learner::schedule::LrSchedule;
use agentmill_learner::train::{Batch, MemoryPlan, Precision, TrainConfig, Trainer};
use serde_json::json;
use tch::{Device, Kind};

const CPU: Device = Device::Cpu;

fn train_config(peak_lr: f64, steps: u64) -> TrainConfig {
    TrainConfig { seed: 17, schedule: LrSchedule::with_peak(peak_lr, steps), ..TrainConfig::paper(steps, CPU) }
}

fn cfg(seq_len: usize, loss_mask: LossMask) -> PackConfig {
    PackConfig { seq_len, pad_id: 0, loss_mask }
}

/// `(start, len)` of each document's span in a packed row.
fn spans(row: &PackedRow) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, &d) in row.doc_ids.iter().enumerate() {
        if d == PAD_DOC_ID {
            continue;
        }
        match out.last_mut() {
            Some((start, len)) if row.doc_ids[*start] == d => *len += 1,
            _ => out.push((i, 1)),
        }
    }
    out
}

/// Both ways of keeping packed documents apart (attention over each document's span, the
/// default, and the block-diagonal mask) give every document the logits it has alone.
#[test]
fn packed_documents_give_the_logits_they_give_alone() {
    common::init();
    let mut trainer = Trainer::new(&common::test_config(false), train_config(1e-3, 10), CPU).expect("trainer");
    let docs =
        common::documents(9, 2..8, 512, 99).into_iter().chain(common::documents(4, 9..20, 512, 5)).collect::<Vec<_>>();
    let packed = pack(&docs, cfg(24, LossMask::None)).expect("pack");
    assert!(packed.rows.len() >= 2, "the test needs several rows");
    assert!(packed.rows.iter().any(|r| spans(r).len() >= 3), "the test needs rows holding several documents");
    assert!(packed.rows.iter().any(|r| r.doc_ids.contains(&PAD_DOC_ID)), "the test needs a padded row");
    let batch = Batch::from_rows(&packed.rows, CPU).expect("batch");
    let mut by_way = Vec::new();
    for way in [DocumentAttention::Spans, DocumentAttention::Mask] {
        trainer.set_document_attention(way);
        let logits =
            tch::no_grad(|| trainer.model().forward(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids)))
                .expect("packed forward")
                .to_kind(Kind::Float);
        let mut worst = 0.0f64;
        let mut compared = 0;
        for (r, row) in packed.rows.iter().enumerate() {
            for (start, len) in spans(row) {
                let ids = &row.input_ids[start..start + len];
                let alone = tch::no_grad(|| trainer.model().forward_single(ids, CPU)).expect("single forward");
                let in_row = logits.get(r as i64).narrow(0, start as i64, len as i64);
                worst = worst.max(common::max_abs_diff(&in_row, &alone));
                compared += 1;
            }
        }
        eprintln!("{way:?}: {compared} documents in {} rows: max |packed - alone| = {worst:.3e}", packed.rows.len());
        assert!(worst <= 1e-5, "{way:?}: a packed document's logits depend on its neighbours ({worst})");
        by_way.push(logits);
    }
    // Padding too: spans give it the same (finite) states as the mask.
    let diff = common::max_abs_diff(&by_way[0], &by_way[1]);
    assert!(diff <= 1e-5, "spans and mask disagree by {diff}");

    // Control: without document ids the same rows do leak across documents.
    let leaky = tch::no_grad(|| trainer.model().forward(&batch.input_ids, &batch.position_ids, None))
        .expect("causal forward")
        .to_kind(Kind::Float);
    assert!(common::max_abs_diff(&leaky, &by_way[0]) > 1e-3, "the documents made no difference; the test proves nothing");
}

/// A training step through per-document spans has the mask's loss and gradients.
#[test]
fn document_spans_train_as_the_mask_does() {
    common::init();
    let docs = common::documents(14, 3..40, 512, 61);
    let rows = pack(&docs, cfg(64, LossMask::None)).expect("pack").rows;
    assert!(rows.iter().any(|r| spans(r).len() >= 2), "shared rows are exercised");
    let train = TrainConfig { max_grad_norm: 0.0, ..train_config(1e-3, 10) };
    let step = |way: DocumentAttention| {
        let mut t = Trainer::new(&common::test_config(true), train, CPU).expect("trainer");
        t.set_document_attention(way);
        let stats = t.train_step(&[Batch::from_rows(&rows, CPU).expect("batch")]).expect("step");
        let grads: Vec<(String, tch::Tensor)> =
            t.var_store().variables().into_iter().map(|(n, v)| (n, v.grad().copy())).collect();
        (stats, grads)
    };
    let (a, grads_a) = step(DocumentAttention::Spans);
    let (b, grads_b) = step(DocumentAttention::Mask);
    assert!((a.loss - b.loss).abs() <= 1e-6 * b.loss, "loss {} vs {}", a.loss, b.loss);
    let grads_b: std::collections::HashMap<_, _> = grads_b.into_iter().collect();
    for (name, ga) in &grads_a {
        let gb = &grads_b[name];
        let scale = gb.abs().max().double_value(&[]);
        let diff = common::max_abs_diff(ga, gb);
        assert!(scale > 0.0, "{name} has no gradient");
        assert!(diff <= 1e-5 * scale + 1e-9, "{name}'s gradient differs by {diff} (largest {scale})");
    }
}

#[test]
fn assistant_loss_mask_trains_exactly_the_marked_tokens() {
    common::init();
    // Tokens >= 400 play the assistant; the mask marks exactly those, so the expected targets
    // can be recomputed from the row contents without trusting the packer's labels.
    let mut docs = Vec::new();
    for (d, doc) in common::documents(6, 10..30, 512, 3).into_iter().enumerate() {
        let tokens: Vec<u32> = doc
            .tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| if (i / 4 + d) % 2 == 0 { t % 400 } else { 400 + t % 112 })
            .collect();
        let mask = tokens.iter().map(|&t| t >= 400).collect();
        docs.push(Document::with_mask(tokens, mask));
    }
    let packed = pack(&docs, cfg(40, LossMask::Assistant)).expect("pack");
    let batch = Batch::from_rows(&packed.rows, CPU).expect("batch");
    let trainer = Trainer::new(&common::test_config(true), train_config(1e-3, 10), CPU).expect("trainer");

    let logits = tch::no_grad(|| trainer.model().forward(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids)))
        .expect("forward")
        .to_kind(Kind::Double);
    let log_probs = logits.log_softmax(-1, Kind::Double);
    let (mut total, mut count) = (0.0f64, 0u64);
    for (r, row) in packed.rows.iter().enumerate() {
        for t in 0..row.input_ids.len() - 1 {
            let same_doc = row.doc_ids[t] != PAD_DOC_ID && row.doc_ids[t] == row.doc_ids[t + 1];
            if same_doc && row.input_ids[t + 1] >= 400 {
                total -= log_probs.double_value(&[r as i64, t as i64, row.input_ids[t + 1]]);
                count += 1;
            }
        }
    }
    let marked_not_first: u64 =
        docs.iter().map(|d| d.loss_mask.as_ref().map_or(0, |m| m.iter().skip(1).filter(|&&b| b).count() as u64)).sum();
    assert_eq!(count, marked_not_first, "every marked token after a document's first is a target");
    assert_eq!(batch.target_tokens(), count, "the batch trains exactly the marked tokens");
    let manual = total / count as f64;
    let ours = trainer.evaluate(&batch).expect("loss");
    eprintln!("assistant mask: {count} targets, loss {ours:.6} vs manual {manual:.6}");
    assert!((ours - manual).abs() <= 1e-5 * manual, "loss {ours} != manual {manual}");

    // With loss_mask = none the same documents train on every next token.
    let all = pack(&docs, cfg(40, LossMask::None)).expect("pack");
    let all_targets: u64 = docs.iter().map(|d| d.tokens.len() as u64 - 1).sum();
    assert_eq!(all.stats.target_tokens, all_targets);
}

#[test]
fn a_small_corpus_is_overfit() {
    common::init();
    let started = Instant::now();
    let docs = common::documents(8, 16..40, 512, 11);
    let packed = pack(&docs, cfg(64, LossMask::None)).expect("pack");
    let batch = Batch::from_rows(&packed.rows, CPU).expect("batch");
    let steps = 150;
    let mut trainer = Trainer::new(&common::test_config(true), train_config(3e-3, steps), CPU).expect("trainer");
    let mut losses = Vec::new();
    for _ in 0..steps {
        let stats = trainer.train_step(std::slice::from_ref(&batch)).expect("step");
        assert!(stats.grad_norm.is_finite() && stats.grad_norm > 0.0);
        losses.push(stats.loss);
    }
    let (first, last) = (losses[0], *losses.last().expect("losses"));
    eprintln!(
        "overfit: {} rows x 64, {steps} steps in {:.2?}: loss {first:.4} -> {last:.4} ({:.1}% of start), efficiency {:.3}",
        packed.rows.len(),
        started.elapsed(),
        100.0 * last / first,
        packed.stats.efficiency()
    );
    assert!((first - (512f64).ln()).abs() < 0.5, "a fresh model starts near ln(vocab): {first}");
    assert!(last < 0.3 * first, "loss fell only from {first} to {last}");
    assert_eq!(trainer.step(), steps);
}

/// Two micro-batches per step, rows cycling through a fixed corpus: the data of step `s`.
fn micro_batches(rows: &[PackedRow], step: usize) -> Vec<Batch> {
    (0..2)
        .map(|m| {
            let start = (step * 4 + m * 2) % (rows.len() - 1);
            Batch::from_rows(&rows[start..start + 2], CPU).expect("batch")
        })
        .collect()
}

#[test]
fn resuming_from_a_checkpoint_continues_the_same_loss_curve() {
    common::init();
    let steps = 16usize;
    let docs = common::documents(60, 4..40, 512, 23);
    let rows = pack(&docs, cfg(32, LossMask::None)).expect("pack").rows;
    let config = common::test_config(false);
    let train = train_config(2e-3, steps as u64);

    let mut full = Trainer::new(&config, train, CPU).expect("trainer");
    let full_losses: Vec<f64> =
        (0..steps).map(|s| full.train_step(&micro_batches(&rows, s)).expect("step").loss).collect();

    let mut first = Trainer::new(&config, train, CPU).expect("trainer");
    let mut split_losses: Vec<f64> =
        (0..steps / 2).map(|s| first.train_step(&micro_batches(&rows, s)).expect("step").loss).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    first.save_checkpoint(dir.path(), &json!({"next_step": steps / 2, "stream": "1700000000000-0"})).expect("save");
    drop(first);

    let (mut resumed, position) = Trainer::resume(dir.path(), CPU).expect("resume");
    assert_eq!(position, json!({"next_step": steps / 2, "stream": "1700000000000-0"}));
    assert_eq!(resumed.step(), (steps / 2) as u64);
    let next = position["next_step"].as_u64().expect("next_step") as usize;
    split_losses.extend((next..steps).map(|s| resumed.train_step(&micro_batches(&rows, s)).expect("step").loss));

    let worst_loss = full_losses.iter().zip(&split_losses).map(|(a, b)| ((a - b) / a).abs()).fold(0.0f64, f64::max);
    let full_vars = full.var_store().variables();
    let mut worst_weight = 0.0f64;
    for (name, ours) in resumed.var_store().variables() {
        worst_weight = worst_weight.max(common::max_abs_diff(&ours, &full_vars[&name]));
    }
    eprintln!(
        "resume: losses {:.4} -> {:.4}; max relative loss diff {worst_loss:.3e}, max weight diff {worst_weight:.3e}",
        full_losses[0],
        full_losses[steps - 1]
    );
    assert!(worst_loss <= 1e-5, "resumed losses diverge: {full_losses:?} vs {split_losses:?}");
    assert!(worst_weight <= 1e-6, "final weights differ by {worst_weight}");
    assert!(full_losses[steps - 1] < full_losses[0], "the curve should fall");
}

#[test]
fn gradient_accumulation_equals_one_big_batch() {
    common::init();
    let docs = common::documents(20, 4..30, 512, 31);
    let rows = pack(&docs, cfg(32, LossMask::None)).expect("pack").rows;
    assert!(rows.len() >= 4);
    let config = common::test_config(true);
    let mut whole = Trainer::new(&config, train_config(1e-3, 4), CPU).expect("trainer");
    let mut split = Trainer::new(&config, train_config(1e-3, 4), CPU).expect("trainer");
    let a = whole.train_step(&[Batch::from_rows(&rows[..4], CPU).expect("batch")]).expect("step");
    let parts = [Batch::from_rows(&rows[..1], CPU).expect("batch"), Batch::from_rows(&rows[1..4], CPU).expect("batch")];
    let b = split.train_step(&parts).expect("step");
    assert_eq!(a.target_tokens, b.target_tokens);
    assert!((a.loss - b.loss).abs() <= 1e-6 * a.loss, "loss {} vs {}", a.loss, b.loss);
    assert!((a.grad_norm - b.grad_norm).abs() <= 1e-5 * a.grad_norm, "grad norm {} vs {}", a.grad_norm, b.grad_norm);
    // Adam's first update is about lr·sign(g): where a gradient is ~0, summation-order noise
    // can flip its sign, so the weights agree to a small fraction of the learning rate (1e-3),
    // not to float epsilon. The gradient norm above is the exact check.
    let whole_vars = whole.var_store().variables();
    for (name, t) in split.var_store().variables() {
        let diff = common::max_abs_diff(&t, &whole_vars[&name]);
        assert!(diff <= 1e-5, "{name} differs by {diff} after one step");
    }
}

#[test]
fn gradients_are_clipped_to_the_configured_norm() {
    common::init();
    let docs = common::documents(8, 10..30, 512, 41);
    let batch = Batch::from_rows(&pack(&docs, cfg(32, LossMask::None)).expect("pack").rows, CPU).expect("batch");
    let train = TrainConfig { max_grad_norm: 1e-3, ..train_config(1e-3, 4) };
    let mut trainer = Trainer::new(&common::test_config(true), train, CPU).expect("trainer");
    let stats = trainer.train_step(std::slice::from_ref(&batch)).expect("step");
    assert!(stats.clipped && stats.grad_norm > 1e-3, "{stats:?}");
    // Weight decay applies to matrices only.
    let decayed = trainer.optimizer().decayed_parameters();
    assert!(decayed.contains(&"model.layers.0.self_attn.q_proj.weight"));
    assert!(decayed.contains(&"model.embed_tokens.weight"));
    assert!(!decayed.iter().any(|n| n.ends_with(".bias") || n.ends_with("norm.weight")), "{decayed:?}");
}

#[test]
fn bf16_mixed_precision_tracks_fp32() {
    common::init();
    let docs = common::documents(8, 16..40, 512, 13);
    let batch = Batch::from_rows(&pack(&docs, cfg(64, LossMask::None)).expect("pack").rows, CPU).expect("batch");
    let config = common::test_config(true);
    let fp32 = Trainer::new(&config, train_config(3e-3, 20), CPU).expect("trainer");
    let train = TrainConfig { precision: Precision::Bf16Mixed, ..train_config(3e-3, 20) };
    let mut bf16 = Trainer::new(&config, train, CPU).expect("trainer");
    assert_eq!(bf16.model().compute_kind(), Kind::BFloat16);
    let (a, b) = (fp32.evaluate(&batch).expect("loss"), bf16.evaluate(&batch).expect("loss"));
    assert!((a - b).abs() < 0.02 * a, "bf16 loss {b} vs fp32 {a}");
    let logits = tch::no_grad(|| bf16.model().forward(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids)))
        .expect("forward");
    assert_eq!(logits.kind(), Kind::BFloat16);
    let mut last = f64::INFINITY;
    for _ in 0..20 {
        last = bf16.train_step(std::slice::from_ref(&batch)).expect("bf16 step").loss;
    }
    assert!(last < 0.8 * a, "bf16 training did not learn: {a} -> {last}");
    assert!(bf16.var_store().variables().values().all(|t| t.kind() == Kind::Float), "master weights stay fp32");
}

#[test]
fn bad_batches_are_refused_before_touching_the_model() {
    common::init();
    let mut trainer =
        Trainer::new(&Qwen2Config { vocab_size: 64, ..common::test_config(true) }, train_config(1e-3, 4), CPU)
            .expect("trainer");
    let docs = vec![Document::new(vec![1, 2, 300])];
    let batch = Batch::from_rows(&pack(&docs, cfg(8, LossMask::None)).expect("pack").rows, CPU).expect("batch");
    let err = trainer.train_step(&[batch]).expect_err("token 300 >= vocab 64");
    assert!(err.to_string().contains("outside the model's vocabulary of 64"), "{err}");
    let lone = vec![Document::new(vec![5])];
    let batch = Batch::from_rows(&pack(&lone, cfg(8, LossMask::None)).expect("pack").rows, CPU).expect("batch");
    let err = trainer.train_step(&[batch]).expect_err("no targets");
    assert!(err.to_string().contains("no micro-batch has a target token"), "{err}");
    assert!(trainer.train_step(&[]).is_err());
    assert_eq!(trainer.step(), 0);
}

/// The loss by source: each group's mean over its own target tokens, equal to that document's
/// loss measured alone with the same weights, whether it has a row to itself or shares one.
#[test]
fn the_loss_is_reported_by_group_as_each_documents_own_loss() {
    common::init();
    let docs = common::documents(4, 20..40, 512, 29);
    // Rows: doc 0 alone (group 0), doc 1 alone (group 1), docs 2 and 3 sharing a row (groups 2, 0).
    let alone = |d: &Document| pack(std::slice::from_ref(d), cfg(96, LossMask::None)).expect("pack").rows;
    let shared = pack(&docs[2..4], cfg(96, LossMask::None)).expect("pack").rows;
    assert_eq!(shared.len(), 1, "two documents of at most 40 tokens share a row of 96");
    let (r0, r1) = (alone(&docs[0]), alone(&docs[1]));
    let rows: Vec<PackedRow> = [r0.clone(), r1.clone(), shared.clone()].concat();
    let mut trainer = Trainer::new(&common::test_config(true), train_config(1e-3, 10), CPU).expect("trainer");
    // Each document's loss alone, before the step (the step reports the loss before its update).
    let own = |d: &Document| trainer.evaluate(&Batch::from_rows(&alone(d), CPU).expect("batch")).expect("loss");
    let (l0, l1, l2, l3) = (own(&docs[0]), own(&docs[1]), own(&docs[2]), own(&docs[3]));
    let n = |d: &Document| d.tokens.len() as f64 - 1.0;
    let grouped = Batch::from_rows_grouped(&rows, &[vec![0], vec![1], vec![2, 0]], CPU).expect("grouped batch");
    let stats = trainer.train_step(&[grouped]).expect("step");
    let [g0, g1, g2] = stats.loss_by_group.map(|l| l.expect("every group has targets"));
    let want0 = (l0 * n(&docs[0]) + l3 * n(&docs[3])) / (n(&docs[0]) + n(&docs[3]));
    for (got, want, what) in [(g0, want0, "group 0: docs 0 and 3"), (g1, l1, "group 1: doc 1"), (g2, l2, "group 2: doc 2")] {
        assert!((got - want).abs() < 1e-5, "{what}: {got} != {want}");
    }
    let total: f64 = docs.iter().map(n).sum();
    let mean = (l0 * n(&docs[0]) + l1 * n(&docs[1]) + l2 * n(&docs[2]) + l3 * n(&docs[3])) / total;
    assert!((stats.loss - mean).abs() < 1e-5, "the step's loss is the groups' weighted mean: {} != {mean}", stats.loss);
    // Ungrouped batches report none, and a document without a group is refused.
    let stats = trainer.train_step(&[Batch::from_rows(&rows, CPU).expect("batch")]).expect("step");
    assert_eq!(stats.loss_by_group, [None; 3]);
    assert!(Batch::from_rows_grouped(&rows, &[vec![0], vec![1], vec![2]], CPU).is_err(), "row 2 has two documents");
}

/// Activation checkpointing and the chunked loss change where activations live, not what a
/// step computes: the loss, the loss by group and every parameter's gradient are the plain
/// step's (tied and untied heads, packed rows with padding, two micro-batches, fp32 and bf16),
/// and training on goes down the same curve.
#[test]
fn memory_plans_compute_the_plain_steps_gradients() {
    common::init();
    let docs = common::documents(12, 5..50, 512, 53);
    let rows = pack(&docs, cfg(64, LossMask::None)).expect("pack").rows;
    assert!(rows.len() >= 4 && rows.iter().any(|r| r.doc_ids.contains(&PAD_DOC_ID)), "padding is exercised");
    assert!(rows.iter().any(|r| r.doc_ids.iter().max() > Some(&0)), "shared rows are exercised");
    let groups: Vec<Vec<usize>> =
        rows.iter().map(|r| (0..=*r.doc_ids.iter().max().unwrap_or(&0)).map(|d| d as usize % 3).collect()).collect();
    let batches = || {
        let half = rows.len() / 2;
        vec![
            Batch::from_rows_grouped(&rows[..half], &groups[..half], CPU).expect("batch"),
            Batch::from_rows_grouped(&rows[half..], &groups[half..], CPU).expect("batch"),
        ]
    };
    let plans = [
        MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: 0 },
        // 50 does not divide the 64-token rows: slices cross row boundaries.
        MemoryPlan { activation_checkpointing: false, loss_chunk_tokens: 50 },
        MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: 7 },
    ];
    for (tied, precision) in [(true, Precision::Fp32), (false, Precision::Fp32), (false, Precision::Bf16Mixed)] {
        // No clipping, so each variable's gradient after the step is the raw gradient.
        let train = TrainConfig { max_grad_norm: 0.0, precision, ..train_config(1e-3, 10) };
        let trainer = |plan: MemoryPlan| {
            let mut t = Trainer::new(&common::test_config(tied), train, CPU).expect("trainer");
            t.set_memory_plan(plan);
            t
        };
        let mut plain = trainer(MemoryPlan::default());
        let reference = plain.train_step(&batches()).expect("plain step");
        let reference_grads: Vec<(String, tch::Tensor)> =
            plain.var_store().variables().into_iter().map(|(name, v)| (name, v.grad().copy())).collect();
        let mut reference_curve = vec![reference.loss];
        for _ in 0..4 {
            reference_curve.push(plain.train_step(&batches()).expect("plain step").loss);
        }
        for plan in plans {
            let what = format!("{plan:?}, tied {tied}, {precision:?}");
            let mut t = trainer(plan);
            let stats = t.train_step(&batches()).expect("step");
            assert_eq!(stats.target_tokens, reference.target_tokens);
            assert!((stats.loss - reference.loss).abs() <= 1e-6 * reference.loss, "{what}: loss {} vs {}", stats.loss, reference.loss);
            for (g, (a, b)) in stats.loss_by_group.iter().zip(&reference.loss_by_group).enumerate() {
                let (a, b) = (a.expect("group has targets"), b.expect("group has targets"));
                assert!((a - b).abs() <= 1e-5 * b, "{what}: group {g} loss {a} vs {b}");
            }
            let vars = t.var_store().variables();
            for (name, want) in &reference_grads {
                let got = vars[name].grad();
                let scale = want.abs().max().double_value(&[]);
                let diff = common::max_abs_diff(&got, want);
                assert!(scale > 0.0, "{what}: {name} has no gradient in the plain step");
                // bf16 products round to 8 bits of mantissa: slicing the head's tokens changes
                // which partial sums are rounded (and sums them in fp32), so bf16 agrees to its
                // rounding, fp32 to float noise.
                let tolerance = if precision == Precision::Bf16Mixed { 1e-2 } else { 1e-5 };
                assert!(diff <= tolerance * scale + 1e-9, "{what}: {name}'s gradient differs by {diff} (largest {scale})");
            }
            let mut curve = vec![stats.loss];
            for _ in 0..4 {
                curve.push(t.train_step(&batches()).expect("step").loss);
            }
            for (step, (a, b)) in curve.iter().zip(&reference_curve).enumerate() {
                assert!((a - b).abs() <= 1e-4 * b, "{what}: step {step} loss {a} vs {b}");
            }
            assert!(curve[4] < curve[0], "{what}: the curve should fall: {curve:?}");
        }
    }
}
