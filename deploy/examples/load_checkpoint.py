"""Load an agentmill learner checkpoint with Hugging Face transformers and use it.

    .venv/bin/python deploy/examples/load_checkpoint.py runs/quickstart-*/learner/checkpoints/step-00000042

A checkpoint directory is Hugging Face's layout (config.json, model.safetensors) plus the
tokenizer the run trained (tokenizer.json). This script loads both, reports the model's loss on a
piece of text in the paper's trajectory format and a short greedy continuation, and prints one
JSON line; it exits non-zero when the checkpoint does not load.
"""

import argparse
import json
import os
import sys

SAMPLE = (
    "<|im_start|>user\nThe parser treats `2 ** 3 ** 2` as `(2 ** 3) ** 2`.<|im_end|>\n"
    "<|im_start|>assistant\n<think>Power should be right-associative.</think>\n"
    "<function=bash><parameter=command>python -m pytest -q tests/test_parser.py</parameter></function><|im_end|>\n"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a checkpoint directory (config.json + model.safetensors + tokenizer.json)")
    ap.add_argument("--text", default=SAMPLE, help="text to score")
    ap.add_argument("--new-tokens", type=int, default=16)
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tok_file = os.path.join(args.checkpoint, "tokenizer.json")
    if not os.path.exists(tok_file):
        print(f"{tok_file} is missing: is {args.checkpoint} an agentmill checkpoint?", file=sys.stderr)
        return 1
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=tok_file)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, torch_dtype=torch.float32)
    model.eval()

    ids = torch.tensor([tokenizer.encode(args.text)])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
        prompt = ids[:, : max(1, ids.shape[1] // 2)]
        out = model.generate(prompt, max_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)
    continuation = tokenizer.decode(out[0, prompt.shape[1]:].tolist())
    print(json.dumps({
        "loaded": True,
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": model.config.vocab_size,
        "loss": loss,
        "continuation": continuation,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
