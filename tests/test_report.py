"""sgpo.report on hand-made run folders: FLOPs to target, ratios, equal-compute accuracy, files."""

import json

import pytest
import yaml

from sgpo.report.__main__ import main


def make_run(folder, method, seed, flops, pass1, profile=0.0, k=8, allocation="inverse_pow2"):
    folder.mkdir(parents=True)
    (folder / ".hydra").mkdir()
    config = {"method_name": method, "seed": seed, "profile": {"num_samples": k, "enabled": True},
              "allocation": {"name": allocation}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    history = [{"test/pass@1": p, "compute/total_flops": f} for f, p in zip(flops, pass1)]
    metrics = {"test/pass@1": pass1[-1], "test/pass@1_before": pass1[0], "compute/total_flops": flops[-1],
               "compute/profile_flops": profile, "compute/rollout_flops": flops[-1] / 2 - profile,
               "compute/train_flops": flops[-1] / 2, "compute/wasted_flops": flops[-1] / 4, "wall_s": 1.0,
               "eval_history": history, "data/group_size_mix": {"2": 10, "8": 5}}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_report_ratios_and_files(tmp_path):
    for seed in range(3):
        make_run(tmp_path / f"g{seed}", "grpo", seed, [1, 10, 20, 30], [0.5, 0.6, 0.65, 0.7])
        make_run(tmp_path / f"s{seed}", "sgpo", seed, [2, 5, 10, 40], [0.5, 0.7, 0.72, 0.75], profile=1)
    report = main([str(tmp_path)])
    assert report["target_pass1"] == 0.7
    grpo, sgpo = report["methods"]["grpo"], report["methods"]["sgpo"]
    assert grpo["flops_to_target"] == 30 and sgpo["flops_to_target"] == 5
    assert sgpo["ratio_vs_grpo"] == pytest.approx(6.0) and grpo["ratio_vs_grpo"] == pytest.approx(1.0)
    assert report["equal_compute_flops"] == 30
    assert sgpo["pass1_at_equal_compute"] == 0.72 and grpo["pass1_at_equal_compute"] == 0.7
    assert sgpo["final_pass1"] == 0.75 and sgpo["profile_share"] == pytest.approx(1 / 40)
    for name in ("REPORT.md", "report.json", "pass1_vs_flops.png", "group_mix.png"):
        assert (tmp_path / name).is_file(), name
    assert "| sgpo | 3 |" in (tmp_path / "REPORT.md").read_text()


def test_never_reaching_target_is_inf_and_ratio_none(tmp_path):
    for seed in range(2):
        make_run(tmp_path / f"g{seed}", "grpo", seed, [1, 10], [0.5, 0.7])
        make_run(tmp_path / f"d{seed}", "dapo", seed, [1, 10], [0.5, 0.6])
    report = main([str(tmp_path)])
    assert report["methods"]["dapo"]["flops_to_target"] == float("inf")
    assert report["methods"]["dapo"]["ratio_vs_grpo"] is None
    written = json.loads((tmp_path / "report.json").read_text())  # strict JSON: no Infinity
    assert written["methods"]["dapo"]["flops_to_target"] is None


def test_sweep_over_k_and_allocation_gives_a_grid_and_heatmap(tmp_path):
    """Rows k, columns allocation; each cell the median over seeds of FLOPs to target and final pass@1."""
    final = {(4, "inverse"): 0.60, (4, "uniform"): 0.70, (8, "inverse"): 0.80, (8, "uniform"): 0.65}
    for (k, rule), top in final.items():
        for seed in range(2):
            make_run(tmp_path / f"{k}-{rule}-{seed}", "sgpo", seed, [1, 10, 20], [0.5, top - 0.05, top],
                     k=k, allocation=rule)
    report = main([str(tmp_path), "--target", "0.7"])
    grid = report["sweep"]
    assert grid["rows"] == ["4", "8"] and grid["cols"] == ["inverse", "uniform"]
    assert grid["cells"]["8"]["inverse"] == {"seeds": [0, 1], "flops_to_target": 10.0, "final_pass1": 0.8}
    assert grid["cells"]["4"]["uniform"]["flops_to_target"] == 20.0
    assert grid["cells"]["4"]["inverse"]["flops_to_target"] is None  # never reached
    assert set(report["methods"]) == {f"sgpo [k={k}, allocation={r}]" for k, r in final}
    text = (tmp_path / "REPORT.md").read_text()
    assert "| 8 | 1.00e+01 / 0.800 | never / 0.650 |" in text and "| 4 | never / 0.600 |" in text
    assert (tmp_path / "sweep_heatmap.png").stat().st_size > 1000


def test_method_comparison_has_no_grid(tmp_path):
    make_run(tmp_path / "g", "grpo", 0, [1, 10], [0.5, 0.7], k=8, allocation="uniform")
    make_run(tmp_path / "s", "sgpo", 0, [1, 10], [0.5, 0.7], k=8)
    report = main([str(tmp_path)])
    assert "sweep" not in report and set(report["methods"]) == {"grpo", "sgpo"}


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        main([str(tmp_path)])
