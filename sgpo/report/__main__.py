"""Compare methods across a train.py multirun: compute to reach a target, and accuracy at equal compute.

    python -m sgpo.report outputs/multiruns/<date>/<time> [--target 0.7] [--benchmarks]

Writes REPORT.md, report.json and PNG plots into the folder. For every method (median over
seeds, with the min-max spread):

- FLOPs to first reach the target test pass@1 (default: GRPO's final pass@1, median over
  seeds) and the ratio GRPO / method (``ratio_vs_grpo``: > 1 means cheaper than GRPO);
- final pass@1 at equal total compute (every run read at the smallest final budget of all);
- shares of total FLOPs wasted on zero-advantage groups and spent on profiling.

When the runs of a method differ in k (``profile.num_samples``) or the allocation rule (a
sweep), each setting is its own row, and a k x allocation table and heat-map are added.

``--benchmarks`` also copies the table and plot to BENCHMARKS.md / BENCHMARKS.json at the repo root.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

import sgpo
from sgpo.report import sweep
from sgpo.report.plots import plot_group_mix, plot_pass1_vs_flops
from sgpo.report.runs import Run, flops_to_reach, pass1_at, read_multirun


def _median(xs: list[float]) -> float:
    finite = [x for x in xs if np.isfinite(x)]
    if len(finite) * 2 <= len(xs):  # most seeds never reached it: the median is inf
        return float("inf")
    return float(statistics.median(sorted(xs)))


def summarize(groups: dict[str, list[Run]], target: float, baseline: str = "grpo") -> dict:
    equal_budget = min(r.curve_flops.max() for rs in groups.values() for r in rs)
    methods = {}
    for name, runs in sorted(groups.items()):
        to_target = [flops_to_reach(r, target) for r in runs]
        finals = [float(r.metrics["test/pass@1"]) for r in runs]
        at_equal = [pass1_at(r, equal_budget) for r in runs]
        total = [float(r.metrics["compute/total_flops"]) for r in runs]
        methods[name] = {
            "seeds": sorted(r.seed for r in runs),
            "flops_to_target": _median(to_target),
            "flops_to_target_range": [min(to_target), max(to_target)],
            "final_pass1": float(statistics.median(finals)),
            "final_pass1_range": [min(finals), max(finals)],
            "pass1_at_equal_compute": float(statistics.median(at_equal)),
            "pass1_before": float(statistics.median(float(r.metrics["test/pass@1_before"]) for r in runs)),
            "total_flops": float(statistics.median(total)),
            "wasted_share": float(statistics.median(
                r.metrics["compute/wasted_flops"] / max(r.metrics["compute/rollout_flops"] + r.metrics["compute/train_flops"], 1)
                for r in runs)),
            "profile_share": float(statistics.median(r.metrics["compute/profile_flops"] / t for r, t in zip(runs, total))),
            "wall_s": float(statistics.median(float(r.metrics.get("wall_s", 0)) for r in runs)),
        }
    base = methods.get(baseline, {}).get("flops_to_target")
    for m in methods.values():
        ok = base is not None and np.isfinite(base) and np.isfinite(m["flops_to_target"])
        m["ratio_vs_grpo"] = float(base / m["flops_to_target"]) if ok else None
    return {"target_pass1": target, "equal_compute_flops": equal_budget, "baseline": baseline, "methods": methods}


def _finite_or_null(obj):
    """JSON has no Infinity/NaN: a target never reached is written as null."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_null(v) for v in obj]
    return obj


def _fmt_flops(x: float) -> str:
    return "never" if not np.isfinite(x) else f"{x:.2e}"


