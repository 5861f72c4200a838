//! The offline tools as a user runs them: `tokenizer train`, `export` (Megatron `.bin/.idx`
//! read back by a Python reader that follows Megatron's own, Parquet read back with the parquet
//! crate's record reader) and `inspect-record`.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentmill_learner::export::ExportReport;
use agentmill_learner::pack::IGNORE_INDEX;
use agentmill_learner::render::{Template, render};
use agentmill_learner::tokenize::TextTokenizer;
use agentmill_proto::{ExitReason, TrajectoryRecord};
use agentmill_testkit::{TestRedis, unique};
use common::{ctx_record, env_record};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agentmill-learner"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.env("RUST_LOG", "warn").output().expect("run agentmill-learner");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn corpus() -> Vec<TrajectoryRecord> {
    let mut records = Vec::new();
    for i in 0..8 {
        records.push(ctx_record(&format!("ctx-{i}"), &common::code_text(i, 20 + 25 * i as usize)));
    }
    records.push(env_record("pass-0", 40, 2, ExitReason::Submitted, true));
    records.push(env_record("fail-0", 41, 3, ExitReason::MaxSteps, false));
    records.push(env_record("infra-0", 42, 1, ExitReason::SandboxError, false));
    records.push(ctx_record("ctx-3", "a second publication of ctx-3 is not exported again"));
    records
}

fn write_jsonl(path: &Path, records: &[TrajectoryRecord]) {
    let mut f = File::create(path).expect("create");
    for r in records {
        writeln!(f, "{}", serde_json::to_string(r).expect("serialise")).expect("write");
    }
}

/// The documents the exporter must write, in order: each trainable record once (first
/// publication), tokenized with its end-of-text, passing episodes three times (the paper's mix).
fn expected_documents(records: &[TrajectoryRecord], tok: &TextTokenizer) -> Vec<(String, Vec<i64>)> {
    let mut seen = std::collections::HashSet::new();
    let mut docs = Vec::new();
    for r in records {
        if !seen.insert(r.record_id.clone()) {
            continue;
        }
        let Some(rendered) = render(r, Template::default()) else { continue };
        let (ids, _) = tok.encode_with_mask(&rendered).expect("encode");
        let copies = if r.resolved() { 3 } else { 1 };
        for _ in 0..copies {
            docs.push((r.record_id.clone(), ids.iter().map(|&t| i64::from(t)).collect()));
        }
    }
    docs
}

/// Sequences of a Megatron dataset, read by tests/export/read_megatron.py.
fn read_megatron(prefix: &Path) -> (String, Vec<Vec<i64>>, Vec<i64>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export/read_megatron.py");
    let out = Command::new(common::python()).arg(&script).arg(prefix).output().expect("run the Python reader");
    assert!(out.status.success(), "read_megatron.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from the reader");
    let seqs = serde_json::from_value(v["sequences"].clone()).expect("sequences");
    let docs = serde_json::from_value(v["document_indices"].clone()).expect("document indices");
    (v["dtype"].as_str().unwrap_or_default().to_string(), seqs, docs)
}

/// Rows of a Parquet file as column name → value (lists of ints, or text).
fn read_parquet(path: &Path) -> Vec<std::collections::BTreeMap<String, serde_json::Value>> {
    let reader = SerializedFileReader::new(File::open(path).expect("open parquet")).expect("a parquet file");
    reader
        .get_row_iter(None)
        .expect("rows")
        .map(|row| {
            row.expect("a row")
                .get_column_iter()
                .map(|(name, field)| {
                    let value = match field {
                        Field::ListInternal(list) => serde_json::Value::from(
                            list.elements()
                                .iter()
                                .map(|f| match f {
                                    Field::Int(v) => i64::from(*v),
                                    other => panic!("{name}: element {other:?} is not an int32"),
                                })
                                .collect::<Vec<_>>(),
                        ),
                        Field::Str(s) => serde_json::Value::from(s.clone()),
                        other => panic!("{name}: unexpected {other:?}"),
                    };
                    (name.clone(), value)
                })
                .collect()
        })
        .collect()
}

