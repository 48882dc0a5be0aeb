"""python -m sgpo.bench end to end on a small suite of real train.py jobs: summaries committed job by
job, a stopped run continued, finished jobs skipped, the report and BENCHMARKS.json rebuilt."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from sgpo.bench.runner import resolved_config, status
from sgpo.bench.suite import Job, job_overrides, load_suite

SUITE = """name: e2e
mixes: [default]
methods: [grpo, grpo_skip, sgpo_paper]
baselines: [grpo, grpo_skip]
seeds: [10]
aa_seeds: [11]
overrides: [experiment=bench, train.max_total_flops=4.0e+10, "eval.at_total_flops={start: 1.0e+10, stop: 4.0e+10, points: 3}",
            task.num_test=64, eval.k=2, profile.max_queries=128, data.rollouts_per_step=64]
mix_tasks: {default: arithmetic}
"""


@pytest.mark.slow
def test_bench_runs_resumes_and_reports(tmp_path):
    suite_file = tmp_path / "e2e.yaml"
    suite_file.write_text(SUITE)
    runs, work = tmp_path / "runs", tmp_path / "work"
    args = ["-m", "sgpo.bench", str(suite_file), "--runs-dir", str(runs), "--work-dir", str(work), "--root", str(tmp_path)]

    first = run_cli(*args, "--max-jobs", "2").stdout  # stopped after two jobs
    assert "e2e: 4 jobs, 0 finished, 4 to run" in first
    assert "[1/2] default grpo seed 11: " in first and "[2/2] default grpo seed 10: " in first  # the A/A seed first
    assert sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*-s*.json")) == [
        "e2e/default/grpo-s10.json", "e2e/default/grpo-s11.json"]

    second = run_cli(*args, "--benchmarks").stdout  # continues with the rest
    assert "e2e: 4 jobs, 2 finished, 2 to run" in second
    assert "[1/2] default grpo_skip seed 10: " in second and "[2/2] default sgpo_paper seed 10: " in second
    third = run_cli(*args, "--benchmarks").stdout
    assert "e2e: 4 jobs, 4 finished, 0 to run" in third and "[1/" not in third

    grpo = json.loads((runs / "e2e" / "default" / "grpo-s10.json").read_text())
    skip = json.loads((runs / "e2e" / "default" / "grpo_skip-s10.json").read_text())
    sgpo = json.loads((runs / "e2e" / "default" / "sgpo_paper-s10.json").read_text())
    assert grpo["command"].startswith("python train.py experiment=bench") and "method=grpo" in grpo["command"]
    assert grpo["config"]["method_name"] == "grpo" and grpo["config"]["algo"]["skip_zero_adv"] is False
    assert skip["config"]["algo"]["skip_zero_adv"] is True
    for s in (grpo, skip, sgpo):
        assert s["final"]["compute/total_flops"] >= 4.0e10  # the budget ended the run
        history = s["eval_history"]
        assert len(history) >= 3 and all({"test/mean@k", "test/mean@k_se", "test/pass@1"} <= set(h) for h in history)
        served = [h["eval/checkpoint_flops"] for h in history if "eval/checkpoint_flops" in h]
        # the ledger so far at each evaluation: cumulative, and never past the final one
        wasted = [h["compute/wasted_flops"] for h in history]
        assert wasted == sorted(wasted) and wasted[-1] <= s["final"]["compute/wasted_flops"]
        assert served == pytest.approx([1e10, 2e10, 4e10][-len(served):])
    # same seed, same initial policy: the evaluations before training agree; skipping spends less per step
    assert grpo["eval_history"][0]["test/mean@k"] == skip["eval_history"][0]["test/mean@k"]
    assert skip["final"]["train/steps"] >= grpo["final"]["train/steps"]
    assert sgpo["profile"]["num_samples"] == 8 and sgpo["final"]["compute/profile_flops"] > 0

    report = json.loads((tmp_path / "BENCHMARKS.json").read_text())
    assert report == json.loads((runs / "e2e" / "report.json").read_text())
    mix = report["mixes"]["default"]
    assert mix["methods"]["grpo"]["final"]["median"] == grpo["eval_history"][-1]["test/mean@k"]
    assert mix["grpo_zero_adv_share"] == pytest.approx(sgpo["profile"]["frac_trivial"] + sgpo["profile"]["frac_unsolvable"])
    gain = grpo["eval_history"][-1]["test/mean@k"] - grpo["eval_history"][0]["test/mean@k"]
    assert mix["grpo_gain"] == pytest.approx(gain)
    assert report["aa"]["seeds_a"] == [10] and report["aa"]["seeds_b"] == [11]
    if gain > 0:  # a few steps on 64 test queries may not gain: then there is no target, and the report says so
        assert set(report["aa"]["f90"]) >= {"median", "ci", "per_seed_median"} and set(
            mix["methods"]["sgpo_paper"]["ratio_vs"]) == {"grpo", "grpo_skip", "best_baseline"}
        assert report["statistic"] == report["aa"]["statistic"] == "mean_curve"
    else:
        assert "gained nothing" in report["aa"]["verdict"] and "gained nothing" in mix["note"]
    ledger = mix["methods"]["grpo"]["ledger"]
    assert ledger["profile_share"] == 0 and ledger["steps"] == grpo["final"]["train/steps"]
    assert ledger["train_per_step"] == pytest.approx(grpo["final"]["compute/train_flops"] / grpo["final"]["train/steps"])
    assert len(ledger["phase_wasted_share"]) == 3 and all(0 <= x <= 1 for x in ledger["phase_wasted_share"])
    assert mix["methods"]["sgpo_paper"]["ledger"]["profile_share"] > 0
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "Where the FLOPs went" in text
    # the CPU pipeline is deterministic: a finished job run again gives its committed history exactly
    again = run_cli(*args, "--reproduce", "default/grpo_skip-s10").stdout
    assert "default/grpo_skip-s10: run again at" in again and "identical evaluation history and ledger" in again
    assert (work / "reproduce" / "runs" / "e2e" / "default" / "grpo_skip-s10.json").is_file()
    power = run_cli(*args, "--aa-power", check=False)  # two GRPO runs: too few to split for an estimate
    assert power.returncode == 1 and "2 finished GRPO jobs on the default mix; the estimate needs at least 6" in power.stdout

    # another suite with one of these jobs (same mix, method, seed, config) copies it instead of running it
    other = tmp_path / "again.yaml"
    other.write_text(SUITE.replace("name: e2e", "name: again").replace("[grpo, grpo_skip, sgpo_paper]", "[grpo]")
                     .replace("aa_seeds: [11]", "aa_seeds: []"))
    again = ["-m", "sgpo.bench", str(other), "--runs-dir", str(runs), "--work-dir", str(work), "--root", str(tmp_path)]
    assert "again: 1 jobs, 0 finished, 1 to copy from other suites" in run_cli(*again, "--dry-run").stdout
    other.write_text(other.read_text().replace("eval.k=2", "eval.k=3"))  # another config: nothing to copy
    assert "again: 1 jobs, 0 finished, 1 to run" in run_cli(*again, "--dry-run").stdout
    other.write_text(other.read_text().replace("eval.k=3", "eval.k=2"))
    assert not (runs / "again" / "default" / "grpo-s10.json").exists()  # a dry run copies nothing
    out = run_cli(*again).stdout
    assert "again: 1 jobs, 0 finished, 1 copied from other suites (same job, same config), 0 to run" in out
    assert "[1/" not in out
    copy = json.loads((runs / "again" / "default" / "grpo-s10.json").read_text())
    assert copy["reused_from"] == "e2e/default/grpo-s10.json" and copy["suite"] == "again"
    assert copy["eval_history"] == grpo["eval_history"]
    assert "## A/A check" in text and "## Mix `default`" in text and "(benchmarks/curves_default.png)" in text
    assert (tmp_path / "benchmarks" / "curves_default.png").stat().st_size > 1000


def test_a_changed_config_makes_a_finished_job_stale(tmp_path):
    suite = load_suite("quick")
    job = Job("quick", "default", "grpo", 10)
    config = resolved_config(job_overrides(job, suite))
    path = job.summary_path(tmp_path)
    assert status(job, config, tmp_path) == "todo"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"config": config}))
    assert status(job, config, tmp_path) == "done"
    tuned = resolved_config(job_overrides(job, suite) + ["++tuned_lr.dapo=3e-4"])  # another method's rate changed
    assert status(job, tuned, tmp_path) == "done"
    changed = resolved_config(job_overrides(job, suite) + ["train.max_total_flops=1e12"])
    assert status(job, changed, tmp_path) == "stale"
    easy = resolved_config(job_overrides(Job("quick", "easy", "grpo", 10), dict(suite, mixes=["easy"])))
    assert easy["task"]["pool"]["file"].startswith("<repo>/benchmarks/pools/")  # no checkout path in the digest
    assert len(easy["task"]["pool"]["file_sha256"]) == 16  # a remade pool file makes the mix's jobs stale
    easy["task"]["pool"]["shares"]["trivial"] = 0.0  # callers may change what they get (the compose is cached)
    again = resolved_config(job_overrides(Job("quick", "easy", "grpo", 10), dict(suite, mixes=["easy"])))
    assert again["task"]["pool"]["shares"]["trivial"] == 0.95 and again == dict(easy, task=again["task"])
