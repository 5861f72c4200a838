"""Reference side of the learner's training-step parity test: transformers + torch.optim.AdamW.

  torch_train_steps.py MODEL_DIR BATCH_JSON OUT_DIR --steps N --lr LR --beta1 B1 --beta2 B2
      --eps EPS --weight-decay WD --max-grad-norm MAX

Loads MODEL_DIR (written by the learner), and takes N steps on the batch's `input_ids`
(labels = input_ids, shifted by transformers): forward, backward, clip_grad_norm_, AdamW with
PyTorch's default implementation (weight decay on matrices only, as the learner does),
zero_grad. Writes OUT_DIR/weights.safetensors (the final parameters, named as in the
checkpoint) and OUT_DIR/steps.json (loss and gradient norm of every step).
"""

import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers import Qwen2ForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("batch")
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--beta1", type=float, required=True)
    p.add_argument("--beta2", type=float, required=True)
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("--weight-decay", type=float, required=True)
    p.add_argument("--max-grad-norm", type=float, required=True)
    a = p.parse_args()

    torch.set_num_threads(1)
    model = Qwen2ForCausalLM.from_pretrained(a.model_dir, attn_implementation="sdpa", dtype=torch.float32)
    model.train()
    with open(a.batch) as f:
        ids = torch.tensor(json.load(f)["input_ids"], dtype=torch.long)
    decay = [p_ for p_ in model.parameters() if p_.dim() >= 2]
    no_decay = [p_ for p_ in model.parameters() if p_.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr,
        betas=(a.beta1, a.beta2),
        eps=a.eps,
    )
    steps = []
    for _ in range(a.steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps.append({"loss": loss.item(), "grad_norm": norm.item()})
    os.makedirs(a.out_dir, exist_ok=True)
    # state_dict names the tied head too; keep only what the checkpoint holds.
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    save_file(weights, os.path.join(a.out_dir, "weights.safetensors"))
    with open(os.path.join(a.out_dir, "steps.json"), "w") as f:
        json.dump(steps, f)


if __name__ == "__main__":
    main()