fn ints(v: &serde_json::Value) -> Vec<i64> {
    serde_json::from_value(v.clone()).expect("a list of ints")
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    records: PathBuf,
    tokenizer: PathBuf,
    corpus: Vec<TrajectoryRecord>,
}

impl Setup {
    /// `agentmill-learner export` of the corpus file with its tokenizer into `out_dir`, plus `args`.
    fn export(&self, out_dir: &Path, args: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.arg("export").args(args).arg("--input").arg(&self.records).arg("--tokenizer").arg(&self.tokenizer).arg("--out").arg(out_dir);
        cmd
    }
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let corpus = corpus();
    let records = root.join("records.jsonl");
    write_jsonl(&records, &corpus);
    let tokenizer = root.join("tokenizer.json");
    let out = run(bin()
        .args(["tokenizer", "train", "--vocab", "400"])
        .arg("--input")
        .arg(&records)
        .arg("--out")
        .arg(&tokenizer));
    assert!(out.contains("learned from 12 records"), "{out}");
    Setup { _dir: dir, root, records, tokenizer, corpus }
}

#[test]
fn packed_export_round_trips_through_megatrons_reader_and_parquet() {
    let s = setup();
    let out_dir = s.root.join("packed");
    let stdout = run(&mut s.export(&out_dir, &["--layout", "packed", "--seq-len", "64", "--prefix", "p"]));
    assert!(stdout.contains("exported 10 of 12 records"), "{stdout}");
    let report: ExportReport =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("p.json")).expect("manifest")).expect("parses");
    assert_eq!((report.skipped_infra, report.duplicates, report.shards.len()), (1, 1, 1));

    let tok = TextTokenizer::from_file(&s.tokenizer).expect("tokenizer");
    let want = expected_documents(&s.corpus, &tok);
    let (dtype, rows, doc_index) = read_megatron(&out_dir.join("p_00000"));
    assert_eq!(dtype, "uint16", "Megatron's choice below 65,500 ids");
    assert!(rows.iter().all(|r| r.len() == 64), "every packed row has seq_len tokens");
    assert_eq!(doc_index, (0..=rows.len() as i64).collect::<Vec<_>>(), "one document per row");

    let table = read_parquet(&out_dir.join("p_00000.parquet"));
    assert_eq!(table.len(), rows.len());
    // Cut every row into segments where positions restart: documents (or chunks of longer
    // ones), then the padding, which looks like a segment of end-of-text tokens with no label.
    let eos = i64::from(tok.eos_id);
    let mut segments: Vec<(Vec<i64>, bool)> = Vec::new();
    for (row, megatron_row) in table.iter().zip(&rows) {
        let (ids, pos, labels) = (ints(&row["input_ids"]), ints(&row["position_ids"]), ints(&row["labels"]));
        assert_eq!(&ids, megatron_row, "the Megatron and Parquet writers disagree on a row");
        let starts: Vec<usize> = (0..ids.len()).filter(|&i| pos[i] == 0).collect();
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(ids.len());
            assert_eq!(pos[start..end], (0..(end - start) as i64).collect::<Vec<_>>()[..], "positions count up");
            let padding_like = end == ids.len()
                && ids[start..end].iter().all(|&t| t == eos)
                && labels[start..end].iter().all(|&l| l == IGNORE_INDEX);
            if !padding_like {
                // Under loss_mask = none every position predicts the next token of its document.
                let mut want_labels: Vec<i64> = ids[start + 1..end].to_vec();
                want_labels.push(IGNORE_INDEX);
                assert_eq!(labels[start..end], want_labels[..], "labels of a document");
            }
            segments.push((ids[start..end].to_vec(), padding_like));
        }
    }
    // Every document's chunks are there exactly once; what is left is padding.
    for chunk in want.iter().flat_map(|(_, d)| d.chunks(64)) {
        let at =
            segments.iter().position(|(s, _)| s == chunk).unwrap_or_else(|| panic!("a chunk is missing: {chunk:?}"));
        segments.swap_remove(at);
    }
    assert!(segments.iter().all(|(_, padding)| *padding), "rows hold something else: {segments:?}");
    let real: usize = want.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(report.tokens as usize, real);
    assert!((report.packing_efficiency - real as f64 / (rows.len() * 64) as f64).abs() < 1e-9);
}

