"""train.py end to end on the shipped tiny policy: every method preset, parameters change,
checkpoint resume matches an uninterrupted run, and a wandb offline run holds the logged keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, TINY, run_cli
from hydra import compose, initialize_config_dir

FAST = ["profile.max_queries=128", "profile.chunk_queries=64", "eval.max_queries=32", "eval.k=2",
        "data.rollouts_per_step=64", "train.max_steps=3", "eval.every_n_steps=0", "checkpoint.every_n_steps=0"]
METHODS = ["sgpo", "grpo", "grpo_skip", "dapo", "sgpo_paper", "sgpo_refresh", "sgpo_filter_only", "sgpo_alloc_only",
           "sgpo_curriculum_only", "sgpo_online_prior", "grpo_pods", "sgpo_pods", "sgpo_profile_prior", "sgpo_every_step"]
# presets whose updates wait for algo.min_mixed_groups (16): 3 steps of 64 rollouts on the tiny policy
# gather ~7, so these run in a second multirun with 4 (some steps wait, some update)
GATHERING = ["sgpo", "sgpo_online_prior", "sgpo_pods"]
# (the other sgpo ablations: test_ablation_presets_switch_one_part)
# each adaptive-sGPO ablation preset and the settings of the one part it switches (everything else as method=sgpo)
ABLATIONS = {"sgpo_no_screen": {"selection.screen": 0}, "sgpo_fixed_size": {"selection.rule.sizes": [8]},
             "sgpo_no_revisit": {"selection.revisit_prob": 0.0}, "sgpo_no_decay": {"selection.half_life_steps": None},
             "sgpo_easy_first": {"selection.order": "easy_to_hard"}, "sgpo_online_prior": {"algo.train_rows": None},
             "sgpo_pods": {"profile.enabled": True, "selection.refit_prior": False},
             "sgpo_every_step": {"algo.min_mixed_groups": None}}
REQUIRED_METRICS = ["test/pass@1_before", "test/pass@1", "test/mean@k", "compute/profile_flops",
                    "compute/rollout_flops", "compute/train_flops", "compute/total_flops", "compute/wasted_flops",
                    "train/steps"]


def run_train(tmp_path: Path, *overrides: str) -> dict:
    run_dir = tmp_path / "run"
    proc = run_cli("train.py", *FAST, f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={run_dir}",
                   *overrides)
    assert proc.stdout.strip().splitlines()[-1] == f"run: {run_dir}"
    return json.loads((run_dir / "metrics.json").read_text())


def test_every_method_preset_trains_end_to_end(tmp_path):
    """Every method preset as one job of a single train.py multirun (one process start; the presets
    that profile share one cached profile), each checked on its own outputs."""
    import csv as csv_module

    from transformers import AutoModelForCausalLM, AutoTokenizer

    jobs = {}
    for name, methods, extra in (("every_step", [m for m in METHODS if m not in GATHERING], []),
                                 ("gathering", GATHERING, ["algo.min_mixed_groups=4"])):
        sweep = tmp_path / name
        run_cli("train.py", "-m", *FAST, f"method={','.join(methods)}", "algo.max_generation_batches=8", *extra,
                f"paths.output_dir={tmp_path / 'out'}", f"hydra.sweep.dir={sweep}")
        jobs |= {yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["method_name"]: job
                 for job in sorted(sweep.glob("*/")) if (job / ".hydra" / "config.yaml").is_file()}
    assert sorted(jobs) == sorted(METHODS)
    base = AutoModelForCausalLM.from_pretrained(TINY)
    for method, job in jobs.items():
        c = json.loads((job / "metrics.json").read_text())
        for key in REQUIRED_METRICS:
            assert c[key] is not None, (method, key)
        assert c["train/steps"] == 3, method
        # the gathering presets: some steps waited for mixed groups, the others update every step
        assert (c["train/deferred_steps_total"] > 0) == (method in GATHERING), method
        assert c["compute/total_flops"] == pytest.approx(c["compute/profile_flops"] + c["compute/rollout_flops"]
                                                         + c["compute/train_flops"]), method
        # every preset meets zero-variance groups in 3 steps on the tiny policy: their rollouts are wasted
        assert 0 < c["compute/wasted_flops"] < c["compute/rollout_flops"] + c["compute/train_flops"], method
        model = AutoModelForCausalLM.from_pretrained(job / "policy")
        AutoTokenizer.from_pretrained(job / "policy")
        changed = any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))
        assert changed, f"{method}: training must change the policy's parameters"
        csv = (job / "csv" / "metrics.csv").read_text()
        assert "train/reward_mean" in csv and "compute/total_flops" in csv, method
        rows = list(csv_module.DictReader((job / "csv" / "metrics.csv").open()))
        if method in ("sgpo", "sgpo_online_prior"):  # no profile: the prior starts flat, refitted from the rollouts
            prior = [(float(r["selection/prior_alpha0"]), float(r["selection/prior_beta0"]))
                     for r in rows if r.get("selection/prior_alpha0")]
            assert c["compute/profile_flops"] == 0 and prior[0] == (1.0, 1.0)
            assert prior[-1] != pytest.approx((1.0, 1.0), rel=1e-3), prior
        if method == "grpo_pods":  # 4 groups of 16 a step (64 rollouts), each cut to the 4 rows it trains
            assert c["train/rollouts"] == 3 * 64 and c["train/downsampled_rollouts_total"] == 3 * 4 * 12
        if method in ("sgpo_pods", "sgpo"):  # the selection's groups above 4 rollouts are cut to 4
            assert 0 < c["train/downsampled_rollouts_total"] < c["train/rollouts"]
        if method in ("sgpo_pods", "sgpo_profile_prior"):  # the profile is paid for: it fits the prior
            assert c["compute/profile_flops"] > 0
        if method in ("sgpo_online_prior", "sgpo_profile_prior"):  # every rollout trained
            assert c["train/downsampled_rollouts_total"] == 0, method
        if method == "dapo":  # dynamic sampling: every group trained on has mixed rewards, refilled as needed
            steps = [r for r in rows if r.get("train/frac_zero_adv_groups")]
            assert len(steps) == 3 and all(float(r["train/frac_zero_adv_groups"]) == 0 for r in steps), steps
            assert max(float(r["train/generation_batches"]) for r in steps) > 1, "zero-variance groups were refilled"
            assert c["train/short_steps_total"] == 0  # 8 generation batches always filled the step here


@pytest.mark.parametrize("preset", sorted(ABLATIONS))
def test_ablation_presets_switch_one_part(preset):
    """Each ablation differs from method=sgpo in its one setting (and its label) and passes the start checks."""
    from omegaconf import OmegaConf

    from sgpo.training import validate

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        base = OmegaConf.to_container(compose(config_name="train", overrides=["method=sgpo"]), resolve=True)
        cfg = compose(config_name="train", overrides=[f"method={preset}"])
    validate(cfg)
    ablated = OmegaConf.to_container(cfg, resolve=True)
    for key, value in ABLATIONS[preset].items():
        assert OmegaConf.select(cfg, key) == value != OmegaConf.select(OmegaConf.create(base), key)

    def flat(d, prefix=""):
        return {k2: v2 for k, v in d.items() for k2, v2 in
                (flat(v, f"{prefix}{k}.").items() if isinstance(v, dict) else [(f"{prefix}{k}", v)])}

    changed = {k for k in set(flat(base)) | set(flat(ablated)) if flat(base).get(k) != flat(ablated).get(k)}
    assert changed == {*ABLATIONS[preset], "method_name"}, changed


def test_method_preset_can_be_overridden_on_top(tmp_path):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["method=sgpo_refresh", "allocation=inverse", "curriculum=sorted"])
    assert cfg.method_name == "sgpo_refresh" and cfg.filter.name == "sgpo"
    assert cfg.allocation.name == "inverse" and cfg.curriculum.name == "sorted"


@pytest.mark.parametrize("method", ["sgpo_every_step", "sgpo"])
def test_checkpoint_resume_matches_uninterrupted_run(tmp_path, method):
    """The posterior and the walk travel in checkpoints (GRPO's static data path is resumed after a
    SIGKILL in test_faults.py); with method=sgpo so do the mixed groups waiting for an update (4
    here, not 16: at step 2 some wait)."""
    common = ["train.max_steps=4", "checkpoint.every_n_steps=2", "checkpoint.keep_all=true", f"method={method}"]
    if method == "sgpo":
        common.append("algo.min_mixed_groups=4")
    full = run_train(tmp_path / "full", *common)
    ckpt = tmp_path / "full" / "run" / "checkpoints" / "step-2.ckpt"  # the uninterrupted run's own step 2
    assert ckpt.is_file()
    if method == "sgpo":  # the checkpoint holds waiting groups, so the resume has something to restore
        assert torch.load(ckpt, weights_only=False)["sgpo"]["pending"]["groups"] > 0
    resumed = run_train(tmp_path / "resumed", *common, f"ckpt_path={ckpt}")
    for key in ("compute/rollout_flops", "compute/train_flops", "compute/wasted_flops", "compute/total_flops",
                "train/steps"):
        assert resumed[key] == pytest.approx(full[key], rel=1e-9), key
    assert resumed["test/pass@1"] == pytest.approx(full["test/pass@1"])
    if method == "sgpo":  # some steps waited for mixed groups, the same ones in both runs
        assert resumed["train/deferred_steps_total"] == full["train/deferred_steps_total"] > 0
    # same data order and rollouts after the resume point: the per-step logs of steps 3-4 agree
    import csv

    def step_rows(run: Path) -> dict[float, dict]:
        rows = csv.DictReader((run / "run" / "csv" / "metrics.csv").open())
        return {float(r["train/steps"]): r for r in rows if r.get("train/reward_mean")}

    a, b = step_rows(tmp_path / "full"), step_rows(tmp_path / "resumed")
    for step in (3.0, 4.0):
        keys = ["train/reward_mean", "train/group_size_mean", "train/groups", "compute/total_flops",
                "selection/posterior_mean", "train/screened_groups_total", "train/committed_groups_total"]
        for key in keys:
            assert float(a[step][key]) == pytest.approx(float(b[step][key]), rel=1e-9), (step, key)


def test_wandb_offline_run_holds_logged_keys(tmp_path):
    from sgpo.wandb_offline import read_history, read_summary

    run_train(tmp_path, "logger=wandb", "logger.wandb.offline=true")
    files = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    history = read_history(files[0])
    keys = set().union(*history)
    for key in ("train/reward_mean", "compute/total_flops", "compute/wasted_flops", "curriculum/phase",
                "test/pass@1", "val/pass@1"):
        assert key in keys, (key, sorted(keys))
    assert all("compute/total_flops" in row for row in history if "test/pass@1" in row), "eval rows carry the x-axis"
    summary = read_summary(files[0])
    assert summary["train/steps"] == 3 and "test/pass@1_before" in summary


def test_compute_budget_stops_the_run_and_tensorboard_logs(tmp_path):
    metrics = run_train(tmp_path, "train.max_steps=50", "train.max_total_flops=1.0", "logger=tensorboard")
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert metrics["train/steps"] == 1, "the first step alone exceeds 1 FLOP: stop after it"
    assert "compute budget" in metrics["train/stop_reason"]


def test_non_finite_loss_skips_update_and_is_counted(tmp_path):
    """An injected NaN loss: no update happens, the run finishes, the skip is counted."""
    from sgpo.algos.losses import LOSSES
    from sgpo.training import run

    if "nan_for_test" not in LOSSES:
        @LOSSES.register("nan_for_test")
        def nan_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, **_):
            return (logprobs * mask).sum() * float("nan"), {}

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*FAST, "method=grpo", "loss.name=nan_for_test",
                                                       f"paths.output_dir={tmp_path / 'out'}",
                                                       f"paths.run_dir={tmp_path / 'run'}"])
    metrics = run(cfg)
    assert metrics["train/steps"] == 3 and metrics["train/skipped_updates"] >= 1
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "policy")
    base = AutoModelForCausalLM.from_pretrained(TINY)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), base.state_dict().values()))


def test_compute_matched_experiment_runs_with_each_methods_tuned_lr(tmp_path):
    """experiment=compute_matched sets optim.lr by interpolation on the method: it must reach the optimiser resolved."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        lrs = {m: compose(config_name="train", overrides=["experiment=compute_matched", f"method={m}"]).optim.lr
               for m in ("grpo", "dapo", "sgpo_refresh", "sgpo_paper", "sgpo_filter_only")}
    assert lrs == {"grpo": 5e-5, "dapo": 2e-4, "sgpo_refresh": 2e-4, "sgpo_paper": 1e-4, "sgpo_filter_only": 1e-4}
    from sgpo.training import train

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "experiment=compute_matched", "method=grpo", "debug=fdr", "optim.weight_decay=0.01", "optim.betas=[0.8,0.95]",
            f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={tmp_path / 'run'}"])
    metrics, objects = train(cfg)
    assert metrics["train/steps"] == 2
    (optimizer,) = objects["trainer"].optimizers
    group = optimizer.param_groups[0]
    assert (type(optimizer).__name__, group["lr"], group["betas"], group["weight_decay"]) == ("AdamW", 5e-5, (0.8, 0.95),
                                                                                             0.01)


