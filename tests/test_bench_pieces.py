"""The benchmark's pieces on hand-made inputs: difficulty mixes, suites, the analysis and its text."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from sgpo.bench import analysis
from sgpo.bench.markdown import mix_section, ratio_text
from sgpo.bench.plots import never_points, plot_ratio_vs_share, ratio_points
from sgpo.bench.suite import Job, job_overrides, jobs_of, load_suite
from sgpo.tasks.arithmetic import ArithmeticTask
from sgpo.tasks.base import Query
from sgpo.tasks.difficulty_pool import CLASSES, class_counts, class_of, draw_by_difficulty, load_pool_file

# --- difficulty mixes ------------------------------------------------------------------------------


def test_class_counts_are_proportional_and_sum_to_the_total():
    assert class_counts({"trivial": 0.9, "mixed": 0.1, "unsolvable": 0.0}, 2048) == {
        "trivial": 1843, "mixed": 205, "unsolvable": 0}  # 1843.2 and 204.8: the larger remainder gets the spare one
    assert class_counts({"trivial": 0.5, "mixed": 0.5}, 3) == {"trivial": 2, "mixed": 1, "unsolvable": 0}  # tie: first
    assert class_counts({"unsolvable": 1.0}, 7) == {"trivial": 0, "mixed": 0, "unsolvable": 7}
    for bad in ({"trivial": 0.5}, {"trivial": 1.2, "mixed": -0.2}, {"easy": 1.0}):
        with pytest.raises(ValueError, match="task.pool.shares"):
            class_counts(bad, 10)


def queries(n: int) -> list[Query]:
    return [Query(id=f"q{i}", prompt=f"{i}+0=", answer=str(i)) for i in range(n)]


def test_draw_by_difficulty_takes_each_class_share_in_candidate_order():
    pool = queries(12)
    # 4 of each class; sample counts differ (a confirmed extreme has more samples than a mixed one)
    counts = {f"q{i}": ((12, 12) if i % 3 == 0 else (0, 12) if i % 3 == 1 else (2, 4)) for i in range(12)}
    shares = {"trivial": 0.5, "mixed": 0.25, "unsolvable": 0.25}
    picked = draw_by_difficulty(pool, counts, shares, 4, seed=3)
    assert sorted(counts[q.id] for q in picked) == [(0, 12), (2, 4), (12, 12), (12, 12)]
    assert [q.id for q in picked] == sorted((q.id for q in picked), key=lambda s: int(s[1:]))  # candidate order
    assert picked == draw_by_difficulty(pool, counts, shares, 4, seed=3)
    others = {tuple(q.id for q in draw_by_difficulty(pool, counts, {"trivial": 1.0}, 2, seed=s)) for s in range(8)}
    assert len(others) > 1, "the seed picks which trivial queries"
    assert {counts[q.id] for q in draw_by_difficulty(pool, counts, {"trivial": 1.0}, 4, seed=0)} == {(12, 12)}
    with pytest.raises(ValueError, match=r"ask for 5 trivial queries of 5, the pool has 4 \(12 candidates\)"):
        draw_by_difficulty(pool, counts, {"trivial": 1.0}, 5, seed=0)
    with pytest.raises(ValueError, match="1 of 12 candidates have no count.*first: q11"):
        draw_by_difficulty(pool, {q: c for q, c in counts.items() if q != "q11"}, {"trivial": 1.0}, 2, seed=0)


def test_pool_file_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m sgpo.bench pool"):
        load_pool_file(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"successes": {"a": 1}}))
    with pytest.raises(ValueError, match="bad.json: not a selection profile"):
        load_pool_file(bad)
    bad.write_text(json.dumps({"counts": {"a": [3, 2]}}))
    with pytest.raises(ValueError, match=r"first bad id: a: \[3, 2\]"):
        load_pool_file(bad)
    bad.write_text(json.dumps({"counts": {"a": [1, 2], "b": [0, 8]}}))
    assert load_pool_file(bad) == {"a": (1, 2), "b": (0, 8)}
    packed = tmp_path / "pool.json.gz"
    packed.write_bytes(gzip.compress(bad.read_bytes()))
    assert load_pool_file(packed) == {"a": (1, 2), "b": (0, 8)}
    packed.write_bytes(gzip.compress(bad.read_bytes())[:-6])  # cut short
    with pytest.raises(ValueError, match="pool.json.gz: not a selection profile"):
        load_pool_file(packed)


@pytest.mark.parametrize("preset, size, shares", [("arithmetic_easy", 168, {"trivial": 0.95, "mixed": 0.05}),
                                                  ("arithmetic_hard", 2048, {"mixed": 0.1, "unsolvable": 0.9})])
def test_shipped_mixes_draw_their_shares_from_the_committed_pool_files(preset, size, shares):
    """The easy and hard presets build from the repository alone: train queries whose classes by the
    committed selection profile are the preset's shares."""
    from hydra import compose, initialize_config_dir

    import sgpo
    from sgpo.tasks import build_task

    with initialize_config_dir(config_dir=str(sgpo.ROOT_DIR / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"task={preset}"])
    train = build_task(cfg.task).split("train")
    counts = load_pool_file(cfg.task.pool.file)
    got = {c: sum(class_of(*counts[q.id]) == c for q in train) for c in CLASSES}
    assert len(train) == size and got == class_counts(shares, size)
    assert all(counts[q.id][1] >= 32 for q in train if class_of(*counts[q.id]) != "mixed"), "extremes are confirmed"


