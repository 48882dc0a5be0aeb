"""Train the shipped base policy ``tiny_arith`` by supervised next-token prediction.

    python -m sgpo.warmstart --seed 0 --out sgpo/assets/tiny_arith

A character-level LlamaForCausalLM (hidden 128, 4 layers, ~1.06M parameters) learns
``"<a>+<b>=" -> "<sum></s>"`` on fresh problems drawn from the arithmetic task's train share of
the id space (never val or test problems), with the prompt tokens masked out of the loss.

RL needs a policy that solves some problems always, some never and many sometimes, so training
does not stop at a fixed step: every ``--eval-every`` steps it samples k=8 completions at
temperature 1.0 for held-out val problems and stops at the first checkpoint whose success
spread meets the targets below (the issue's bar with a margin for the val sample's noise).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sgpo.engines.base import SamplingParams
from sgpo.engines.hf import HFEngine
from sgpo.models.char_tokenizer import EOS_ID, PAD_ID, build_char_tokenizer
from sgpo.tasks.arithmetic import ArithmeticConfig, ArithmeticTask, problem_stream

# Stop when the val sample shows all of these (the bar on the train profile is 0.10 / 0.10 /
# 0.35 / [0.3, 0.75]; the margins absorb the gap between 256 val and 2048 train queries).
TARGETS = {"min_frac_all": 0.12, "min_frac_none": 0.12, "min_frac_mixed": 0.38, "mean_range": (0.33, 0.70)}


def tiny_config(vocab_size: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        bos_token_id=1, eos_token_id=EOS_ID, pad_token_id=PAD_ID, tie_word_embeddings=True,
    )


def sft_batch(tokenizer, queries) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids [B, T] (right-padded) and labels [B, T] with prompt and padding set to -100."""
    rows, labels = [], []
    for q in queries:
        prompt = tokenizer(q.prompt).input_ids
        answer = tokenizer(q.answer, add_special_tokens=False).input_ids + [EOS_ID]
        rows.append(prompt + answer)
        labels.append([-100] * len(prompt) + answer)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD_ID)
    lab = torch.full((len(rows), width), -100)
    for i, (r, lb) in enumerate(zip(rows, labels)):
        ids[i, : len(r)] = torch.tensor(r)
        lab[i, : len(lb)] = torch.tensor(lb)
    return ids, lab


def success_spread(model, tokenizer, task: ArithmeticTask, split: str, k: int, seed: int) -> dict[str, float]:
    """Per-query success over k samples at T=1: mean and the shares solved always/never/sometimes."""
    engine = HFEngine(model, tokenizer)
    queries = task.split(split)
    prompts = [tokenizer(q.prompt).input_ids for q in queries]
    outs = engine.generate(prompts, k, SamplingParams(temperature=1.0, max_new_tokens=8), seed=seed)
    rates = [sum(task.score(q, c.text) for c in cs) / k for q, cs in zip(queries, outs)]
    n = len(rates)
    return {
        "mean": sum(rates) / n,
        "frac_all": sum(r == 1 for r in rates) / n,
        "frac_none": sum(r == 0 for r in rates) / n,
        "frac_mixed": sum(0 < r < 1 for r in rates) / n,
    }


def save(model, tokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def meets_targets(s: dict[str, float]) -> bool:
    lo, hi = TARGETS["mean_range"]
    return (s["frac_all"] >= TARGETS["min_frac_all"] and s["frac_none"] >= TARGETS["min_frac_none"]
            and s["frac_mixed"] >= TARGETS["min_frac_mixed"] and lo <= s["mean"] <= hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sgpo/assets/tiny_arith"))
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--min-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tokenizer = build_char_tokenizer()
    model = LlamaForCausalLM(tiny_config(len(tokenizer)))
    task = ArithmeticTask()  # the default task: its val split is the held-out stopping signal
    stream = problem_stream(ArithmeticConfig(), "train", seed=args.seed + 12345)
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.max_steps - args.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_at)
    start, history = time.time(), []
    print(f"tiny_arith: {sum(p.numel() for p in model.parameters()):,} parameters, seed {args.seed}")
    for step in range(1, args.max_steps + 1):
        model.train()
        ids, labels = sft_batch(tokenizer, [next(stream) for _ in range(args.batch_size)])
        loss = model(input_ids=ids, attention_mask=(ids != PAD_ID).long(), labels=labels).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        if step % args.eval_every == 0:
            stats = {"step": step, "loss": round(loss.item(), 4), "elapsed_s": round(time.time() - start, 1)}
            if step >= args.min_steps:
                stats.update({k: round(v, 3) for k, v in success_spread(model, tokenizer, task, "val", 8, seed=step).items()})
            history.append(stats)
            print(json.dumps(stats), flush=True)
            if step >= args.min_steps:
                save(model, tokenizer, args.out.with_name(args.out.name + ".last"))  # inspectable if stopped
                if meets_targets(stats):
                    break
    else:
        raise SystemExit(f"no checkpoint met {TARGETS} in {args.max_steps} steps (the last one is in "
                         f"{args.out.name}.last); try another --seed")

    save(model, tokenizer, args.out)
    record = {"command": f"python -m sgpo.warmstart --seed {args.seed}", "seed": args.seed, "steps": step,
              "final": history[-1], "targets": TARGETS, "args": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "warmstart.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"saved {args.out} after {step} steps, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
