"""Rollout and training throughput of a Qwen2.5-0.5B-shaped model (random weights: no download).

    python scripts/bench_gpu_throughput.py            # GPU: bf16, the real shape
    python scripts/bench_gpu_throughput.py --smoke    # CPU: a tiny shape, checks the script runs

Rollout: ``generate`` with sampling, batch of prompts x new tokens, tokens/s of new tokens.
Training: forward + backward + AdamW step on full sequences, tokens/s and MFU, where MFU =
(training FLOPs by sgpo.flops, the same count the ledger uses) / time / the card's bf16 dense peak.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from sgpo.flops import ModelShape, sequence_forward_flops, sequence_train_flops

# Qwen2.5-0.5B's config.json (hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4864, vocab 151936).
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, tie_word_embeddings=True,
                  rope_theta=1000000.0, rms_norm_eps=1e-6)
SMOKE = dict(QWEN25_05B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=512)
# bf16 dense tensor-core peaks (FLOP/s) from NVIDIA's data sheets (SXM parts).
PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAKS.items() if k in name), None)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shape on the CPU")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--train-tokens", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.prompt_tokens, args.new_tokens, args.train_batch, args.train_tokens, args.steps = 4, 8, 8, 2, 32, 2
    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    config = Qwen2Config(**(SMOKE if args.smoke else QWEN25_05B))
    model = Qwen2ForCausalLM(config).to(device=device, dtype=dtype)
    shape = ModelShape.from_config(config)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    # rollouts: sampling with the KV cache, as the hf engine does
    model.eval()
    prompts = torch.randint(0, config.vocab_size, (args.prompts, args.prompt_tokens), device=device)
    with torch.no_grad():
        model.generate(prompts[:2], max_new_tokens=4, do_sample=True, pad_token_id=0)  # warm-up
        sync()
        started = time.perf_counter()
        out = model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=args.new_tokens,
                             min_new_tokens=args.new_tokens, do_sample=True, temperature=1.0, pad_token_id=0)
        sync()
    gen_s = time.perf_counter() - started
    new_tokens = (out.shape[1] - args.prompt_tokens) * args.prompts
    gen_flops = args.prompts * float(sequence_forward_flops(shape, args.prompt_tokens + args.new_tokens))

    # training: forward + backward + optimiser step on full sequences
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = torch.randint(0, config.vocab_size, (args.train_batch, args.train_tokens), device=device)
    times = []
    for step in range(args.steps + 1):
        sync()
        started = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if step:  # the first step is warm-up
            times.append(time.perf_counter() - started)
    step_s = sum(times) / len(times)
    train_flops = args.train_batch * float(sequence_train_flops(shape, args.train_tokens))
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = peak_flops(name) if device == "cuda" else None
    result = {
        "device": name, "dtype": str(dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in model.parameters()),
        "rollout": {"prompts": args.prompts, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
                    "seconds": round(gen_s, 3), "tokens_per_s": round(new_tokens / gen_s, 1),
                    "mfu": round(gen_flops / gen_s / peak, 4) if peak else None},
        "training": {"batch": args.train_batch, "tokens": args.train_tokens, "step_s": round(step_s, 4),
                     "tokens_per_s": round(args.train_batch * args.train_tokens / step_s, 1),
                     "mfu": round(train_flops / step_s / peak, 4) if peak else None},
        "peak_flops": peak,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