#[test]
fn document_export_keeps_order_across_shards() {
    let s = setup();
    let out_dir = s.root.join("docs");
    run(&mut s.export(
        &out_dir,
        &["--layout", "documents", "--shard-tokens", "300", "--prefix", "d", "--format", "megatron,parquet"],
    ));
    let report: ExportReport =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("d.json")).expect("manifest")).expect("parses");
    assert!(report.shards.len() >= 3, "{} tokens in shards of 300 make several shards", report.tokens);
    let tok = TextTokenizer::from_file(&s.tokenizer).expect("tokenizer");
    let want = expected_documents(&s.corpus, &tok);
    let (mut megatron, mut parquet) = (Vec::new(), Vec::new());
    for (i, shard) in report.shards.iter().enumerate() {
        let prefix = out_dir.join(format!("d_{i:05}"));
        assert_eq!(shard.bin.as_deref(), Some(prefix.with_extension("bin").as_path()));
        let (_, seqs, docs) = read_megatron(&prefix);
        assert_eq!(docs, (0..=seqs.len() as i64).collect::<Vec<_>>());
        megatron.extend(seqs);
        for row in read_parquet(&prefix.with_extension("parquet")) {
            parquet.push((row["record_id"].as_str().unwrap_or_default().to_string(), ints(&row["input_ids"])));
        }
    }
    assert_eq!(megatron, want.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>());
    assert_eq!(parquet, want);
    assert!(want.iter().all(|(_, d)| d.last() == Some(&i64::from(tok.eos_id))), "every document ends in end-of-text");
}

