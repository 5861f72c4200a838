//! `agentmill-learner export-gguf` against its references: the `gguf` package reads the file and
//! agrees on every metadata key and tensor, and llama.cpp (llama-cpp-python) running it gives the
//! same tokens, logits and greedy continuations as `transformers` running the checkpoint.

use std::process::Command;

use agentmill_tests::llama_server::{llama_python, tiny_checkpoint};
use agentmill_tests::workspace;

fn reference(python: &std::path::Path, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(python)
        .arg(workspace().join("tests/reference/gguf_ref.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {} tests/reference/gguf_ref.py: {e} (deploy/setup.sh makes the venvs)", python.display()));
    assert!(out.status.success(), "gguf_ref.py {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn venv_python() -> std::path::PathBuf {
    workspace().join(".venv/bin/python")
}

#[test]
fn the_gguf_package_reads_every_key_and_tensor_as_the_checkpoint_has_them() {
    let ck = tiny_checkpoint();
    let summary: serde_json::Value =
        serde_json::from_str(&reference(&venv_python(), &["read".as_ref(), ck.dir.as_os_str(), ck.gguf.as_os_str()])).expect("JSON summary");
    // 13 architecture keys + 10 tokenizer keys; 2 layers × 12 tensors + embeddings + final norm (tied head).
    assert_eq!(summary["keys"], 23, "{summary}");
    assert_eq!(summary["tensors"], 26, "{summary}");
    assert_eq!(summary["vocab"], 1024, "{summary}");
    assert!(summary["checked_values"].as_u64().unwrap_or(0) > 60_000, "{summary}");
}

#[test]
fn with_f16_the_matrices_are_half_precision_and_the_rest_f32() {
    let ck = tiny_checkpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("tiny-f16.gguf");
    let o = Command::new(agentmill_tests::binary("agentmill-learner")).arg("export-gguf").arg(&ck.dir).arg(&out).arg("--f16").output().expect("run export-gguf");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&reference(&venv_python(), &["read".as_ref(), ck.dir.as_os_str(), out.as_os_str(), "f16".as_ref()])).expect("JSON summary");
    assert_eq!(summary["tensors"], 26, "{summary}");
    let (full, half) = (std::fs::metadata(&ck.gguf).expect("f32 file").len(), std::fs::metadata(&out).expect("f16 file").len());
    assert!(half < full * 3 / 4, "the F16 file ({half} bytes) is not smaller than the F32 one ({full})");
}

#[test]
fn llama_cpp_on_the_gguf_matches_transformers_on_the_checkpoint() {
    let ck = tiny_checkpoint();
    let prompts = serde_json::json!([
        "<|im_start|>user\nFix the parser so that `key = value` lines keep their spaces.<|im_end|>\n<|im_start|>assistant\n",
        "def split(line):\n    key, value = line.split('=', 1)\n    return key.strip(), value\n\n\n# done",
        "It's 2024: don't   panic —  naïve café 12345 \t tabs\r\nand\n\n\nnewlines  ",
        "<function=bash>\n<parameter=command>\ngrep -rn \"split\" src/ | head -5\n</parameter>\n</function><|im_end|>",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("prompts.json");
    std::fs::write(&file, prompts.to_string()).expect("write prompts");
    let llama: Vec<serde_json::Value> =
        serde_json::from_str(&reference(&llama_python(), &["run".as_ref(), "llama".as_ref(), ck.gguf.as_os_str(), file.as_os_str()])).expect("llama JSON");
    let hf: Vec<serde_json::Value> =
        serde_json::from_str(&reference(&venv_python(), &["run".as_ref(), "transformers".as_ref(), ck.dir.as_os_str(), file.as_os_str()])).expect("transformers JSON");
    assert_eq!(llama.len(), hf.len());
    for (i, (l, h)) in llama.iter().zip(&hf).enumerate() {
        assert_eq!(l["ids"], h["ids"], "prompt {i}: llama.cpp tokenizes differently from the tokenizer.json");
        let (la, ha) = (l["logits"].as_array().expect("logits"), h["logits"].as_array().expect("logits"));
        assert_eq!(la.len(), ha.len(), "prompt {i}: vocabulary sizes differ");
        let diff = la.iter().zip(ha).map(|(a, b)| (a.as_f64().unwrap_or(f64::NAN) - b.as_f64().unwrap_or(f64::NAN)).abs()).fold(0.0, f64::max);
        let scale = ha.iter().map(|b| b.as_f64().unwrap_or(0.0).abs()).fold(0.0, f64::max);
        assert!(diff <= 1e-3 * scale.max(1.0), "prompt {i}: logits differ by {diff} (scale {scale})");
        assert_eq!(l["greedy"], h["greedy"], "prompt {i}: greedy continuations differ");
    }
}

#[test]
fn a_checkpoint_without_its_tokenizer_is_refused_with_the_fix() {
    let ck = tiny_checkpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(ck.dir.join(file), dir.path().join(file)).expect("copy");
    }
    let out = dir.path().join("x.gguf");
    let o = Command::new(agentmill_tests::binary("agentmill-learner")).arg("export-gguf").arg(dir.path()).arg(&out).output().expect("run export-gguf");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("tokenizer.json: not found; pass --tokenizer"), "{stderr}");
    assert!(!out.exists(), "nothing written");
}
