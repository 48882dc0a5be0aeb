"""Print one row per job of a train.py multirun: seed, method, pass@1 before/after, FLOPs.

    python scripts/summarize_multirun.py outputs/multiruns/<date>/<time>
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import yaml


def main(folder: Path) -> None:
    rows = []
    for metrics_path in sorted(folder.glob("*/metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        cfg = yaml.safe_load((metrics_path.parent / ".hydra" / "config.yaml").read_text())
        rows.append((cfg["method_name"], cfg["seed"], metrics["test/pass@1_before"], metrics["test/pass@1"],
                     metrics.get("test/mean@k_before"), metrics["test/mean@k"], metrics["compute/total_flops"],
                     metrics["wall_s"]))
    if not rows:
        sys.exit(f"no */metrics.json under {folder}")
    print(f"{'method':<22}{'seed':>5}{'pass@1 before':>15}{'pass@1':>9}{'mean@k before':>15}{'mean@k':>9}"
          f"{'total FLOPs':>13}{'wall s':>8}")
    for r in rows:
        print(f"{r[0]:<22}{r[1]:>5}{r[2]:>15.3f}{r[3]:>9.3f}{r[4]:>15.3f}{r[5]:>9.3f}{r[6]:>13.3e}{r[7]:>8.0f}")
    gains = [r[3] - r[2] for r in rows]
    if len(rows) > 1:
        finals = [r[3] for r in rows]
        print(f"\npass@1 gain mean {statistics.mean(gains):+.3f}; final pass@1 spread across jobs "
              f"(max - min) {max(finals) - min(finals):.3f}, std {statistics.stdev(finals):.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
