"""Print one row per job of a train.py multirun: seed, method, pass@1 before/after, FLOPs.

    python scripts/summarize_multirun.py outputs/multiruns/<date>/<time>
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from sgpo.report.runs import read_multirun


def main(folder: Path) -> None:
    runs = read_multirun(folder)
    print(f"{'method':<22}{'seed':>5}{'pass@1 before':>15}{'pass@1':>9}{'mean@k before':>15}{'mean@k':>9}"
          f"{'total FLOPs':>13}{'wall s':>8}")
    for r in runs:
        m = r.metrics
        print(f"{r.method:<22}{r.seed:>5}{m['test/pass@1_before']:>15.3f}{m['test/pass@1']:>9.3f}"
              f"{m['test/mean@k_before']:>15.3f}{m['test/mean@k']:>9.3f}{m['compute/total_flops']:>13.3e}{m['wall_s']:>8.0f}")
    finals = [r.metrics["test/pass@1"] for r in runs]
    gains = [r.metrics["test/pass@1"] - r.metrics["test/pass@1_before"] for r in runs]
    if len(runs) > 1:
        print(f"\npass@1 gain mean {statistics.mean(gains):+.3f}; final pass@1 spread across jobs "
              f"(max - min) {max(finals) - min(finals):.3f}, std {statistics.stdev(finals):.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
