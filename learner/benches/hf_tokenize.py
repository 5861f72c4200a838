"""HF `tokenizers` baseline for agentmill-bench-learner: encode_batch over the same rendered texts.

Prints one JSON object on stdout.
"""

import argparse
import json
import time

from tokenizers import Tokenizer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--texts", required=True, help="JSONL, one {'text': ...} per line")
    p.add_argument("--iters", type=int, default=5)
    a = p.parse_args()
    tok = Tokenizer.from_file(a.tokenizer)
    with open(a.texts) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    tok.encode_batch(texts[:8], add_special_tokens=False)  # warm-up
    best = None
    tokens = 0
    for _ in range(a.iters):
        t0 = time.perf_counter()
        encs = tok.encode_batch(texts, add_special_tokens=False)
        dt = time.perf_counter() - t0
        tokens = sum(len(e.ids) for e in encs)
        best = dt if best is None else min(best, dt)
    print(json.dumps({"tokens": tokens, "best_s": best, "tokens_per_s": tokens / best, "texts": len(texts)}))


if __name__ == "__main__":
    main()