def test_a_mix_changes_train_only(tmp_path):
    """The pool's train split follows the shares by the selection file; val and test are the plain task's."""
    plain = ArithmeticTask(num_train=64, num_val=16, num_test=16)
    candidates = ArithmeticTask(num_train=256, num_val=16, num_test=16).split("train")
    successes = {q.id: (8 if q.meta["digits"] <= 2 else 0 if q.meta["digits"] >= 4 else 3) for q in candidates}
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"counts": {q: [s, 8] for q, s in successes.items()}}))
    pool = {"file": str(path), "candidates": 256, "shares": {"trivial": 0.75, "mixed": 0.25, "unsolvable": 0.0}}
    mixed = ArithmeticTask(num_train=64, num_val=16, num_test=16, pool=pool)
    assert mixed.split("val") == plain.split("val") and mixed.split("test") == plain.split("test")
    train = mixed.split("train")
    assert len(train) == 64 and len({q.id for q in train}) == 64
    assert sorted(successes[q.id] for q in train) == [3] * 16 + [8] * 48
    with pytest.raises(ValueError, match="task.pool.candidates=32 must be >= task.num_train=64"):
        ArithmeticTask(num_train=64, pool=dict(pool, candidates=32))
    with pytest.raises(ValueError, match="unknown keys"):
        ArithmeticTask(num_train=64, pool=dict(pool, size=3))


# --- suites ----------------------------------------------------------------------------------------


def test_shipped_suites_list_their_jobs():
    quick, full, tune = (jobs_of(load_suite(n)) for n in ("quick", "full", "tune"))
    methods = ["grpo", "grpo_skip", "dapo", "sgpo_paper", "sgpo_refresh", "sgpo_profile_prior", "sgpo_every_step", "sgpo"]
    assert len(quick) == 24 and {j.mix for j in quick} == {"default"} and {j.seed for j in quick} == {10, 11, 12}
    assert [j.method for j in quick[:8]] == methods  # seed by seed
    assert len(full) == 10 + 7 * 10 + 2 * 7 * 5 and "sgpo_refresh" not in {j.method for j in full}
    # the A/A seeds first, then rounds: the i-th seed of every mix (default, easy, hard) method by
    # method; once easy and hard run out of seeds (5), the default mix's last 5 seeds alone
    assert [(j.mix, j.method, j.seed) for j in full[:10]] == [("default", "grpo", s) for s in range(20, 30)]
    rounds = [(j.mix, j.seed) for j in full[10::7]]
    assert rounds[:6] == [("default", 10), ("easy", 10), ("hard", 10), ("default", 11), ("easy", 11), ("hard", 11)]
    assert rounds[15:] == [("default", s) for s in range(15, 20)]
    full_methods = ["grpo", "grpo_skip", "dapo", "sgpo_paper", "sgpo_profile_prior", "sgpo_every_step", "sgpo"]
    assert [j.method for j in full[10:24]] == full_methods * 2
    assert len(tune) == 6 * 4 * 2 and {j.seed for j in tune} == {0, 1}
    job = Job("full", "easy", "dapo", 12)
    assert job_overrides(job, load_suite("full")) == ["experiment=bench", "method=dapo", "task=arithmetic_easy", "seed=12"]
    assert job.summary_path().parts[-3:] == ("full", "easy", "dapo-s12.json")
    assert Job("tune", "default", "grpo", 0, 2e-4).label == "default/grpo-lr0.0002-s0"


def test_bad_suites_are_refused_by_name(tmp_path):
    known = "ablations, dev, dev_mixes, full, pods, quick, tune"
    with pytest.raises(ValueError, match=f"unknown benchmark suite 'nope'.*known: {known}"):
        load_suite("nope")
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmixes: [odd]\nmethods: [grpo]\nbaselines: [grpo]\nseeds: [1]\naa_seeds: []\n"
                     "overrides: []\nmix_tasks: {default: arithmetic}\n")
    with pytest.raises(ValueError, match=r"mixes \['odd'\] have no entry in mix_tasks"):
        load_suite(str(suite))
    suite.write_text(suite.read_text().replace("[odd]", "[default]").replace("aa_seeds: []", "aa_seeds: [1]"))
    with pytest.raises(ValueError, match="must not overlap"):
        load_suite(str(suite))
    # a mix's own seeds: the A/A seeds must stay apart from the default mix's, the mix must be listed
    suite.write_text(suite.read_text() + "mix_seeds: {default: [1, 2]}\n")
    with pytest.raises(ValueError, match=r"must not overlap the default mix's seeds \[1, 2\]"):
        load_suite(str(suite))
    suite.write_text(suite.read_text().replace("aa_seeds: [1]", "aa_seeds: [3]").replace("seeds: [1]\n", "seeds: [1]\n"))
    loaded = load_suite(str(suite))
    assert [(j.method, j.seed) for j in jobs_of(loaded)] == [("grpo", 3), ("grpo", 1), ("grpo", 2)]
    suite.write_text(suite.read_text().replace("{default: [1, 2]}", "{hard: [1, 2]}"))
    with pytest.raises(ValueError, match=r"mix_seeds names mixes \['hard'\] that are not in mixes"):
        load_suite(str(suite))