#[test]
fn export_keeps_the_runs_held_out_records_apart() {
    let s = setup();
    let config = s.root.join("learner.toml");
    std::fs::write(&config, "eval_fraction = 0.5\n").expect("write config");
    let export = |split: &str, with_config: bool| {
        let out_dir = s.root.join(format!("split-{split}"));
        let mut cmd = s.export(&out_dir, &["--layout", "documents", "--format", "parquet", "--prefix", "d", "--split", split]);
        if with_config {
            cmd.arg("--config").arg(&config);
        }
        (cmd, out_dir)
    };
    let ids = |out_dir: &Path| -> std::collections::BTreeSet<String> {
        let report: ExportReport =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("d.json")).expect("manifest")).expect("parses");
        (0..report.shards.len())
            .flat_map(|i| read_parquet(&out_dir.join(format!("d_{i:05}.parquet"))))
            .map(|row| row["record_id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (mut cmd, train_dir) = export("train", true);
    run(&mut cmd);
    let (mut cmd, held_dir) = export("held-out", true);
    run(&mut cmd);
    let (train, held) = (ids(&train_dir), ids(&held_dir));
    let want_held: std::collections::BTreeSet<String> = s
        .corpus
        .iter()
        .filter(|r| r.is_trainable() && agentmill_learner::eval::held_out(r, 0.5))
        .map(|r| r.record_id.clone())
        .collect();
    assert!(!held.is_empty() && !train.is_empty(), "both sides hold records: {held:?} / {train:?}");
    assert_eq!(held, want_held, "held-out: exactly what a run with eval_fraction 0.5 holds out");
    assert!(train.is_disjoint(&held), "no held-out record in the training export");
    let (mut cmd, all_dir) = export("train", false);
    run(&mut cmd);
    let all = ids(&all_dir);
    assert_eq!(train.union(&held).cloned().collect::<std::collections::BTreeSet<_>>(), all, "the two sides make the whole");
    // Without the run's configuration there is no held-out side to export.
    let (mut cmd, _) = export("held-out", false);
    let out = cmd.output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--split held-out"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn packed_export_shuffles_copies_like_the_learner_unless_told_not_to() {
    let s = setup();
    let tok = TextTokenizer::from_file(&s.tokenizer).expect("tokenizer");
    let rows = |name: &str, config: &str| -> Vec<Vec<i64>> {
        let path = s.root.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write config");
        let out_dir = s.root.join(name);
        let path = path.to_string_lossy().into_owned();
        let args = ["--layout", "packed", "--seq-len", "64", "--format", "megatron", "--prefix", "p", "--config", &path];
        run(&mut s.export(&out_dir, &args));
        read_megatron(&out_dir.join("p_00000")).1
    };
    let (arrival, shuffled) = (rows("arrival", "shuffle_steps = 0\n"), rows("shuffled", "shuffle_steps = 8\n"));
    assert_ne!(arrival, shuffled, "the buffer changes the order rows are filled in");
    // The same tokens either way: only their placement moved.
    let tokens = |rows: &[Vec<i64>]| {
        let mut t: Vec<i64> = rows.iter().flatten().copied().filter(|&t| t != i64::from(tok.eos_id)).collect();
        t.sort_unstable();
        t
    };
    assert_eq!(tokens(&arrival), tokens(&shuffled));
}

#[test]
fn inspect_record_marks_the_trained_tokens() {
    let s = setup();
    let index = s.corpus.iter().position(|r| r.record_id == "fail-0").expect("fail-0");
    let shown = run(bin()
        .arg("inspect-record")
        .arg(&s.records)
        .args(["--index", &index.to_string(), "--loss-mask", "assistant", "--plain"])
        .arg("--tokenizer")
        .arg(&s.tokenizer));
    let (header, text) = shown.split_once("\n\n").expect("a header, a blank line, the text");
    assert!(header.contains("record fail-0") && header.contains("source env-fail"), "{header}");
    assert!(header.contains("tokens trained"), "{header}");
    let rendered = render(&s.corpus[index], Template::default()).expect("trainable").text;
    assert_eq!(text.replace("[[", "").replace("]]", ""), rendered, "the marks are all that was added");
    let marked: Vec<&str> = text.split("[[").skip(1).map(|p| p.split("]]").next().unwrap_or_default()).collect();
    assert_eq!(marked.len(), 3, "one marked span per assistant turn: {marked:?}");
    for span in &marked {
        assert!(!span.contains("<|im_start|>"), "a role header or another turn is marked: {span:?}");
        assert!(span.ends_with("<|im_end|>"), "the turn's end is trained: {span:?}");
    }
    // An infra failure is shown as not trained.
    let infra = s.corpus.iter().position(|r| r.record_id == "infra-0").expect("infra-0");
    let shown = run(bin().arg("inspect-record").arg(&s.records).args(["--index", &infra.to_string(), "--plain"]));
    assert!(shown.contains("not trained: sandbox_error"), "{shown}");

    // A reader that is gone before the output comes (`| head`): a quiet success, not a panic.
    let mut child = bin()
        .arg("inspect-record")
        .arg(&s.records)
        .args(["--index", &index.to_string(), "--plain"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn inspect-record");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("inspect-record ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{:?}: {stderr}", out.status);
}

/// fail-0 with the policy's token ids on its three assistant turns: the first turn's text split
/// one id per character (drift), the second exactly the tokenizer's own ids with the server's
/// end-of-turn id (a match), the third an id the tokenizer lacks. Returns the record and the
/// document `assistant_tokens = "recorded"` trains.
fn with_recorded_ids(s: &Setup, tok: &TextTokenizer) -> (TrajectoryRecord, Vec<u32>) {
    let mut r = s.corpus.iter().find(|r| r.record_id == "fail-0").expect("fail-0").clone();
    r.record_id = "recorded-0".into();
    let rendered = render(&r, Template::default()).expect("trainable");
    let spans = tok.encode_spans(&rendered).expect("encoded");
    let bodies: Vec<std::ops::Range<usize>> =
        rendered.assistant_spans.iter().map(|a| a.start..a.end - "<|im_end|>".len()).collect();
    assert_eq!(bodies.len(), 3);
    let in_body = |b: &std::ops::Range<usize>| -> Vec<u32> {
        spans.iter().filter(|t| t.bytes.start >= b.start && t.bytes.end <= b.end).map(|t| t.id).collect()
    };
    let per_char: Vec<u32> =
        rendered.text[bodies[0].clone()].chars().flat_map(|c| tok.encode(&c.to_string()).expect("char")).collect();
    assert_ne!(per_char, in_body(&bodies[0]), "the tokenizer merges characters");
    let mut exact = in_body(&bodies[1]);
    exact.push(tok.encode("<|im_end|>").expect("special")[0]);
    let beyond = vec![1, tok.vocab_size() as u32 + 9];
    let assistants = r.messages.iter_mut().filter(|m| m.role == agentmill_proto::Role::Assistant);
    for (m, ids) in assistants.zip([per_char.clone(), exact, beyond]) {
        m.token_ids = Some(ids);
    }
    // What `assistant_tokens = "recorded"` trains: the rendered ids with the first turn's body
    // swapped for the per-character ids (the match is the same either way; the third turn's ids
    // cannot be used).
    let before = spans.iter().take_while(|t| t.bytes.end <= bodies[0].start).count();
    let body = in_body(&bodies[0]).len();
    let all: Vec<u32> = spans.iter().map(|t| t.id).collect();
    let mut want = all[..before].to_vec();
    want.extend(&per_char);
    want.extend(&all[before + body..]);
    want.push(tok.eos_id);
    (r, want)
}

#[test]
fn recorded_token_ids_are_compared_and_exported_as_configured() {
    let s = setup();
    let tok = TextTokenizer::from_file(&s.tokenizer).expect("tokenizer");
    let (record, swapped) = with_recorded_ids(&s, &tok);
    let records = s.root.join("recorded.jsonl");
    write_jsonl(&records, std::slice::from_ref(&record));
    let rendered: Vec<i64> = {
        let plain = render(&record, Template::default()).expect("trainable");
        tok.encode_with_mask(&plain).expect("encode").0.iter().map(|&t| i64::from(t)).collect()
    };
    let config = s.root.join("recorded.toml");
    std::fs::write(&config, format!("assistant_tokens = \"recorded\"\ntokenizer = {:?}\n", s.tokenizer)).expect("config");
    let export = |out_dir: &Path, config: Option<&Path>| {
        let mut cmd = bin();
        cmd.arg("export").args(["--layout", "documents", "--format", "megatron", "--prefix", "d"]);
        cmd.arg("--input").arg(&records).arg("--tokenizer").arg(&s.tokenizer).arg("--out").arg(out_dir);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd
    };
    for (name, config, want) in [
        ("rendered", None, rendered.clone()),
        ("recorded", Some(config.as_path()), swapped.iter().map(|&t| i64::from(t)).collect::<Vec<_>>()),
    ] {
        let out_dir = s.root.join(format!("tokens-{name}"));
        let stdout = run(&mut export(&out_dir, config));
        assert!(
            stdout.contains("1 match the tokenizer's tokens of their text, 1 drift, 0 another text, 1 out of vocabulary, 0 unmapped, 0 misaligned"),
            "{name}: {stdout}"
        );
        let report: ExportReport =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("d.json")).expect("manifest")).expect("parses");
        let t = report.recorded_turns;
        assert_eq!((t.matched, t.drift, t.out_of_vocab, t.misaligned), (1, 1, 1, 0), "{name}");
        let (_, seqs, _) = read_megatron(&out_dir.join("d_00000"));
        assert_eq!(seqs, vec![want], "{name}: the exported document");
    }
    assert_ne!(rendered, swapped.iter().map(|&t| i64::from(t)).collect::<Vec<_>>());

    // Without the policy's tokenizer named, "recorded" is refused with the fix.
    let bare = s.root.join("bare.toml");
    std::fs::write(&bare, "assistant_tokens = \"recorded\"\n").expect("config");
    let out = export(&s.root.join("refused"), Some(&bare)).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("assistant_tokens") && stderr.contains("tokenizer"), "{stderr}");

    // inspect-record names each turn that does not match and where it parts.
    let shown = run(bin().arg("inspect-record").arg(&records).args(["--plain", "--tokenizer"]).arg(&s.tokenizer));
    let header = shown.split_once("\n\n").expect("a header").0;
    assert!(header.contains("policy tokens: 3 of 3 assistant turns carry them; 1 match"), "{header}");
    assert!(header.contains("assistant turn 1: drift at token "), "{header}");
    assert!(header.contains(&format!("assistant turn 3: id {} is beyond", tok.vocab_size() + 9)), "{header}");
    assert!(!header.contains("assistant turn 2:"), "a matching turn is not listed: {header}");

    // `eval --config` measures what the run trains: the policy's ids under "recorded".
    let model = s.root.join("model");
    run(bin().args(["init", "--seed", "5", "--out"]).arg(&model));
    let measured = |config: Option<&Path>| -> u64 {
        let mut cmd = bin();
        cmd.args(["eval", "--json", "--seq-len", "1024", "--device", "cpu", "--checkpoint"]).arg(&model);
        cmd.arg("--tokenizer").arg(&s.tokenizer).arg("--input").arg(&records);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let json: serde_json::Value = serde_json::from_str(&run(&mut cmd)).expect("--json prints JSON");
        json["tokens"].as_u64().expect("tokens")
    };
    // One document in one row: every token but the first is a target.
    assert_eq!(measured(None), rendered.len() as u64 - 1);
    assert_eq!(measured(Some(&config)), swapped.len() as u64 - 1);
}

