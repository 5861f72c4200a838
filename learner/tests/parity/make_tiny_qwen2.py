"""Reference side of the learner's parity test: transformers' Qwen2ForCausalLM.

Nothing is downloaded: models are tiny, random, made here with a fixed seed, in fp32.

  make OUT [--seed N]
      Writes OUT/tied and OUT/untied: each a `save_pretrained` directory of a random
      Qwen2ForCausalLM (q/k/v biases, grouped-query attention: 4 query heads over 2 key/value
      heads, RoPE base 1e6 as Qwen2.5) with every parameter randomised, biases and norm gains
      included, plus reference.safetensors holding `input_ids` [2, 17] and their `logits`.

  logits INPUTS MODEL_DIR...
      Loads each MODEL_DIR with `from_pretrained` (failing if any weight is missing, unexpected
      or mis-shaped, since transformers would otherwise fill it randomly), runs it on the
      `input_ids` of INPUTS and writes MODEL_DIR/transformers_logits.safetensors.
"""

import argparse
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, Qwen2ForCausalLM


def tiny_config(tied: bool) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        tie_word_embeddings=tied,
    )


def randomise(model: torch.nn.Module, generator: torch.Generator) -> None:
    """transformers initialises biases to 0 and norm gains to 1; randomise them too so the
    comparison exercises every tensor."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.08 * noise)


def logits_of(model: Qwen2ForCausalLM, input_ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids).logits.float().contiguous()


def make(out: str, seed: int) -> None:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    for tied in (True, False):
        model = Qwen2ForCausalLM(tiny_config(tied)).to(torch.float32)
        randomise(model, generator)
        if tied:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "head not tied"
        directory = os.path.join(out, "tied" if tied else "untied")
        model.save_pretrained(directory)
        input_ids = torch.randint(0, 320, (2, 17), generator=generator, dtype=torch.int64)
        save_file(
            {"input_ids": input_ids, "logits": logits_of(model, input_ids)},
            os.path.join(directory, "reference.safetensors"),
        )


def logits(inputs: str, model_dirs: list[str]) -> None:
    input_ids = load_file(inputs)["input_ids"]
    for directory in model_dirs:
        model, info = Qwen2ForCausalLM.from_pretrained(directory, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v}
        if problems:
            sys.exit(f"{directory}: transformers did not load every weight cleanly: {problems}")
        weight = model.model.embed_tokens.weight
        if weight.dtype != torch.float32:
            sys.exit(f"{directory}: loaded as {weight.dtype}, expected float32")
        tied = model.lm_head.weight.data_ptr() == weight.data_ptr()
        if tied != model.config.tie_word_embeddings:
            sys.exit(f"{directory}: tie_word_embeddings={model.config.tie_word_embeddings} but head tied={tied}")
        save_file({"logits": logits_of(model, input_ids)}, os.path.join(directory, "transformers_logits.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_make = sub.add_parser("make")
    p_make.add_argument("out")
    p_make.add_argument("--seed", type=int, default=1234)
    p_logits = sub.add_parser("logits")
    p_logits.add_argument("inputs")
    p_logits.add_argument("model_dirs", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "make":
        make(args.out, args.seed)
    else:
        logits(args.inputs, args.model_dirs)


if __name__ == "__main__":
    main()