# --- analysis on curves computed by hand -----------------------------------------------------------


def job(method: str, seed: int, flops, acc, profile=None, wasted=0.0) -> dict:
    history = [{"compute/total_flops": f, "test/mean@k": a} for f, a in zip(flops, acc)]
    final = {"compute/total_flops": flops[-1], "compute/rollout_flops": 60.0, "compute/train_flops": 40.0,
             "compute/wasted_flops": wasted, "compute/profile_flops": flops[0]}
    return {"mix": "default", "method": method, "seed": seed, "eval_history": history, "final": final, "wall_s": 10.0,
            "profile": profile, "lr": None}


def test_curve_keeps_the_later_of_two_evaluations_at_equal_flops():
    f, a = analysis.curve(job("grpo", 0, [0.0, 1e12, 1e12, 2e12], [0.5, 0.55, 0.6, 0.7]))
    assert f.tolist() == [0.0, 1e12, 2e12] and a.tolist() == [0.5, 0.6, 0.7]


def test_mix_analysis_by_hand():
    # GRPO: 0.5 -> 0.7 on every seed (gain 0.2; f50 target 0.6 reached at 1e12 by seed 0 (a point), at
    # 10**12.5 by seed 1 (halfway in log10 between 1e12 at 0.55 and 1e13 at 0.65) and never by seed 2).
    grpo = [job("grpo", 0, [0, 1e12, 1e13], [0.5, 0.6, 0.7]),
            job("grpo", 1, [0, 1e12, 1e13], [0.5, 0.55, 0.7]),
            job("grpo", 2, [0, 1e12, 1e13], [0.5, 0.52, 0.7])]
    grpo[1]["eval_history"][2]["test/mean@k"] = 0.65
    grpo[1]["eval_history"].append({"compute/total_flops": 2e13, "test/mean@k": 0.7})
    # sgpo: profile at 1e11, reaches 0.6 at 2e11 on every seed: ratio vs GRPO = GRPO's median (seed 2's
    # 10**12.44, between 1e12 and 10**12.5) / 2e11
    prof = [{"num_samples": 8, "frac_trivial": t, "frac_unsolvable": u} for t, u in ((0.1, 0.9), (0.2, 0.1), (0.3, 0.5))]
    sgpo = [job("sgpo", s, [1e11, 2e11, 1e13], [0.5, 0.6, 0.72], profile=prof[s], wasted=25.0) for s in range(3)]
    out = analysis.analyse_mix(grpo + sgpo, ["grpo", "sgpo"], ["grpo"], n_boot=500)
    assert out["grpo_gain"] == pytest.approx(0.2) and out["targets"]["f50"] == pytest.approx(0.6)
    per_seed = out["methods"]["grpo"]["flops_to"]["f50"]["per_seed"]
    assert per_seed[0] == pytest.approx(1e12) and per_seed[1] == pytest.approx(10**12.5)
    assert per_seed[2] == pytest.approx(10 ** (12 + 0.08 / 0.18))  # 0.52 -> 0.7 over one decade
    ratio = out["methods"]["sgpo"]["ratio_vs"]["grpo"]["f50"]["per_seed_median"]
    assert ratio["median"] == pytest.approx(10 ** (12 + 0.08 / 0.18) / 2e11)
    # resampled medians range over the three seeds' values, each drawn in over 2.5% of 500 resamples
    assert ratio["ci"][0] == pytest.approx(1e12 / 2e11) and ratio["ci"][1] == pytest.approx(10**12.5 / 2e11)
    # the primary statistic: GRPO's seed-mean curve is 0.5567 at 1e12 and 0.6833 at 1e13 (seed 1's 0.65;
    # the grid ends at the smallest budget, 1e13), log-linear between: 0.6 at 10**(12 + 0.0433 / 0.1267);
    # sgpo's at 2e11 (up to the 200-point grid's resolution, 1% of a decade)
    mean = out["methods"]["sgpo"]["ratio_vs"]["grpo"]["f50"]
    assert mean["statistic"] == "mean_curve" and mean["method_flops"] == pytest.approx(2e11, rel=0.03)
    assert mean["base_flops"] == pytest.approx(10 ** (12 + (0.6 - 1.67 / 3) / (0.38 / 3)), rel=1e-6)
    assert mean["median"] == pytest.approx(mean["base_flops"] / mean["method_flops"])
    assert out["methods"]["grpo"]["flops_to"]["f50"]["mean_curve"] == pytest.approx(mean["base_flops"], rel=1e-6)
    # per-seed shares 1.0, 0.3, 0.8: their median, not median(trivial) + median(unsolvable) = 0.2 + 0.5
    assert out["grpo_zero_adv_share"] == pytest.approx(0.8)
    assert (out["zero_adv"]["trivial"], out["zero_adv"]["unsolvable"]) == (pytest.approx(0.2), pytest.approx(0.5))
    assert out["methods"]["sgpo"]["wasted_share"] == pytest.approx(0.25)
    assert out["methods"]["sgpo"]["profile_share"] == pytest.approx(1e11 / 1e13)
    assert out["equal_compute_flops"] == 1e13  # the smallest final FLOPs of the mix
    assert out["methods"]["sgpo"]["final"]["median"] == pytest.approx(0.72)
    assert out["methods"]["sgpo"]["at_equal_compute_minus_grpo"]["median"] == pytest.approx(0.72 - 0.7)
    assert out["methods"]["grpo"]["at_equal_compute"]["median"] == pytest.approx(0.7)


