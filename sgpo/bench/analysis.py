"""From job summaries to the benchmark's numbers (the BENCHMARKS.json layout).

Per mix: GRPO's gain (median over seeds of final minus before) sets targets at fractions 0.5, 0.75
and 0.9 of it; for every method, the FLOPs each seed needs to reach them (log-linear between
evaluations, sgpo.report.stats) and the FLOPs at which its seed-mean curve reaches them.

The FLOPs ratio (baseline / method, > 1: the method is cheaper) is the **seed-mean-curve ratio**
(stats.bootstrap_mean_curve_ratio): each group's curves are averaged on a shared log-FLOPs grid
before the crossing is found, with a 95% bootstrap interval over seeds. It is the primary statistic
because the targets sit where the curves flatten, where a per-seed crossing turns a small level
difference into a large FLOPs difference; averaging first removes most of that nonlinearity. The
median of per-seed crossings (stats.bootstrap_ratio) stays beside it as ``per_seed_median``.
``best_baseline`` is the cheaper of grpo_skip and dapo at that fraction (seed-mean-curve FLOPs on
one grid for both). Also the final metric, the metric at equal compute (the
smallest final FLOPs of the mix's runs) and its difference to GRPO, the area under the curve over
log-FLOPs, and the shares of wasted and profiling FLOPs. The A/A check compares GRPO on the default
mix's benchmark seeds with GRPO on the A/A seeds, targets from the benchmark seeds, with the same
primary statistic.

Where the FLOPs went (``ledger``): each job's ledger as shares of its total, its optimizer steps and
FLOPs per step, the metric at equal optimizer steps (the fewest steps any job of the mix made), the
waste headroom (the most any rule that only removes zero-advantage FLOPs and the profile could save
that method), and, where the summaries hold the ledger at each evaluation, the wasted share in each
third of the budget.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from sgpo.bench.suite import seeds_of
from sgpo.report import stats

FRACTIONS = {"f50": 0.5, "f75": 0.75, "f90": 0.9}
STATISTIC = "mean_curve"  # the primary FLOPs-ratio statistic (see the module docstring)
METRIC = "test/mean@k"
CHEAP_BASELINES = ("grpo_skip", "dapo")  # candidates for best_baseline


def curve(summary: dict[str, Any], metric: str = METRIC) -> tuple[np.ndarray, np.ndarray]:
    """[E] total FLOPs and metric at each evaluation of a job; of evaluations at equal FLOPs
    (the final one repeating the last schedule point) the later is kept."""
    points: list[tuple[float, float]] = []
    for h in summary["eval_history"]:
        if h.get(metric) is None:
            continue
        f = float(h["compute/total_flops"])
        while points and f <= points[-1][0]:
            points.pop()
        points.append((f, float(h[metric])))
    if not points:
        raise ValueError(f"{summary.get('suite')}/{summary.get('mix')}/{summary.get('method')} seed "
                         f"{summary.get('seed')}: no evaluation holds {metric}")
    flops, acc = zip(*points)
    return np.array(flops), np.array(acc)


def _med(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(statistics.median(vals)) if vals else None


def zero_adv_share(jobs: list[dict[str, Any]], k: int = 8) -> dict[str, float | None]:
    """GRPO's zero-advantage share at G = k before training, from the mix's profiles with k samples
    (each query's p-hat in {0, 1}: its group of k has one reward); medians over the profiled jobs."""
    # one profile per seed: methods of a seed share the cached profile
    by_seed = {j["seed"]: j["profile"] for j in jobs if j.get("profile") and j["profile"].get("num_samples") == k}
    profiles = list(by_seed.values())
    return {"share": _med([p["frac_trivial"] + p["frac_unsolvable"] for p in profiles]),
            "trivial": _med([p["frac_trivial"] for p in profiles]),
            "unsolvable": _med([p["frac_unsolvable"] for p in profiles]), "profiles": len(profiles)}


LEDGER_KEYS = ("profile", "rollout", "train", "wasted")
PHASES = (0.0, 1 / 3, 2 / 3, 1.0)  # budget fractions that split a run into early, middle and late


def ledger_of(summary: dict[str, Any]) -> dict[str, float]:
    """Where one job's FLOPs went, from its final ledger.

    ``<key>_share`` = compute/<key>_flops / compute/total_flops, where total = profile + rollout + train
    and wasted is the zero-advantage part of rollout + train; ``steps`` the optimizer steps,
    ``rollout_per_step`` / ``train_per_step`` the FLOPs per step; ``headroom`` = 1 / (1 - (wasted +
    profile) / total): how many times cheaper the same useful (nonzero-advantage) FLOPs would be with
    no zero-advantage rollout or row and no profile, the most a rule that only cuts those could save.
    """
    f = summary["final"]
    total = float(f["compute/total_flops"])
    out = {f"{k}_share": float(f.get(f"compute/{k}_flops", 0.0)) / total for k in LEDGER_KEYS}
    steps = float(f.get("train/steps") or 0.0)
    out["steps"] = steps
    out["rollout_per_step"] = float(f["compute/rollout_flops"]) / steps if steps else float("nan")
    out["train_per_step"] = float(f["compute/train_flops"]) / steps if steps else float("nan")
    cut = out["wasted_share"] + out["profile_share"]
    out["headroom"] = 1.0 / (1.0 - cut) if cut < 1 else float("inf")
    return out


def phase_wasted_shares(summary: dict[str, Any], edges: Sequence[float] = PHASES) -> list[float] | None:
    """[P] wasted / (rollout + train) FLOPs spent between consecutive fractions ``edges`` of the run's
    total FLOPs: the cumulative ledger, known at each evaluation and at the end, is interpolated
    linearly in total FLOPs at each edge. None when the evaluation history does not hold the ledger
    (summaries written before it did) or a phase spent nothing on rollouts or training."""
    hist = [h for h in summary["eval_history"] if "compute/wasted_flops" in h]
    if not hist:
        return None
    keys = ("compute/wasted_flops", "compute/rollout_flops", "compute/train_flops")
    points = sorted({float(h["compute/total_flops"]): h for h in [*hist, summary["final"]]}.items())
    totals = np.array([0.0] + [t for t, _ in points])
    cum = {k: np.array([0.0] + [float(h[k]) for _, h in points]) for k in keys}
    at = np.asarray(edges, dtype=float) * totals[-1]
    marks = {k: np.interp(at, totals, v) for k, v in cum.items()}
    spent = np.diff(marks["compute/rollout_flops"]) + np.diff(marks["compute/train_flops"])
    if (spent <= 0).any():
        return None
    return (np.diff(marks["compute/wasted_flops"]) / spent).tolist()


def acc_at_steps(summary: dict[str, Any], steps: float, metric: str = METRIC) -> float:
    """The metric after ``steps`` optimizer steps, linear between evaluations; nan past the last one."""
    pts = sorted((float(h["train/steps"]), float(h[metric])) for h in summary["eval_history"]
                 if h.get(metric) is not None and "train/steps" in h)
    if not pts or steps > pts[-1][0] or steps < pts[0][0]:
        return float("nan")
    xs, ys = zip(*pts)
    return float(np.interp(steps, xs, ys))


def ratio_entry(base: dict, method: dict, fraction: str, target: float, n_boot: int) -> dict[str, Any]:
    """Baseline / method FLOPs to ``target`` (at ``fraction``): the seed-mean-curve ratio and its
    interval (stats.bootstrap_mean_curve_ratio on a grid up to the budget both groups reached), with
    the median of per-seed crossings (stats.bootstrap_ratio) under ``per_seed_median``.

    base, method: {"curves": [(flops, acc)] per seed, "flops_to": {fraction: [per-seed FLOPs]},
    "budgets": [per-seed final FLOPs]}."""
    grid = mean_curve_grid(base["curves"] + method["curves"])
    out = stats.bootstrap_mean_curve_ratio(base["curves"], method["curves"], target, grid, n_boot=n_boot)
    per_seed = stats.bootstrap_ratio(base["flops_to"][fraction], method["flops_to"][fraction], n_boot=n_boot,
                                     base_budgets=base["budgets"])
    return dict(out, statistic=STATISTIC, per_seed_median=per_seed)


def analyse_mix(jobs: list[dict[str, Any]], methods: Sequence[str], baselines: Sequence[str], metric: str = METRIC,
                n_boot: int = 10000) -> dict[str, Any]:
    """Numbers of one mix from its jobs (benchmark seeds only)."""
    by_method: dict[str, list[dict[str, Any]]] = {}
    for j in jobs:
        by_method.setdefault(j["method"], []).append(j)
    curves = {m: [curve(j, metric) for j in sorted(js, key=lambda j: j["seed"])] for m, js in by_method.items()}
    out: dict[str, Any] = {"zero_adv": zero_adv_share(jobs), "methods": {}}
    out["grpo_zero_adv_share"] = out["zero_adv"]["share"]
    gain = 0.0
    if "grpo" not in curves:
        out["note"] = "no GRPO runs: no targets, no FLOPs ratios"
    else:
        before, final, gain = stats.baseline_gain(curves["grpo"])
        out.update(grpo_before=before, grpo_final=final, grpo_gain=gain,
                   targets={f: stats.target_for(before, gain, frac) for f, frac in FRACTIONS.items()})
        if gain <= 0:
            out["note"] = f"GRPO gained nothing on {metric} (median gain {gain:.4f}): FLOPs-to-target ratios are undefined"
    targets = out.get("targets", {})
    equal = min(float(f[-1]) for cs in curves.values() for f, _ in cs)
    lo = max(float(f[f > 0][0]) for cs in curves.values() for f, _ in cs)
    out["equal_compute_flops"] = equal
    stepped = [float(j["final"]["train/steps"]) for j in jobs if j["final"].get("train/steps")]
    equal_steps = min(stepped) if stepped else None
    out["equal_steps"] = equal_steps
    per: dict[str, dict[str, Any]] = {}
    for m, cs in curves.items():
        per[m] = {
            "curves": cs,
            "flops_to": {f: [stats.flops_to_reach(fl, a, t) for fl, a in cs] for f, t in targets.items()},
            "budgets": [float(fl[-1]) for fl, _ in cs],
            "at_equal": [stats.acc_at(fl, a, equal) for fl, a in cs],
            "auc": [stats.auc_log_flops(fl, a, lo, equal) if lo < equal else float("nan") for fl, a in cs],
            "final": [float(a[-1]) for _, a in cs],
        }
    undefined = {"median": None, "ci": [None, None], "never": None, "lower_bound": None}
    mix_grid = mean_curve_grid([c for cs in curves.values() for c in cs])  # where every run of the mix has a value
    for m in [m for m in methods if m in per]:
        js, p = by_method[m], per[m]
        ledger = _ledger_medians(js)
        entry: dict[str, Any] = {
            "seeds": sorted(j["seed"] for j in js),
            "lr": sorted({j["config"]["optim"]["lr"] for j in js if "config" in j}),
            "flops_to": {f: {"median": stats.median(v), "per_seed": v,
                             "mean_curve": stats.curves_mean_flops(p["curves"], mix_grid, targets[f])}
                         for f, v in p["flops_to"].items()},
            "final": stats.bootstrap_median(p["final"], n_boot=n_boot),
            "at_equal_compute": stats.bootstrap_median(p["at_equal"], n_boot=n_boot),
            "auc_log_flops": _med(p["auc"]),
            "wasted_share": _med([j["final"]["compute/wasted_flops"] / max(
                j["final"]["compute/rollout_flops"] + j["final"]["compute/train_flops"], 1.0) for j in js]),
            "profile_share": ledger["profile_share"],
            "wall_s": _med([j["wall_s"] for j in js]),
            "ledger": ledger,
            "at_equal_steps": _finite_median([acc_at_steps(j, equal_steps, metric) for j in js] if equal_steps else [],
                                             n_boot),
            "ratio_vs": {},
        }
        if m != "grpo" and "grpo" in per:
            entry["at_equal_compute_minus_grpo"] = stats.bootstrap_diff(per["grpo"]["at_equal"], p["at_equal"], n_boot=n_boot)
        others = [b for b in baselines if b != m]
        cheap = [b for b in CHEAP_BASELINES if b in baselines and b != m and b in per]
        for b in others + (["best_baseline"] if cheap else []):
            entry["ratio_vs"][b] = {f: dict(undefined) for f in FRACTIONS}
        if gain > 0:
            for b in [b for b in others if b in per]:
                entry["ratio_vs"][b] = {f: ratio_entry(per[b], p, f, targets[f], n_boot) for f in FRACTIONS}
            for f in FRACTIONS if cheap else ():
                name = cheapest_baseline({b: per[b]["curves"] for b in cheap}, targets[f])
                entry["ratio_vs"]["best_baseline"][f] = dict(ratio_entry(per[name], p, f, targets[f], n_boot),
                                                             baseline=name)
        out["methods"][m] = entry
    return out


def cheapest_baseline(curves_by_baseline: dict[str, list[tuple[np.ndarray, np.ndarray]]], target: float) -> str:
    """The baseline whose seed-mean curve reaches ``target`` at the fewest FLOPs, every baseline's
    mean curve on one grid (mean_curve_grid of all their runs); ties (all never) go to the first."""
    grid = mean_curve_grid([c for cs in curves_by_baseline.values() for c in cs])
    cost = {b: stats.curves_mean_flops(cs, grid, target) for b, cs in curves_by_baseline.items()}
    return min(cost, key=lambda b: cost[b])


def _finite_median(values: list[float], n_boot: int) -> dict[str, Any] | None:
    """bootstrap_median of the finite values, with their count ``n``; None when none is finite."""
    vals = [v for v in values if np.isfinite(v)]
    return dict(stats.bootstrap_median(vals, n_boot=n_boot), n=len(vals)) if vals else None


def _ledger_medians(js: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed ledgers (ledger_of) reduced to their medians; phase shares where every seed has them."""
    per = [ledger_of(j) for j in js]
    out: dict[str, Any] = {k: _med([p[k] for p in per]) for k in per[0]}
    phases = [phase_wasted_shares(j) for j in js]
    out["phase_wasted_share"] = ([_med(list(v)) for v in zip(*phases)] if all(p is not None for p in phases)
                                 else None)
    return out


def analyse_aa(bench: list[dict[str, Any]], aa: list[dict[str, Any]], metric: str = METRIC,
               n_boot: int = 10000) -> dict[str, Any] | None:
    """GRPO on the benchmark seeds (A) against GRPO on the A/A seeds (B), targets from A; None without both."""
    if not bench or not aa:
        return None
    a, b = [curve(j, metric) for j in bench], [curve(j, metric) for j in aa]
    before, _, gain = stats.baseline_gain(a)
    out: dict[str, Any] = {"seeds_a": sorted(j["seed"] for j in bench), "seeds_b": sorted(j["seed"] for j in aa)}
    if gain <= 0:
        out.update({f: {"median": None, "ci": [None, None], "never": None, "lower_bound": None} for f in FRACTIONS},
                   ok=False, verdict=f"GRPO on seeds {out['seeds_a']} gained nothing on {metric} (median gain "
                                     f"{gain:.4f}): no targets, no A/A ratio")
        return out
    def group(cs):
        return {"curves": cs, "budgets": [float(fl[-1]) for fl, _ in cs],
                "flops_to": {f: [stats.flops_to_reach(fl, acc, stats.target_for(before, gain, frac)) for fl, acc in cs]
                             for f, frac in FRACTIONS.items()}}
    ga, gb = group(a), group(b)
    for f, frac in FRACTIONS.items():
        out[f] = ratio_entry(ga, gb, f, stats.target_for(before, gain, frac), n_boot)
    out["statistic"] = STATISTIC
    out["ok"], out["verdict"] = stats.aa_check(out["f90"])
    ok, verdict = stats.aa_check(out["f90"]["per_seed_median"])
    out["per_seed_median"] = {"ok": ok, "verdict": verdict}
    return out


def aa_power(curves: Sequence[tuple[np.ndarray, np.ndarray]], sizes: Sequence[int], draws: int = 200,
             n_boot: int = 500, fraction: float = 0.9, seed: int = 0) -> dict[int, dict[str, float]]:
    """How often the A/A check would pass with ``n`` seeds per group, estimated from R runs of one
    method (GRPO on the default mix): for each n with 2n <= R, ``draws`` random splits into two
    disjoint groups of n; each split's targets come from its first group (as in analyse_aa), its
    seed-mean-curve ratio at ``fraction`` gets a bootstrap interval of ``n_boot`` resamples, and
    passes as stats.aa_check says. Returns {n: {"pass_rate", "median_width" (of the interval in
    log2 units, hi / lo), "draws"}}. An estimate: the splits reuse the same R runs, so for 2n close
    to R they are far from independent; it says how many seeds to plan for, it is not the check."""
    rng = np.random.default_rng(seed)
    out: dict[int, dict[str, float]] = {}
    for n in sizes:
        if 2 * n > len(curves):
            continue
        passed, widths = 0, []
        for _ in range(draws):
            order = rng.permutation(len(curves))
            a, b = [curves[i] for i in order[:n]], [curves[i] for i in order[n:2 * n]]
            before, _, gain = stats.baseline_gain(a)
            if gain <= 0:
                continue
            r = stats.bootstrap_mean_curve_ratio(a, b, stats.target_for(before, gain, fraction), mean_curve_grid(a + b),
                                                 n_boot=n_boot, seed=int(rng.integers(2**31)))
            passed += stats.aa_check(r)[0]
            lo, hi = r["ci"]
            widths.append(float(np.log2(hi / lo)) if lo > 0 and np.isfinite(hi) else float("inf"))
        out[n] = {"pass_rate": passed / draws, "median_width": stats.median(widths) if widths else None, "draws": draws}
    return out


def mean_curve_grid(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 200) -> np.ndarray:
    """[points] log-spaced FLOPs from the runs' smallest first positive evaluation to their smallest
    final FLOPs (the budget every run reached), after a first point at 0 when some run is evaluated
    there (so a target reached before the first positive point is found linear in FLOPs, as
    stats.flops_to_reach does for one run): where seed-mean curves are compared."""
    lo = min(float(f[f > 0][0]) for f, _ in curves)
    hi = min(float(f[-1]) for f, _ in curves)
    grid = np.unique(np.logspace(np.log10(lo), np.log10(hi), points)) if hi > lo else np.array([hi])
    return np.concatenate([[0.0], grid]) if any(float(f[0]) == 0 for f, _ in curves) else grid


def analyse(summaries: list[dict[str, Any]], suite: dict[str, Any], metric: str = METRIC, n_boot: int = 10000) -> dict:
    """The whole report: per mix (benchmark seeds) and the A/A check."""
    aa_seeds = set(suite["aa_seeds"])
    mixes = {}
    for mix in suite["mixes"]:
        jobs = [s for s in summaries if s["mix"] == mix and s["seed"] in seeds_of(suite, mix)]
        if jobs:
            mixes[mix] = analyse_mix(jobs, suite["methods"], suite["baselines"], metric, n_boot)
    grpo_default = [s for s in summaries if s["mix"] == "default" and s["method"] == "grpo"]
    bench = set(seeds_of(suite, "default"))
    aa = analyse_aa([s for s in grpo_default if s["seed"] in bench], [s for s in grpo_default if s["seed"] in aa_seeds],
                    metric, n_boot)
    ks = sorted({s["config"]["eval"]["k"] for s in summaries if "config" in s})
    return {"suite": suite["name"], "metric": metric, "eval_k": ks[0] if len(ks) == 1 else ks,
            "fractions": FRACTIONS, "statistic": STATISTIC, "jobs": len(summaries),
            "wall_s_total": float(sum(s.get("wall_s") or 0.0 for s in summaries)), "aa": aa, "mixes": mixes}


def analyse_tuning(summaries: list[dict[str, Any]], metric: str = "val/mean@k") -> dict[str, Any]:
    """Per method and learning rate: the median over seeds of the final ``metric``; the best lr per method."""
    table: dict[str, dict[float, list[float]]] = {}
    for s in summaries:
        table.setdefault(s["method"], {}).setdefault(float(s["lr"]), []).append(float(curve(s, metric)[1][-1]))
    out = {}
    for method, by_lr in table.items():
        medians = {lr: float(statistics.median(v)) for lr, v in sorted(by_lr.items())}
        out[method] = {"final": medians, "seeds": {lr: len(v) for lr, v in sorted(by_lr.items())},
                       "best_lr": max(medians, key=lambda lr: (medians[lr], -lr))}
    return {"metric": metric, "methods": out}