def test_skipping_zero_advantage_rows_ends_at_the_same_weights_as_training_on_them(tmp_path):
    """3 train.py steps with algo.skip_zero_adv true and false: the same policy (float64, so rounding
    order cannot hide a scale difference); only the FLOPs ledger differs."""
    from safetensors.torch import load_file

    runs = {}
    for skip in ("true", "false"):
        metrics = run_train(tmp_path / skip, "method=grpo", "trainer.precision=64-true", f"algo.skip_zero_adv={skip}")
        runs[skip] = (metrics, load_file(tmp_path / skip / "run" / "policy" / "model.safetensors"))
    (skipped, w_skip), (every, w_every) = runs["true"], runs["false"]
    base = load_file(TINY / "model.safetensors")
    assert max(float((w_every[k].double() - base[k].double()).abs().max()) for k in base) > 1e-5, "weights must move"
    diff = max(float((w_skip[k] - w_every[k]).abs().max()) for k in w_every)
    assert diff <= 1e-12, diff
    assert skipped["test/pass@1"] == every["test/pass@1"]
    assert skipped["compute/rollout_flops"] == every["compute/rollout_flops"]
    assert skipped["compute/train_flops"] < every["compute/train_flops"]
    # the zero-advantage rows' training is wasted when they are trained on, and not spent when skipped
    assert every["compute/wasted_flops"] - skipped["compute/wasted_flops"] == pytest.approx(
        every["compute/train_flops"] - skipped["compute/train_flops"], rel=1e-9)