def test_a_baseline_that_gains_nothing_leaves_ratios_undefined():
    flat = [job("grpo", s, [0, 1e12], [0.5, 0.5]) for s in range(2)] + [job("dapo", 0, [0, 1e12], [0.5, 0.6])]
    out = analysis.analyse_mix(flat, ["grpo", "dapo"], ["grpo"], n_boot=50)
    undefined = {"median": None, "ci": [None, None], "never": None, "lower_bound": None}
    assert "gained nothing" in out["note"] and out["methods"]["dapo"]["ratio_vs"] == {
        "grpo": {"f50": undefined, "f75": undefined, "f90": undefined}}
    assert out["methods"]["dapo"]["final"]["median"] == pytest.approx(0.6)  # the rest is still reported
    alone = analysis.analyse_mix(flat[2:], ["grpo", "dapo"], ["grpo"], n_boot=50)
    assert "no GRPO runs" in alone["note"] and alone["methods"]["dapo"]["final"]["median"] == pytest.approx(0.6)


def test_aa_check_of_identical_seed_groups_is_one():
    a = [job("grpo", s, [0, 1e12, 1e13], [0.5, 0.6 + 0.01 * s, 0.7]) for s in range(3)]
    b = [dict(j, seed=j["seed"] + 10) for j in a]
    out = analysis.analyse_aa(a, b, n_boot=200)
    assert out["f90"]["median"] == pytest.approx(1.0) and out["ok"] and out["seeds_b"] == [10, 11, 12]
    assert out["statistic"] == "mean_curve" and out["f90"]["statistic"] == "mean_curve"
    assert out["f90"]["per_seed_median"]["median"] == pytest.approx(1.0) and out["per_seed_median"]["ok"]
    # B 10x slower: within the budget both groups reached (A's), B's mean curve never gets to f90;
    # its per-seed crossings do (past A's budget): 10x
    slow = [dict(j, eval_history=[dict(h, **{"compute/total_flops": h["compute/total_flops"] * 10})
                                  for h in j["eval_history"]]) for j in b]
    out = analysis.analyse_aa(a, slow, n_boot=200)
    assert out["f90"]["median"] == 0.0 and not out["ok"] and "excludes 1" in out["verdict"]
    assert out["f90"]["per_seed_median"]["median"] == pytest.approx(0.1) and not out["per_seed_median"]["ok"]


def test_best_baseline_is_the_cheaper_one_at_each_fraction():
    base = [job("grpo", s, [0, 1e12, 1e13], [0.5, 0.6, 0.7]) for s in range(2)]
    dapo = [job("dapo", s, [0, 5e11, 1e13], [0.5, 0.6, 0.7]) for s in range(2)]
    skip = [job("grpo_skip", s, [0, 8e11, 1e13], [0.5, 0.6, 0.7]) for s in range(2)]
    meth = [job("sgpo", s, [0, 4e11, 1e13], [0.5, 0.6, 0.7]) for s in range(2)]
    out = analysis.analyse_mix(base + dapo + skip + meth, ["grpo", "grpo_skip", "dapo", "sgpo"],
                               ["grpo", "grpo_skip", "dapo"], n_boot=50)
    best = out["methods"]["sgpo"]["ratio_vs"]["best_baseline"]["f50"]
    assert best["baseline"] == "dapo" and best["median"] == pytest.approx(5e11 / 4e11, rel=0.02)
    assert best["per_seed_median"]["median"] == pytest.approx(5e11 / 4e11)
    assert out["methods"]["dapo"]["ratio_vs"]["best_baseline"]["f50"]["baseline"] == "grpo_skip"


