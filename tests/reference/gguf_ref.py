"""References for `agentmill-learner export-gguf` (tests/tests/gguf_export.rs).

  gguf_ref.py read CHECKPOINT GGUF [f16]
      (f16: the file was written with --f16: 2-D weights F16, the rest F32) (.venv's Python: the `gguf` package, safetensors, tokenizers) reads GGUF with gguf's own
      GGUFReader and checks it against the checkpoint: every metadata key and its value, every
      tensor's name, type, shape and values (the safetensors tensor under llama.cpp's name).
      Prints one JSON object {"keys", "tensors", "vocab", "checked_values"}; any difference
      is printed and exits 1.
  gguf_ref.py run llama GGUF PROMPTS.json / run transformers CHECKPOINT PROMPTS.json
      (llama: .venv/llama-cpp-0.3.36's Python; transformers: .venv's) for each prompt: its token
      ids, the logits after the last one, and 8 greedy tokens. JSON list on stdout.
"""

import json
import sys

GREEDY = 8


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def read(checkpoint, path, f16=False):
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    cfg = json.load(open(f"{checkpoint}/config.json"))
    tok = json.load(open(f"{checkpoint}/tokenizer.json"))
    reader = gguf.GGUFReader(path)
    fields = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        fields[name] = field.contents()
    errors = []

    def want(key, value):
        got = fields.pop(key, "<missing>")
        if isinstance(value, float):
            ok = isinstance(got, float) and abs(got - value) <= 1e-6 * max(1.0, abs(value))
        else:
            ok = got == value
        if not ok:
            errors.append(f"{key}: gguf has {str(got)[:200]!r}, want {str(value)[:200]!r}")

    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    want("general.architecture", "qwen2")
    want("general.name", checkpoint.rstrip("/").split("/")[-1])
    want("general.file_type", 1 if f16 else 0)
    want("qwen2.context_length", cfg["max_position_embeddings"])
    want("qwen2.embedding_length", cfg["hidden_size"])
    want("qwen2.block_count", cfg["num_hidden_layers"])
    want("qwen2.feed_forward_length", cfg["intermediate_size"])
    want("qwen2.attention.head_count", cfg["num_attention_heads"])
    want("qwen2.attention.head_count_kv", cfg["num_key_value_heads"])
    want("qwen2.attention.key_length", head_dim)
    want("qwen2.attention.value_length", head_dim)
    rope = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta")
    want("qwen2.rope.freq_base", float(rope))
    want("qwen2.attention.layer_norm_rms_epsilon", float(cfg["rms_norm_eps"]))

    # The vocabulary as llama.cpp's converter lays out a gpt2 tokenizer: ids from tokenizer.json,
    # added tokens typed CONTROL (special) or USER_DEFINED, gaps up to vocab_size as [PADi] UNUSED.
    n = cfg["vocab_size"]
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [5] * n
    for t, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = t, 1
    added = {}
    for a in tok["added_tokens"]:
        tokens[a["id"]], types[a["id"]] = a["content"], (3 if a["special"] else 4)
        added[a["content"]] = a["id"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    want("tokenizer.ggml.model", "gpt2")
    # The learner's tokenizer: a ByteLevel pre-tokenizer (GPT-2's regex) -> llama.cpp's "gpt-2".
    pre = tok["pre_tokenizer"]
    want("tokenizer.ggml.pre", "gpt-2" if pre["type"] == "ByteLevel" else "qwen2")
    want("tokenizer.ggml.tokens", tokens)
    want("tokenizer.ggml.token_type", types)
    want("tokenizer.ggml.merges", merges)
    want("tokenizer.ggml.bos_token_id", added["<|endoftext|>"])
    want("tokenizer.ggml.eos_token_id", added["<|im_end|>"])
    want("tokenizer.ggml.padding_token_id", added["<|endoftext|>"])
    want("tokenizer.ggml.add_bos_token", False)
    template = fields.pop("tokenizer.chat_template", "")
    if "<|im_start|>" not in template or "<function=" not in template:
        errors.append("tokenizer.chat_template is not the learner's ChatML template")
    for extra in sorted(fields):
        errors.append(f"unexpected key {extra}")

    weights = load_file(f"{checkpoint}/model.safetensors")
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
             "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    expected = {}
    for hf, value in weights.items():
        if hf == "lm_head.weight" and cfg.get("tie_word_embeddings"):
            continue
        if hf in names:
            expected[names[hf]] = value
            continue
        _, _, layer, rest = hf.split(".", 3)
        module, kind = rest.rsplit(".", 1)
        expected[f"blk.{layer}.{parts[module]}.{kind}"] = value
    got = {t.name: t for t in reader.tensors}
    if sorted(got) != sorted(expected):
        errors.append(f"tensors: gguf has {sorted(set(got) - set(expected))} extra, {sorted(set(expected) - set(got))} missing")
    checked = 0
    for name, value in expected.items():
        t = got.get(name)
        if t is None:
            continue
        half = f16 and value.ndim == 2
        want_type = gguf.GGMLQuantizationType.F16 if half else gguf.GGMLQuantizationType.F32
        if t.tensor_type != want_type:
            errors.append(f"{name}: type {t.tensor_type.name}, want {want_type.name}")
            continue
        # gguf lists dims innermost first; the data reads back in numpy's (outermost first) order.
        if [int(d) for d in t.shape] != list(reversed(value.shape)):
            errors.append(f"{name}: shape {list(t.shape)}, want {list(reversed(value.shape))}")
            continue
        data = np.asarray(t.data).reshape(value.shape)
        if not np.array_equal(data, value.astype(np.float16 if half else np.float32)):
            errors.append(f"{name}: values differ (max {np.abs(data - value).max()})")
        checked += value.size
    if errors:
        fail("\n".join(errors))
    print(json.dumps({"keys": len(reader.fields) - 3, "tensors": len(reader.tensors), "vocab": n, "checked_values": int(checked)}))


def run_llama(path, prompts):
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=1024, logits_all=True, verbose=False, seed=0)
    out = []
    for text in prompts:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[len(ids) - 1], dtype=np.float64)
        first = logits.tolist()
        greedy = []
        for _ in range(GREEDY):
            nxt = int(np.argmax(logits))
            greedy.append(nxt)
            llm.eval([nxt])
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        out.append({"ids": list(ids), "logits": first, "greedy": greedy})
    print(json.dumps(out))


def run_transformers(checkpoint, prompts):
    import torch
    from tokenizers import Tokenizer
    from transformers import Qwen2ForCausalLM

    tok = Tokenizer.from_file(f"{checkpoint}/tokenizer.json")
    model = Qwen2ForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for text in prompts:
            ids = tok.encode(text, add_special_tokens=False).ids
            seq = torch.tensor([ids])
            logits = model(seq).logits[0, -1].double()
            first = logits.tolist()
            greedy = []
            for _ in range(GREEDY):
                nxt = int(torch.argmax(logits))
                greedy.append(nxt)
                seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
                logits = model(seq).logits[0, -1].double()
            out.append({"ids": ids, "logits": first, "greedy": greedy})
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3], f16=sys.argv[4:] == ["f16"])
    elif sys.argv[1:3] == ["run", "llama"]:
        run_llama(sys.argv[3], json.load(open(sys.argv[4])))
    elif sys.argv[1:3] == ["run", "transformers"]:
        run_transformers(sys.argv[3], json.load(open(sys.argv[4])))
    else:
        fail(__doc__)