def test_evaluation_follows_a_total_flops_schedule(tmp_path):
    """eval.at_total_flops: one evaluation at the first step whose total FLOPs reach each point,
    recording the exact FLOPs; pass@1 and mean@k come with their standard errors."""
    import csv

    points = [2e9, 3e9, 4e9, 5e9, 6e9, 8e9, 1e10, 1.5e10]
    metrics = run_train(tmp_path, "method=grpo", "train.max_steps=5", f"eval.at_total_flops=[{','.join(map(str, points))}]")
    rows = csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open())
    step_totals = {int(float(r["train/steps"])): float(r["compute/total_flops"]) for r in rows if r.get("train/reward_mean")}
    steps = sorted(step_totals)
    assert steps == [1, 2, 3, 4, 5]
    served = [h for h in metrics["eval_history"] if "eval/checkpoint_flops" in h]
    assert served, "the schedule must trigger evaluations"
    for h in served:
        point, step = h["eval/checkpoint_flops"], int(h["train/steps"])
        assert h["compute/total_flops"] == pytest.approx(step_totals[step], rel=1e-6)  # the CSV holds float32
        assert h["compute/total_flops"] >= point
        assert step == 1 or step_totals[step - 1] < point, "at the first step that reaches the point"
    want = sorted({next(s for s in steps if step_totals[s] >= p) for p in points if p <= step_totals[5]})
    assert sorted(int(h["train/steps"]) for h in served) == want, "one evaluation per step, however many points it crosses"
    queries = 32
    for h in metrics["eval_history"]:
        p = h["test/pass@1"]
        assert h["test/pass@1_se"] == pytest.approx((p * (1 - p) / queries) ** 0.5)
        assert 0 <= h["test/mean@k_se"] <= 0.5 / queries ** 0.5 + 1e-9