def markdown(report: dict, folder: Path, command: str) -> str:
    lines = [
        "# sGPO vs GRPO: compute-matched comparison", "",
        f"- multirun: `{folder}`",
        f"- command: `{command}`" if command else "",
        f"- made: {report['made']} on {report['machine']}",
        f"- target: test pass@1 >= {report['target_pass1']:.3f} ({report['target_source']})",
        f"- equal-compute point: {report['equal_compute_flops']:.3e} total FLOPs", "",
        "| method | seeds | FLOPs to target (median) | range | ratio vs GRPO | final pass@1 (range) | pass@1 at equal compute"
        " | pass@1 before | wasted share | profiling share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["methods"].items():
        lo, hi = m["flops_to_target_range"]
        ratio = "n/a" if m["ratio_vs_grpo"] is None else f"{m['ratio_vs_grpo']:.2f}x"
        lines.append(
            f"| {name} | {len(m['seeds'])} | {_fmt_flops(m['flops_to_target'])} "
            f"| {_fmt_flops(lo)}-{_fmt_flops(hi)} | {ratio} "
            f"| {m['final_pass1']:.3f} ({m['final_pass1_range'][0]:.3f}-{m['final_pass1_range'][1]:.3f}) "
            f"| {m['pass1_at_equal_compute']:.3f} | {m['pass1_before']:.3f} "
            f"| {m['wasted_share']:.1%} | {m['profile_share']:.1%} |")
    lines += ["", "![test pass@1 vs total FLOPs](pass1_vs_flops.png)", "", "![group-size mix](group_mix.png)", ""]
    if (folder / "p_hat_hist.png").is_file():
        lines += ["![p-hat histogram](p_hat_hist.png)", ""]
    lines += ["ratio vs GRPO = GRPO's median FLOPs to the target / the method's (> 1: the method is cheaper). "
              "Wasted share = FLOPs of zero-advantage groups / (rollout + train FLOPs). Profiling share = "
              "profile FLOPs / total FLOPs.", ""]
    return "\n".join(line for line in lines if line is not None)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--target", type=float, default=None, help="target test pass@1 (default: GRPO's final)")
    parser.add_argument("--baseline", default="grpo")
    parser.add_argument("--command", default="", help="the command that made the multirun (recorded)")
    parser.add_argument("--benchmarks", action="store_true", help="also write BENCHMARKS.md/json at the repo root")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="relabel a method (e.g. runs made before a preset was renamed)")
    args = parser.parse_args(argv)

    renames = dict(item.split("=", 1) for item in args.rename)
    runs = read_multirun(args.folder)
    by_method: dict[str, list[Run]] = {}
    for r in runs:
        r.method = renames.get(r.method, r.method)
        by_method.setdefault(r.method, []).append(r)
    # A method swept over k or allocation rules is split into one group per swept setting.
    swept = [k for k in (sweep.ROW_KEY, sweep.COL_KEY) if any(k in sweep.varying_keys(m) for m in by_method.values())]
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(sweep.label(r, swept), []).append(r)
    if args.target is not None:
        target, source = args.target, "given"
    elif args.baseline in groups:
        target = float(statistics.median(float(r.metrics["test/pass@1"]) for r in groups[args.baseline]))
        source = f"{args.baseline}'s final pass@1, median over seeds"
    else:
        target = float(statistics.median(float(r.metrics["test/pass@1"]) for r in runs))
        source = f"no {args.baseline!r} runs: median final pass@1 of all {len(runs)} runs"
    report = summarize(groups, target, args.baseline)
    if swept:
        report["sweep"] = sweep.grid(runs, target)
    report.update(target_source=source, made=time.strftime("%Y-%m-%d %H:%M %Z"),
                  machine=f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores, {platform.platform()}",
                  command=args.command, sgpo_version=sgpo.__version__)
    folder = args.folder
    plot_pass1_vs_flops(groups, folder / "pass1_vs_flops.png", target)
    plot_group_mix(groups, folder / "group_mix.png")
    profiled = [r.metrics["profile/path"] for r in runs if r.metrics.get("profile/path")]
    hist = Path(profiled[0]) / "p_hat_hist.png" if profiled else None
    if hist is not None and hist.is_file():
        shutil.copy(hist, folder / "p_hat_hist.png")
    text = markdown(report, folder, args.command)
    if "sweep" in report:
        sweep.plot_heatmap(report["sweep"], folder / "sweep_heatmap.png")
        text += "\n".join(sweep.markdown(report["sweep"]))
    (folder / "report.json").write_text(json.dumps(_finite_or_null(report), indent=2) + "\n")
    (folder / "REPORT.md").write_text(text)
    print((folder / "REPORT.md").read_text())
    if args.benchmarks:
        root = sgpo.ROOT_DIR
        assets = root / "benchmarks"
        assets.mkdir(exist_ok=True)
        for png in ("pass1_vs_flops.png", "group_mix.png", "p_hat_hist.png"):
            if (folder / png).is_file():
                shutil.copy(folder / png, assets / png)
        for png in ("sweep_heatmap.png",):
            if (folder / png).is_file():
                shutil.copy(folder / png, assets / png)
        (root / "BENCHMARKS.md").write_text(text.replace("](", "](benchmarks/"))
        (root / "BENCHMARKS.json").write_text(json.dumps(_finite_or_null(report), indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
