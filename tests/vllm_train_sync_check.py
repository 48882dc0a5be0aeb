"""Run by tests/test_vllm.py in its own process (vLLM wants a __main__ guard).

Trains 2 steps with ``engine=vllm`` through ``sgpo.training.train`` (the code behind train.py),
then prints JSON comparing log-probs of a fixed sequence under the trained policy, under the
initial policy and inside the run's vLLM engine: the engine must hold the trained weights.
"""

import json
import sys
from pathlib import Path

if __name__ == "__main__":
    import torch
    from hydra import compose, initialize_config_dir

    from sgpo.models import load_policy
    from sgpo.rollouts import token_logprobs
    from sgpo.training import train

    repo, tmp = Path(__file__).resolve().parent.parent, Path(sys.argv[1])
    with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "engine=vllm", "method=grpo", "profile.max_queries=64", "eval.max_queries=16", "eval.k=2",
            "data.rollouts_per_step=64", "train.max_steps=2", "eval.every_n_steps=0", "checkpoint.every_n_steps=0",
            "optim.lr=1e-2", f"paths.output_dir={tmp / 'out'}", f"paths.run_dir={tmp / 'run'}"])
    metrics, objects = train(cfg)
    module = objects["module"]
    tokenizer = module.tokenizer
    fixed = tokenizer("4821+9305=14126").input_ids + [tokenizer.eos_token_id]
    ids = torch.tensor([fixed])

    def logprobs(model) -> list[float]:
        with torch.no_grad():
            return token_logprobs(model.eval(), ids, torch.ones_like(ids))[0].tolist()

    trained, initial = logprobs(module.policy), logprobs(load_policy(cfg.model.path)[0])
    in_engine = module.engine.sequence_logprobs(fixed)
    print(json.dumps({
        "steps": metrics["train/steps"], "rollout_flops": metrics["compute/rollout_flops"],
        "steps_without_update": module.counters["train/steps_without_update"],
        "max_abs_diff_trained_vs_initial": max(abs(a - b) for a, b in zip(trained, initial)),
        "max_abs_diff_engine_vs_trained": max(abs(a - b) for a, b in zip(in_engine, trained)),
    }))