def test_adaptive_sgpo_screens_commits_and_logs_its_selection(tmp_path):
    """method=sgpo: nothing dropped, groups screened with 2 rollouts and finished only when worth it,
    the posterior's view logged every step; ablations switch each part off by an override."""
    import csv

    metrics = run_train(tmp_path / "on", "method=sgpo", "train.max_steps=4")
    assert metrics["data/queries_kept"] == 128 and metrics["data/queries_profiled"] == 0  # no profile: all kept
    rows = [r for r in csv.DictReader((tmp_path / "on" / "run" / "csv" / "metrics.csv").open())
            if r.get("train/reward_mean")]
    last = rows[-1]
    screened, committed = float(last["train/screened_groups_total"]), float(last["train/committed_groups_total"])
    assert 0 < committed < screened, "some screens must be finished and some left as they were"
    assert all(float(r["selection/candidates"]) > 0 for r in rows)
    assert {"selection/revisits", "selection/believed_degenerate", "selection/posterior_mean"} <= set(last)
    off = run_train(tmp_path / "off", "method=sgpo_no_screen", "train.max_steps=4")
    off_rows = list(csv.DictReader((tmp_path / "off" / "run" / "csv" / "metrics.csv").open()))
    assert "train/screened_groups_total" not in off_rows[0]
    assert off["compute/rollout_flops"] > 0


def test_a_bad_selection_rule_is_refused_before_any_work(tmp_path):
    proc = run_cli("train.py", *FAST, "method=sgpo_pods", "selection.rule.value=entropy",  # a method that profiles
                   f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={tmp_path / 'run'}", check=False)
    assert proc.returncode != 0
    assert "selection.rule=" in proc.stderr + proc.stdout and "known: advantage, mixed" in proc.stderr + proc.stdout
    assert not (tmp_path / "out" / "profiles").exists(), "refused before profiling"