def ledger_job(method: str, seed: int, steps: int, hist: list[tuple[float, float, float, float, float]]) -> dict:
    """A job whose history holds (total, rollout, train, wasted, metric) at each evaluation, at steps
    spread evenly; the profile is what the total holds beyond rollout + train."""
    history = [{"compute/total_flops": t, "compute/rollout_flops": r, "compute/train_flops": tr,
                "compute/wasted_flops": w, "compute/profile_flops": t - r - tr, "test/mean@k": a,
                "train/steps": float(steps * i // (len(hist) - 1))} for i, (t, r, tr, w, a) in enumerate(hist)]
    final = {k: v for k, v in history[-1].items() if k.startswith("compute/")} | {"train/steps": float(steps)}
    return {"mix": "default", "method": method, "seed": seed, "eval_history": history, "final": final,
            "wall_s": 1.0, "profile": None, "lr": None}


def test_ledger_shares_steps_and_headroom_by_hand():
    j = ledger_job("sgpo", 0, 40, [(10, 0, 0, 0, 0.4), (100, 30, 60, 18, 0.6)])
    g = analysis.ledger_of(j)
    assert (g["profile_share"], g["rollout_share"], g["train_share"]) == (0.1, 0.3, 0.6)
    assert g["wasted_share"] == pytest.approx(0.18) and g["steps"] == 40
    assert (g["rollout_per_step"], g["train_per_step"]) == (0.75, 1.5)
    assert g["headroom"] == pytest.approx(100 / (100 - 18 - 10))


def test_wasted_share_by_budget_third():
    # thirds of a 300-FLOP run end at 100 and 200, between evaluations (90, 180, 300): the cumulative
    # ledger there, linear in total FLOPs: wasted 45 + 9/9 = 46 at 100 and 54 + 12/6 = 56 at 200, of
    # 100 rollout + train FLOPs per third
    j = ledger_job("grpo", 0, 30, [(0, 0, 0, 0, 0.4), (90, 30, 60, 45, 0.5), (180, 60, 120, 54, 0.6),
                                   (300, 100, 200, 66, 0.7)])
    assert analysis.phase_wasted_shares(j) == pytest.approx([0.46, 0.10, 0.10])
    old = dict(j, eval_history=[{k: v for k, v in h.items() if k != "compute/wasted_flops"} for h in j["eval_history"]])
    assert analysis.phase_wasted_shares(old) is None  # summaries from before the history held the ledger


def test_metric_at_equal_steps_is_interpolated_in_steps():
    slow = ledger_job("grpo", 0, 10, [(0, 0, 0, 0, 0.4), (30, 10, 20, 0, 0.45), (60, 20, 40, 0, 0.5),
                                      (100, 40, 60, 0, 0.6)])
    fast = ledger_job("sgpo", 0, 40, [(0, 0, 0, 0, 0.4), (100, 40, 60, 0, 0.8)])
    assert analysis.acc_at_steps(fast, 10) == pytest.approx(0.4 + 0.4 * 10 / 40)
    assert np.isnan(analysis.acc_at_steps(slow, 11))  # past its last evaluation
    out = analysis.analyse_mix([slow, fast], ["grpo", "sgpo"], ["grpo"], n_boot=20)
    assert out["equal_steps"] == 10 and out["methods"]["sgpo"]["at_equal_steps"]["n"] == 1
    assert out["methods"]["sgpo"]["at_equal_steps"]["median"] == pytest.approx(0.5)
    assert out["methods"]["grpo"]["at_equal_steps"]["median"] == pytest.approx(0.6)
    assert out["methods"]["grpo"]["ledger"]["phase_wasted_share"] == pytest.approx([0.0, 0.0, 0.0])
    text = "\n".join(mix_section("default", out, "test/mean@k", ["grpo"]))
    assert "| sgpo | 40 | 1.00e+00 | 1.50e+00 | 0.0% | 40.0% | 60.0% | 1.00x | 0.500 [0.500, 0.500] | 0% / 0% / 0% |" in text


def test_tuning_picks_the_best_median_final_val_metric():
    def tj(method, lr, seed, final):
        j = job(method, seed, [0, 1e12], [0.4, final])
        j["lr"], j["eval_history"] = lr, [{"compute/total_flops": h["compute/total_flops"], "val/mean@k": h["test/mean@k"]}
                                          for h in j["eval_history"]]
        return j
    runs = [tj("grpo", 1e-4, 0, 0.6), tj("grpo", 1e-4, 1, 0.62), tj("grpo", 2e-4, 0, 0.7), tj("grpo", 2e-4, 1, 0.5)]
    out = analysis.analyse_tuning(runs)
    assert out["methods"]["grpo"]["final"] == {1e-4: pytest.approx(0.61), 2e-4: pytest.approx(0.6)}
    assert out["methods"]["grpo"]["best_lr"] == 1e-4


def test_ratio_text_shows_never_and_lower_bounds():
    assert ratio_text({"median": 1.5, "ci": [0.9, float("inf")], "never": 0, "lower_bound": None}) == "1.50 [0.90, ∞]"
    assert ratio_text({"median": 0.0, "ci": [0.0, 0.0], "never": 3, "lower_bound": None}) == "never (3 seeds)"
    assert ratio_text({"median": 0.0, "ci": [0.0, 0.0], "never": 1, "lower_bound": None,
                       "statistic": "mean_curve"}) == "never (seed-mean curve)"
    assert ratio_text({"median": float("inf"), "ci": [1, 2], "never": 0, "lower_bound": 1.4}) == "≥ 1.40"


def write_finished_jobs(tmp_path, name: str, methods: list[str], reached: dict[str, float], extra: str = "",
                        config_of: dict[str, str] | None = None, split: str = "test"):
    """A one-seed suite file and, per method, a summary whose ``split`` mean@4 goes 0.4 -> 0.5 at
    ``reached`` FLOPs; ``config_of[m]``: the summary carries that other method's config (a stale job)."""
    from sgpo.bench.runner import job_key, resolved_config

    overrides = "[experiment=bench]" if split == "test" else f'[experiment=bench, "eval.splits=[{split}]"]'
    suite_file = tmp_path / f"{name}.yaml"
    suite_file.write_text(f"name: {name}\nmixes: [default]\nmethods: [{', '.join(methods)}]\nbaselines: [grpo]\n"
                          f"seeds: [0]\naa_seeds: []\noverrides: {overrides}\n"
                          f"mix_tasks: {{default: arithmetic}}\n{extra}")
    suite = load_suite(str(suite_file))
    for method in methods:
        j = Job(name, "default", method, 0)
        config = resolved_config(job_overrides(Job(name, "default", (config_of or {}).get(method, method), 0), suite))
        summary = job(method, 0, [0, reached[method], 2e12], [0.4, 0.5, 0.5])
        summary["eval_history"] = [{"compute/total_flops": h["compute/total_flops"], f"{split}/mean@k": h["test/mean@k"]}
                                   for h in summary["eval_history"]]
        summary.update(config=config, digest=job_key(config), suite=name)
        path = j.summary_path(tmp_path / "runs")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary))
    return suite_file


def test_a_val_suite_reports_val_mean_at_k(tmp_path):
    """A development suite (jobs evaluating val only) is reported on val/mean@k, curves and ratios alike."""
    from sgpo.bench.__main__ import report_suite

    suite_file = write_finished_jobs(tmp_path, "devsuite", ["grpo", "sgpo"], {"grpo": 1e12, "sgpo": 5e11}, split="val")
    report = report_suite(str(suite_file), "cmd", False, tmp_path / "runs", root=tmp_path)
    assert report["metric"] == "val/mean@k" and report["wall_s_total"] == 20.0  # two jobs of 10 s
    ratio = report["mixes"]["default"]["methods"]["sgpo"]["ratio_vs"]["grpo"]["f90"]
    assert ratio["per_seed_median"]["median"] == pytest.approx(2.0)
    # the seed-mean curves from 0 FLOPs: sgpo's crossing (0.45e12, before its point at 5e11) exact,
    # GRPO's (0.9e12) up to the grid's log-linear interpolation of a segment linear in FLOPs
    assert ratio["method_flops"] == pytest.approx(0.45e12) and ratio["median"] == pytest.approx(2.0, rel=0.01)
    assert "val/mean@k" in (tmp_path / "runs" / "devsuite" / "REPORT.md").read_text()


def test_companion_suites_are_reported_in_benchmarks_md_from_their_current_jobs(tmp_path):
    """--benchmarks adds each companion suite's methods (its ratios, from its own current jobs: a job
    whose config changed is left out) under "Other suites"; a companion that is not a suite is refused."""
    from sgpo.bench.__main__ import report_suite

    comp = write_finished_jobs(tmp_path, "compsuite", ["grpo", "sgpo_pods", "dapo"],
                               {"grpo": 1e12, "sgpo_pods": 2.5e11, "dapo": 5e11}, config_of={"dapo": "grpo_skip"})
    main = write_finished_jobs(tmp_path, "mainsuite", ["grpo", "sgpo"], {"grpo": 1e12, "sgpo": 5e11},
                               extra=f"companions: [{comp}]\n")
    report = report_suite(str(main), "cmd", True, tmp_path / "runs", root=tmp_path)
    shown = report["companions"]["compsuite"]
    assert list(shown["mixes"]["default"]) == ["grpo", "sgpo_pods"]  # dapo's summary is another method's config
    assert shown["mixes"]["default"]["sgpo_pods"]["ratio_vs"]["grpo"]["f90"]["median"] == pytest.approx(4.0, rel=0.01)
    text = (tmp_path / "BENCHMARKS.md").read_text()
    other = text.split("## Other suites")[1]
    assert "### `compsuite` (2 jobs" in other and "| default | sgpo_pods | 1 | 4.0" in other
    assert "| default | grpo |" not in other and "dapo" not in other  # baselines are not rows; stale jobs are gone
    assert "## Other suites" not in (tmp_path / "runs" / "compsuite" / "REPORT.md").read_text()
    bad = tmp_path / "badsuite.yaml"
    tuning = tmp_path / "tunesuite.yaml"
    tuning.write_text(comp.read_text() + "lrs: [1.0e-4]\n")
    for companions, refusal in (("[no_such_suite]", "companions names 'no_such_suite': not another suite"),
                                (f"[{bad}]", "not another suite"),  # itself, by its path
                                (f"[{tuning}]", "a tuning suite"), (str(comp), "must be a list")):
        bad.write_text(main.read_text().replace(f"companions: [{comp}]", f"companions: {companions}"))
        with pytest.raises(ValueError, match=refusal):
            load_suite(str(bad))


def test_a_companion_that_cannot_be_reported_is_named_and_the_report_still_made(tmp_path):
    from sgpo.bench.__main__ import report_suite

    comp = write_finished_jobs(tmp_path, "compsuite", ["grpo", "sgpo"], {"grpo": 1e12, "sgpo": 5e11})
    main = write_finished_jobs(tmp_path, "mainsuite", ["grpo", "sgpo"], {"grpo": 1e12, "sgpo": 5e11},
                               extra=f"companions: [{comp}]\n")
    # a preset the companion lists is gone while its finished job stays
    comp.write_text(comp.read_text().replace("methods: [grpo, sgpo]", "methods: [grpo, no_such_method]"))
    done = tmp_path / "runs" / "compsuite" / "default"
    (done / "no_such_method-s0.json").write_text((done / "sgpo-s0.json").read_text())
    report = report_suite(str(main), "cmd", True, tmp_path / "runs", root=tmp_path)
    assert "no_such_method" in report["companions"][str(comp)]["error"]
    assert "Not reported: " in (tmp_path / "BENCHMARKS.md").read_text()
    assert report["mixes"]["default"]["methods"]["sgpo"]["ratio_vs"]["grpo"]["f90"]["median"] == pytest.approx(2.0, rel=0.01)


def test_a_key_added_at_its_neutral_value_keeps_finished_jobs_current():
    """selection.refit_prior came after the sgpo summaries were made: false (the old behaviour) leaves
    them current; true makes them stale. Other keys still count."""
    from sgpo.bench.runner import job_key

    old = {"selection": {"screen": 2}, "optim": {"lr": 1e-4}, "tuned_lr": {"sgpo": 2e-4}}
    now = {"selection": {"screen": 2, "refit_prior": False}, "optim": {"lr": 1e-4}, "tuned_lr": {"sgpo": 1e-4}}
    assert job_key(now) == job_key(old)
    assert now["selection"]["refit_prior"] is False  # the key is left out of a copy, not of the config
    assert job_key({**now, "selection": {"screen": 2, "refit_prior": True}}) != job_key(old)
    assert job_key({**now, "selection": {"screen": 4, "refit_prior": False}}) != job_key(old)
    assert job_key({"selection": None, "optim": {"lr": 1e-4}}) == job_key({"selection": None, "optim": {"lr": 1e-4}})
    # algo.train_rows (PODS) came later too: off (null, its rule at the default) leaves jobs current
    off = {"algo": {"skip_zero_adv": True, "train_rows": None, "train_rows_rule": "max_variance"}}
    assert job_key(off) == job_key({"algo": {"skip_zero_adv": True}})
    assert job_key({"algo": {**off["algo"], "train_rows": 4}}) != job_key(off)
    # and algo.min_mixed_groups (gathered updates): null leaves them current, a number does not
    assert job_key({"algo": {**off["algo"], "min_mixed_groups": None}}) == job_key(off)
    assert job_key({"algo": {**off["algo"], "min_mixed_groups": 16}}) != job_key(off)


def test_a_presets_label_does_not_key_its_jobs_but_its_settings_do():
    """method_name only labels reports: a preset renamed (sgpo -> sgpo_profile_prior) keeps its
    finished jobs current; any setting, the rate included, still makes them stale."""
    from sgpo.bench.runner import job_key

    job = {"method_name": "sgpo", "selection": {"screen": 2}, "optim": {"lr": 2e-4}}
    assert job_key({**job, "method_name": "sgpo_profile_prior"}) == job_key(job)
    assert job_key({**job, "optim": {"lr": 1e-4}}) != job_key(job)
    assert job_key({**job, "selection": {"screen": 0}}) != job_key(job)
    assert job_key({**job, "seed": 1}) != job_key({**job, "seed": 2})


def test_aa_power_passes_identical_runs_and_fails_runs_of_two_speeds():
    same = [(np.array([0.0, 1e12, 1e13]), np.array([0.5, 0.6, 0.7]))] * 6
    out = analysis.aa_power(same, sizes=(2, 3, 4), draws=5, n_boot=20)
    assert sorted(out) == [2, 3]  # 2 x 4 > 6 runs: no estimate
    assert out[3] == {"pass_rate": 1.0, "median_width": 0.0, "draws": 5}
    # two runs 4x slower: at the grid's end (1e13) they are at 0.64, so any group holding one has a
    # seed-mean curve below the f90 target (0.68) there and never reaches it: every split fails
    mixed = [(np.array([0.0, s * 1e12, s * 1e13]), np.array([0.5, 0.6, 0.7])) for s in (1, 1, 4, 4)]
    assert analysis.aa_power(mixed, sizes=(2,), draws=8, n_boot=20)[2]["pass_rate"] == 0.0


def test_history_differences_name_the_evaluation_and_key():
    from sgpo.bench.__main__ import history_differences

    a = job("grpo", 0, [0.0, 1e12], [0.4, 0.5])
    a["final"]["profile/path"], a["final"]["data/mean_group_size"] = "/here/profiles/x", None
    b = json.loads(json.dumps(a))
    b["final"]["profile/path"] = "/elsewhere/profiles/x"  # another checkout: not a difference
    a["final"]["wall_s"], b["final"]["wall_s"] = 34.3, 35.1  # nor another clock
    assert history_differences(a, b) == []
    b["eval_history"][1]["test/mean@k"] = 0.5001
    b["final"]["train/stop_reason"] = "end of data"
    assert history_differences(a, b) == ["evaluation 1: test/mean@k 0.5 against 0.5001",
                                         "final: train/stop_reason None against 'end of data'"]
    assert history_differences(a, b, tol=1e-3) == ["final: train/stop_reason None against 'end of data'"]
    b["eval_history"].pop()
    assert history_differences(a, b)[0] == "2 evaluations against 1"


def test_ratio_plot_points_clip_intervals_that_lie_on_one_side_of_the_ratio(tmp_path):
    def entry(median, ci):
        return {"ratio_vs": {"grpo": {"f90": {"median": median, "ci": ci}}}}

    report = {"mixes": {
        "hard": {"grpo_zero_adv_share": 0.8, "methods": {"sgpo": entry(1.2, [1.3, 1.5])}},  # ratio below its interval
        "default": {"grpo_zero_adv_share": 0.5, "methods": {"sgpo": entry(1.5, [1.0, 2.5]), "dapo": entry(None, [None, None])}},
        "easy": {"grpo_zero_adv_share": None, "methods": {"sgpo": entry(3.0, [2.0, 4.0])}},  # no share: left out
    }}
    points = ratio_points(report)
    assert list(points) == ["sgpo"]  # dapo has no ratio
    np.testing.assert_allclose(points["sgpo"], [[0.5, 1.5, 0.5, 1.0], [0.8, 1.2, 0.0, 0.3]])  # sorted by share
    assert plot_ratio_vs_share(report, tmp_path / "r.png")  # matplotlib refuses negative error bars
    assert not plot_ratio_vs_share({"mixes": {"easy": report["mixes"]["easy"]}}, tmp_path / "none.png")


def test_ratio_plot_marks_never_reached_mixes_with_their_bound_and_breaks_the_line(tmp_path, monkeypatch):
    def entry(median, never=0, base=None):
        return {"ratio_vs": {"grpo": {"f90": {"median": median, "ci": [median * 0.9, median * 1.1], "never": never,
                                               "base_flops": base}}}}

    report = {"mixes": {
        "default": {"grpo_zero_adv_share": 0.5, "equal_compute_flops": 3e12, "methods": {"sgpo": entry(1.5)}},
        "easy": {"grpo_zero_adv_share": 0.7, "equal_compute_flops": 3e12, "methods": {"sgpo": entry(0.0, 1, 1.2e12)}},
        "hard": {"grpo_zero_adv_share": 0.9, "equal_compute_flops": 3e12, "methods": {"sgpo": entry(4.0)}},
    }}
    assert list(ratio_points(report)["sgpo"][:, 0]) == [0.5, 0.9]  # the never-reached mix is no ratio point
    np.testing.assert_allclose(never_points(report)["sgpo"], [[0.7, 0.4]])  # 1.2e12 / 3e12
    from matplotlib.axes import Axes

    drawn = []
    original = Axes.errorbar

    def spy(self, x, y, *args, **kwargs):
        drawn.append((list(x), list(y)))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", spy)
    assert plot_ratio_vs_share(report, tmp_path / "r.png")
    (x, y), = drawn
    assert x == [0.5, 0.7, 0.9] and y[0] == 1.5 and np.isnan(y[1]) and y[2] == 4.0  # the line breaks at easy
