"""BENCHMARKS.md text from the analysis (sgpo/bench/analysis.py)."""

from __future__ import annotations

import math
from typing import Any

from sgpo.bench.analysis import FRACTIONS


def _num(x: float | None, fmt: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "∞" if math.isinf(x) else format(x, fmt)


def ratio_text(r: dict[str, Any] | None) -> str:
    """'1.31 [0.95, 1.80]'; a method that never reached the target: 'never (3 seeds)' (median of
    per-seed crossings: on most seeds) or 'never (seed-mean curve)'; with a lower bound (the baseline
    never reached it): '≥ 1.4'."""
    if r is None or r["median"] is None:
        return "n/a"
    if r.get("lower_bound") is not None:
        return f"≥ {r['lower_bound']:.2f}"
    if r["median"] == 0:
        return "never (seed-mean curve)" if r.get("statistic") == "mean_curve" else f"never ({r['never']} seeds)"
    lo, hi = r["ci"]
    return f"{_num(r['median'])} [{_num(lo)}, {_num(hi)}]"


def interval_text(x: dict[str, Any] | None, fmt: str = ".3f") -> str:
    if x is None:
        return "n/a"
    return f"{_num(x['median'], fmt)} [{_num(x['ci'][0], fmt)}, {_num(x['ci'][1], fmt)}]"


def mix_section(name: str, mix: dict[str, Any], metric: str, baselines: list[str]) -> list[str]:
    za = mix["zero_adv"]
    lines = [f"## Mix `{name}`", ""]
    if za["share"] is not None:
        lines.append(f"GRPO's zero-advantage share at G = 8 before training: {za['share']:.1%} ({za['trivial']:.1%} "
                     f"solved every time, {za['unsolvable']:.1%} never; median of {za['profiles']} k = 8 profiles).")
    if "grpo_gain" in mix:
        t = ", ".join(f"{f} {v:.3f}" for f, v in mix["targets"].items())
        lines.append(f"GRPO: {metric} {mix['grpo_before']:.3f} before, {mix['grpo_final']:.3f} at the end (median gain "
                     f"{mix['grpo_gain']:+.3f}); targets {t}; equal compute at {mix['equal_compute_flops']:.3e} FLOPs.")
    if mix.get("note"):
        lines.append(f"**{mix['note']}**")
    lines += ["", f"| method | seeds | final {metric} | at equal compute | minus GRPO | AUC over log-FLOPs "
              "| wasted | profiling | wall (median) |", "|---|---|---|---|---|---|---|---|---|"]
    for m, e in mix["methods"].items():
        lines.append(f"| {m} | {len(e['seeds'])} | {interval_text(e['final'])} | {interval_text(e['at_equal_compute'])} "
                     f"| {interval_text(e.get('at_equal_compute_minus_grpo'), '+.3f')} | {_num(e['auc_log_flops'], '.3f')} "
                     f"| {_num(e['wasted_share'], '.1%')} | {_num(e['profile_share'], '.1%')} | {_num(e['wall_s'], '.0f')} s |")
    cols = [b for b in baselines] + ["best_baseline"]
    for f in FRACTIONS if mix.get("grpo_gain", 0) > 0 else ():
        lines += ["", f"FLOPs ratio at {f} (baseline / method at which each seed-mean curve reaches the target "
                  "[95% bootstrap interval over seeds]; > 1: the method is cheaper; the median of per-seed crossings "
                  "is in BENCHMARKS.json as per_seed_median):", "",
                  f"| method | FLOPs to {f} (seed-mean curve) | FLOPs to {f} (median of seeds) | "
                  + " | ".join(f"vs {c}" for c in cols) + " |",
                  "|---|---|---|" + "---|" * len(cols)]
        for m, e in mix["methods"].items():
            cells = []
            for c in cols:
                r = e["ratio_vs"].get(c, {}).get(f)
                cell = ratio_text(r)
                if c == "best_baseline" and r is not None:
                    cell += f" ({r['baseline']})"
                cells.append("—" if c == m else cell)
            lines.append(f"| {m} | {_num(e['flops_to'][f].get('mean_curve'), '.3e')} "
                         f"| {_num(e['flops_to'][f]['median'], '.3e')} | " + " | ".join(cells) + " |")
    lines += ledger_section(mix, metric)
    lines += ["", f"![{name}: {metric} against total FLOPs](curves_{name}.png)", ""]
    return lines


def ledger_section(mix: dict[str, Any], metric: str) -> list[str]:
    """Where the FLOPs went: per method the medians over seeds of its ledger (analysis.ledger_of)."""
    methods = {m: e for m, e in mix["methods"].items() if e.get("ledger")}
    if not methods:
        return []
    steps = mix.get("equal_steps")
    lines = ["", "Where the FLOPs went (medians over seeds): optimizer steps and FLOPs per step; each part's share "
             "of the total; headroom = total / (total - zero-advantage FLOPs - profile), the most a rule that only "
             "cuts those could save the method; the metric at equal optimizer steps; the wasted share (as above) "
             "in each third of the budget:", "",
             f"| method | steps | rollout / step | train / step | profile | rollout | train | headroom "
             f"| {metric} at step {_num(steps, '.0f')} | wasted by budget third |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m, e in methods.items():
        g = e["ledger"]
        phases = g.get("phase_wasted_share")
        phase_text = " / ".join(_num(x, ".0%") for x in phases) if phases else "n/a"
        lines.append(f"| {m} | {_num(g['steps'], '.0f')} | {_num(g['rollout_per_step'], '.2e')} "
                     f"| {_num(g['train_per_step'], '.2e')} | {_num(g['profile_share'], '.1%')} "
                     f"| {_num(g['rollout_share'], '.1%')} | {_num(g['train_share'], '.1%')} "
                     f"| {_num(g['headroom'], '.2f')}x "
                     f"| {interval_text(e.get('at_equal_steps'))} | {phase_text} |")
    return lines


def companion_section(name: str, report: dict[str, Any], baselines: list[str], fraction: str = "f90") -> list[str]:
    """Another suite's methods (not its baselines) in one table: each mix's FLOPs ratio at
    ``fraction`` against grpo and the best baseline, final metric and wasted share, from that suite's
    own report (its seeds, budget and split; not pooled with this report's numbers)."""
    lines = [f"### `{name}` ({report['jobs']} jobs; `benchmarks/runs/{name}/REPORT.md`)", "",
             f"| mix | method | seeds | {fraction} vs grpo | {fraction} vs best baseline | final {report['metric']} "
             "| wasted |", "|---|---|---|---|---|---|---|"]
    rows = 0
    for mix_name, mix in report["mixes"].items():
        for m, e in mix["methods"].items():
            if m in baselines:
                continue
            best = e["ratio_vs"].get("best_baseline", {}).get(fraction)
            best_text = ratio_text(best) + (f" ({best['baseline']})" if best and best.get("baseline") else "")
            lines.append(f"| {mix_name} | {m} | {len(e['seeds'])} | {ratio_text(e['ratio_vs'].get('grpo', {}).get(fraction))} "
                         f"| {best_text} | {interval_text(e['final'])} | {_num(e['wasted_share'], '.1%')} |")
            rows += 1
    return lines + [""] if rows else lines[:2] + ["No method besides its baselines has finished jobs.", ""]


def _first_mix_methods(report: dict[str, Any]) -> dict[str, Any]:
    return next(iter(report["mixes"].values()), {}).get("methods", {})


def render(report: dict[str, Any], suite: dict[str, Any], command: str, made: str, machine: str,
           has_ratio_plot: bool, prefix: str = "") -> str:
    metric = report["metric"]
    lines = [f"# Compute-matched benchmark (`{report['suite']}`)", "",
             f"- command: `{command}`", f"- made: {made} on {machine}; {report['jobs']} finished jobs"
             + (f", {report['wall_s_total'] / 3600:.1f} h of job wall time (a copied job counts its first run's)"
                if report.get("wall_s_total") else ""),
             f"- metric: {metric} (k = {report.get('eval_k')} samples per query at T = 1; each point's standard "
             "error is in the job summaries), evaluated at shared total-FLOPs points",
             f"- seeds: {suite['seeds']} (benchmark)"
             + "".join(f"; mix {m}: {v}" for m, v in suite.get("mix_seeds", {}).items())
             + f", A/A seeds: {suite['aa_seeds'] or 'none'}",
             "- FLOPs ratios: baseline / method FLOPs at which each group's seed-mean curve (curves averaged on a "
             "shared log-FLOPs grid) reaches the target, 95% bootstrap interval over seeds (sgpo/bench/analysis.py)",
             "- learning rates (each job's optim.lr; conf/experiment/bench.yaml's tuned_lr, chosen by "
             "`python -m sgpo.bench tune` or `dev` on val with seeds 0-1, or 1e-4 where it has none): "
             + ", ".join(f"{m} {'/'.join(f'{lr:g}' for lr in e['lr'])}" for m, e in _first_mix_methods(report).items()),
             f"- job summaries: `benchmarks/runs/{report['suite']}/` (rebuild this file with "
             f"`python -m sgpo.bench {report['suite']} --report-only --benchmarks`)", ""]
    aa = report.get("aa")
    if aa:
        ratios = ", ".join(f"{f} {ratio_text(aa[f])}" for f in FRACTIONS if aa.get(f, {}).get("median") is not None)
        lines += ["## A/A check", "",
                  f"GRPO seeds {aa['seeds_a']} against seeds {aa['seeds_b']}, seed-mean-curve ratio"
                  + (f": {ratios}." if ratios else "."),
                  f"**{aa['verdict']}** (passes when the f90 interval contains 1 and lies inside [0.8, 1.25]).", ""]
        if aa.get("per_seed_median"):
            per_seed = ", ".join(f"{f} {ratio_text(aa[f]['per_seed_median'])}" for f in FRACTIONS
                                 if aa.get(f, {}).get("per_seed_median"))
            lines += [f"The same seeds with the median of per-seed crossings (the secondary statistic): {per_seed}. "
                      f"{aa['per_seed_median']['verdict']}.", ""]
    else:
        lines += ["## A/A check", "", "Not run in this suite (`python -m sgpo.bench full` runs it).", ""]
    if has_ratio_plot:
        lines += ["![FLOPs ratio to GRPO against GRPO's zero-advantage share](" + prefix + "ratio_vs_zero_adv.png)", ""]
    for name, mix in report["mixes"].items():
        lines += mix_section(name, mix, metric, suite["baselines"])
    text = "\n".join(lines)
    return text.replace("](curves_", f"]({prefix}curves_")