#[test]
fn a_stream_exports_and_trains_a_tokenizer_like_its_file() {
    let s = setup();
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-export");
    common::publish(&mut con, &stream, &s.corpus);

    let from_stream = s.root.join("tokenizer-from-stream.json");
    run(bin()
        .args(["tokenizer", "train", "--vocab", "400", "--stream", &stream, "--redis-url", &redis.url])
        .arg("--out")
        .arg(&from_stream));
    let read = |p: &Path| std::fs::read_to_string(p).expect("tokenizer.json");
    assert_eq!(read(&from_stream), read(&s.tokenizer), "the same records make the same tokenizer");

    let export = |out: &Path, source: &[&str]| {
        run(bin()
            .args(["export", "--seq-len", "64", "--prefix", "x"])
            .args(source)
            .arg("--tokenizer")
            .arg(&s.tokenizer)
            .arg("--out")
            .arg(out));
    };
    let (a, b) = (s.root.join("from-stream"), s.root.join("from-file"));
    export(&a, &["--stream", &stream, "--redis-url", &redis.url]);
    let records = s.records.display().to_string();
    export(&b, &["--input", &records]);
    for file in ["x_00000.bin", "x_00000.idx"] {
        assert_eq!(
            std::fs::read(a.join(file)).expect("stream export"),
            std::fs::read(b.join(file)).expect("file export"),
            "{file}"
        );
    }
    assert_eq!(read_parquet(&a.join("x_00000.parquet")), read_parquet(&b.join("x_00000.parquet")));
    let groups: Vec<redis::Value> = redis::cmd("XINFO").arg("GROUPS").arg(&stream).query(&mut con).expect("XINFO");
    assert!(groups.is_empty(), "reading for an export creates no consumer group and acknowledges nothing");
}

