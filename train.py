"""Training: python train.py [method=sgpo|grpo|dapo|...] [task=...] [model=...] [engine=hf|vllm]

Runs the sGPO pipeline (see sgpo/training.py): the cached difficulty profile when the method uses
one (profiled first if none matches), the query and group-size choice (the adaptive selection, or
filtering, group-size allocation and curriculum), Lightning training, held-out
evaluation; writes the trained policy and metrics.json into the run folder. A bad config value
ends it at start with ``error: <key>=<value>: <what is valid>`` and exit code 2.
"""

import sys

import hydra

import sgpo  # noqa: F401 - registers the ${sgpo_root:} resolver before Hydra composes the config
from sgpo.config import ConfigError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg):
    from sgpo.training import run

    try:
        metrics = run(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
