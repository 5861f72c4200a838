//! Section 2: render + tokenize (with the assistant mask) + pack of synthetic env records,
//! against HF `tokenizers`' `encode_batch` in Python over the same texts and tokenizer.json.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use agentmill_learner::pack::{Document, LossMask, PackConfig, pack};
use agentmill_learner::render::{Rendered, Template, render};
use agentmill_learner::tokenize::TextTokenizer;
use agentmill_proto::TrajectoryRecord;
use anyhow::{Context, Result};

use crate::data::{Rng, synthetic_record};
use crate::python::run_python;
use crate::step::ms;

pub(crate) const RECORDS: usize = 200;
pub(crate) const TOKENIZER_VOCAB: usize = 4096;
pub(crate) const PACK_SEQ_LEN: usize = 2048;
pub(crate) const TOKENIZE_ITERS: usize = 5;

pub(crate) fn bench_tokenize(dir: &Path, threads: usize) -> Result<()> {
    println!();
    println!("== 2. render + tokenize (assistant mask) + pack vs HF tokenizers encode_batch (Python) ==");
    let mut rng = Rng(7);
    let records: Vec<TrajectoryRecord> = (0..RECORDS).map(|i| synthetic_record(i, &mut rng)).collect();
    let rendered: Vec<Rendered> =
        records.iter().map(|r| render(r, Template::ChatMlXmlTools).context("record not trainable")).collect::<Result<_>>()?;
    let bytes: usize = rendered.iter().map(|r| r.text.len()).sum();
    let t0 = Instant::now();
    let tok = TextTokenizer::train(rendered.iter().map(|r| r.text.as_str()), TOKENIZER_VOCAB)?;
    let train_time = t0.elapsed();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path)?;
    let texts_path = dir.join("texts.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&texts_path)?);
    for r in &rendered {
        writeln!(f, "{}", serde_json::json!({ "text": r.text }))?;
    }
    f.flush()?;
    drop(f);
    println!(
        "{RECORDS} records, {:.1} KB rendered on average ({:.2} MB in all); tokenizer vocab {} trained in {:.2} s",
        bytes as f64 / RECORDS as f64 / 1024.0,
        bytes as f64 / 1e6,
        tok.vocab_size(),
        train_time.as_secs_f64()
    );

    let pack_config = PackConfig { seq_len: PACK_SEQ_LEN, pad_id: tok.pad_id, loss_mask: LossMask::Assistant };
    let mut best_all = Duration::MAX;
    let mut best_encode = Duration::MAX;
    let mut tokens = 0usize;
    let mut rows = 0usize;
    let mut efficiency = 0.0;
    for _ in 0..TOKENIZE_ITERS {
        let t0 = Instant::now();
        let rendered: Vec<_> =
            records.iter().map(|r| render(r, Template::ChatMlXmlTools).context("record not trainable")).collect::<anyhow::Result<_>>()?;
        let te = Instant::now();
        let encoded = tok.encode_batch_with_mask(&rendered)?;
        let encode = te.elapsed();
        tokens = encoded.iter().map(|(ids, _)| ids.len() - 1).sum(); // without the appended end-of-text, as HF counts them
        let docs: Vec<Document> = encoded.into_iter().map(|(ids, mask)| Document::with_mask(ids, mask)).collect();
        let packed = pack(&docs, pack_config)?;
        let all = t0.elapsed();
        rows = packed.rows.len();
        efficiency = packed.stats.efficiency();
        best_all = best_all.min(all);
        best_encode = best_encode.min(encode);
    }
    let rust_tps = tokens as f64 / best_all.as_secs_f64();
    let rust_encode_tps = tokens as f64 / best_encode.as_secs_f64();

    let py = run_python(
        dir,
        "hf_tokenize.py",
        &[
            "--tokenizer".into(),
            tok_path.display().to_string(),
            "--texts".into(),
            texts_path.display().to_string(),
            "--iters".into(),
            TOKENIZE_ITERS.to_string(),
        ],
        threads,
    )?;
    let py_tps = py["tokens_per_s"].as_f64().context("tokens_per_s")?;
    let py_tokens = py["tokens"].as_u64().unwrap_or(0);
    println!(
        "agentmill  render+encode_batch_with_mask+pack: {tokens} tokens in {} (best of {TOKENIZE_ITERS}) = {:.0} tokens/s, {threads} threads; {rows} rows of {PACK_SEQ_LEN}, packing efficiency {:.3}",
        ms(best_all.as_secs_f64()),
        rust_tps,
        efficiency
    );
    println!(
        "agentmill  encode_batch_with_mask alone: {} = {:.0} tokens/s",
        ms(best_encode.as_secs_f64()),
        rust_encode_tps
    );
    println!(
        "hf python  encode_batch: {py_tokens} tokens in {} (best of {TOKENIZE_ITERS}) = {:.0} tokens/s, RAYON_NUM_THREADS={threads}",
        ms(py["best_s"].as_f64().unwrap_or(f64::NAN)),
        py_tps
    );
    if py_tokens as usize != tokens {
        println!("note: token counts differ (rust {tokens}, python {py_tokens})");
    }
    println!("ratio rust/python (tokens/s, full pipeline vs encode_batch): {:.3}  (higher is better)", rust_tps / py_tps);
    Ok(())
}
