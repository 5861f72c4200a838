"""PyTorch-eager baseline for agentmill-bench-learner: the same training step in transformers.

Loads the checkpoint the Rust bench wrote (same config.json, same initial weights), reads the
same batch, and times forward(labels) + backward + clip_grad_norm_ + AdamW step + zero_grad.
Prints one JSON object on stdout.

The optimizer is torch.optim.AdamW with PyTorch's default implementation (on the CPU, the
single-tensor for-loop). With --fused it is AdamW(fused=True) instead, PyTorch's fastest option
(one fused kernel per parameter group), everything else unchanged.

With --device cuda --bf16 it is the GPU baseline: fp32 master weights and optimizer, matrix
products in bf16 under torch.autocast (the learner's `bf16_mixed`), timed with the device
synchronised (`loss.item()` waits for the step).
"""

import contextlib

import argparse
import json
import time

import torch
from transformers import Qwen2ForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--batch", required=True, help="JSON file: {'input_ids': [[...], ...]}")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.95)
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--fused", action="store_true", help="AdamW(fused=True) instead of the default implementation")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast around forward and loss (fp32 weights)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    model = Qwen2ForCausalLM.from_pretrained(a.model_dir, attn_implementation="sdpa", dtype=torch.float32).to(device)
    model.train()
    with open(a.batch) as f:
        ids = torch.tensor(json.load(f)["input_ids"], dtype=torch.long, device=device)
    autocast = (
        lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    ) if a.bf16 else contextlib.nullcontext
    # The Rust optimizer decays matrices only; do the same with two groups.
    decay = [p_ for p_ in model.parameters() if p_.requires_grad and p_.dim() >= 2]
    no_decay = [p_ for p_ in model.parameters() if p_.requires_grad and p_.dim() < 2]
    # Only pass `fused` when asked, so the default run is exactly torch.optim.AdamW's default.
    extra = {"fused": True} if a.fused else {}
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr,
        betas=(a.beta1, a.beta2),
        eps=a.eps,
        **extra,
    )

    def step():
        with autocast():
            out = model(input_ids=ids, labels=ids)  # transformers shifts the labels itself
        out.loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss.item(), gn.item()

    first_loss = None
    for i in range(a.warmup):
        loss, _ = step()
        if i == 0:
            first_loss = loss
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss, _ = step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "mean_step_s": sum(times) / len(times),
        "min_step_s": min(times),
        "median_step_s": sorted(times)[len(times) // 2] if len(times) % 2 else sum(sorted(times)[len(times) // 2 - 1:len(times) // 2 + 1]) / 2,
        "first_loss": first_loss,
        "last_loss": loss,
        "threads": torch.get_num_threads(),
        "fused": a.fused,
        "device": str(device),
        "bf16": a.bf16,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
