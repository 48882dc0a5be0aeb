"""Training: python train.py [method=sgpo|grpo|dapo|...] [task=...] [model=...] [engine=hf|vllm]

Runs the sGPO pipeline (see sgpo/training.py): the cached difficulty profile (profiled first if
none matches), filtering, group-size allocation, curriculum, Lightning training, held-out
evaluation; writes the trained policy and metrics.json into the run folder.
"""

import hydra

import sgpo  # noqa: F401 - registers the ${sgpo_root:} resolver before Hydra composes the config


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg):
    from sgpo.training import run

    metrics = run(cfg)
    return metrics.get(cfg.get("optimized_metric") or "test/pass@1")


if __name__ == "__main__":
    main()