/// DESIGN §9: a CUDA libtorch's `libtorch_cuda.so` is dropped by `--as-needed` unless linked on
/// purpose, and then no GPU host's driver helps. The binary must carry the CUDA backend whenever
/// the libtorch it was built against has one, which this machine shows without a GPU.
#[test]
fn eval_measures_a_checkpoint_by_source_and_only_the_held_out_share_when_asked() {
    let s = setup();
    let model = s.root.join("model");
    run(bin().args(["init", "--seed", "5", "--out"]).arg(&model));
    let eval = |extra: &[&str]| -> String {
        run(bin()
            .args(["eval", "--seq-len", "64", "--device", "cpu", "--checkpoint"])
            .arg(&model)
            .arg("--tokenizer")
            .arg(&s.tokenizer)
            .arg("--input")
            .arg(&s.records)
            .args(extra))
    };
    let table = eval(&[]);
    for want in ["source", "perplexity", "env-pass", "env-fail", "ctx", "all", "on 10 of 12 records (Cpu)"] {
        assert!(table.contains(want), "{want:?} missing from\n{table}");
    }
    let json: serde_json::Value = serde_json::from_str(&eval(&["--json"])).expect("--json prints JSON");
    // A freshly initialised model predicts close to uniformly: its loss is near ln(vocabulary).
    let vocab = agentmill_learner::checkpoint::read_config(&model).expect("config.json").vocab_size as f64;
    let loss = json["loss"].as_f64().expect("loss");
    assert!((loss - vocab.ln()).abs() < 1.0, "loss {loss} far from ln({vocab}) = {:.3}", vocab.ln());
    let tokens = json["tokens"].as_u64().expect("tokens");
    let by_source: u64 = json["by_source"].as_object().expect("by_source").values().map(|v| v["tokens"].as_u64().unwrap_or(0)).sum();
    assert_eq!(by_source, tokens, "the sources add up to the whole");
    // --held-out keeps exactly the records a run with that eval_fraction holds out.
    let held: std::collections::BTreeSet<&str> = s
        .corpus
        .iter()
        .filter(|r| r.is_trainable() && agentmill_learner::eval::held_out(r, 0.5))
        .map(|r| r.record_id.as_str())
        .collect();
    let out = bin()
        .args(["eval", "--seq-len", "64", "--device", "cpu", "--held-out", "0.5", "--checkpoint"])
        .arg(&model)
        .arg("--tokenizer")
        .arg(&s.tokenizer)
        .arg("--input")
        .arg(&s.records)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if held.is_empty() {
        assert!(!out.status.success(), "nothing held out must be an error:\n{stdout}");
    } else {
        assert!(stdout.contains(&format!("on {} of 12 records", held.len())), "{stdout}");
    }
    let bad = bin().args(["eval", "--held-out", "1.5", "--checkpoint"]).arg(&model).arg("--input").arg(&s.records).output().expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--held-out 1.5"), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[test]
fn the_learner_carries_the_cuda_backend_of_a_cuda_libtorch() {
    let libtorch_cuda = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/libtorch/lib/libtorch_cuda.so");
    let out = bin().args(["doctor", "--device", "cpu"]).output().expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "doctor --device cpu: {}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("cuda_backend: ")).unwrap_or_else(|| panic!("no cuda_backend line in\n{stdout}"));
    if libtorch_cuda.exists() && option_env!("AGENTMILL_CPU_ONLY") != Some("1") {
        assert!(line.starts_with("cuda_backend: linked (CUDA runtime "), "{line}");
    } else {
        assert!(line.starts_with("cuda_backend: none"), "{line}");
    }
}

#[test]
fn doctor_names_a_missing_gpu_instead_of_crashing() {
    let out = bin().args(["doctor", "--device", "cuda"]).output().expect("run doctor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if tch::Cuda::is_available() {
        assert!(out.status.success(), "doctor on a GPU host: {stderr}");
    } else {
        assert_eq!(out.status.code(), Some(1), "an error exit, not a panic: {stderr}");
        assert!(stderr.contains("libtorch sees no CUDA device") && stderr.contains("--device cpu"), "{stderr}");
    }
}
