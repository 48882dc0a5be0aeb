"""sgpo.report on hand-made run folders: FLOPs to target, ratios, equal-compute accuracy, files."""

import json

import pytest
import yaml

from sgpo.report.__main__ import main


def make_run(folder, method, seed, flops, pass1, profile=0.0, k=8, allocation="inverse_pow2", wasted_share=0.25,
             wall_s=1.0):
    folder.mkdir(parents=True)
    (folder / ".hydra").mkdir()
    config = {"method_name": method, "seed": seed, "profile": {"num_samples": k, "enabled": True},
              "allocation": {"name": allocation}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    history = [{"test/pass@1": p, "compute/total_flops": f} for f, p in zip(flops, pass1)]
    metrics = {"test/pass@1": pass1[-1], "test/pass@1_before": pass1[0], "compute/total_flops": flops[-1],
               "compute/profile_flops": profile, "compute/rollout_flops": flops[-1] / 2 - profile,
               "compute/train_flops": flops[-1] / 2, "compute/wasted_flops": wasted_share * (flops[-1] - profile),
               "wall_s": wall_s,
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


def test_report_on_seeds_with_different_curves_gives_the_hand_computed_medians_ranges_and_shares(tmp_path):
    """Three seeds per method, each with its own curve, final pass@1, waste and wall time; every number of
    the table below is worked out by hand from them."""
    grpo = [([1, 10, 20, 30], [0.50, 0.60, 0.65, 0.70], 0.1, 3.0),   # reaches 0.70 at 30
            ([1, 10, 20, 40], [0.40, 0.70, 0.72, 0.74], 0.3, 1.0),   # at 10
            ([1, 15, 25, 35], [0.45, 0.55, 0.60, 0.62], 0.2, 2.0)]   # never
    sgpo = [([2, 5, 12, 45], [0.50, 0.70, 0.75, 0.80], 0.05, 1.0),   # at 5
            ([2, 8, 16, 50], [0.45, 0.65, 0.72, 0.78], 0.15, 5.0),   # at 16
            ([2, 6, 20, 42], [0.40, 0.60, 0.66, 0.71], 0.40, 4.0)]   # at 42
    for seed, (flops, pass1, waste, wall) in enumerate(grpo):
        make_run(tmp_path / f"g{seed}", "grpo", seed, flops, pass1, wasted_share=waste, wall_s=wall)
    for seed, (flops, pass1, waste, wall) in enumerate(sgpo):
        make_run(tmp_path / f"s{seed}", "sgpo", seed, flops, pass1, profile=1.0, wasted_share=waste, wall_s=wall)
    report = main([str(tmp_path)])
    assert report["target_pass1"] == 0.70, "grpo's median final pass@1 of 0.70, 0.74, 0.62"
    assert report["equal_compute_flops"] == 30, "the smallest final budget of all six runs"
    g, s = report["methods"]["grpo"], report["methods"]["sgpo"]
    assert g["seeds"] == [0, 1, 2] and s["seeds"] == [0, 1, 2]
    # FLOPs to 0.70: grpo 30, 10, never -> median of [10, 30, inf] = 30; sgpo 5, 16, 42 -> 16
    assert (g["flops_to_target"], g["flops_to_target_range"]) == (30, [10, float("inf")])
    assert (s["flops_to_target"], s["flops_to_target_range"]) == (16, [5, 42])
    assert s["ratio_vs_grpo"] == pytest.approx(30 / 16) and g["ratio_vs_grpo"] == pytest.approx(1.0)
    assert (g["final_pass1"], g["final_pass1_range"]) == (0.70, [0.62, 0.74])
    assert (s["final_pass1"], s["final_pass1_range"]) == (0.78, [0.71, 0.80])
    # pass@1 at 30 FLOPs, the last evaluation at or below it: grpo 0.70, 0.72, 0.60; sgpo 0.75, 0.72, 0.66
    assert g["pass1_at_equal_compute"] == 0.70 and s["pass1_at_equal_compute"] == 0.72
    assert g["pass1_before"] == 0.45 and s["pass1_before"] == 0.45
    assert g["total_flops"] == 35 and s["total_flops"] == 45
    assert g["wasted_share"] == pytest.approx(0.2) and s["wasted_share"] == pytest.approx(0.15)
    assert g["profile_share"] == 0 and s["profile_share"] == pytest.approx(1 / 45), "median of 1/45, 1/50, 1/42"
    assert g["wall_s"] == 2.0 and s["wall_s"] == 4.0
    text = (tmp_path / "REPORT.md").read_text()
    assert "| sgpo | 3 | 1.60e+01 | 5.00e+00-4.20e+01 | 1.88x | 0.780 (0.710-0.800) | 0.720 | 0.450 | 15.0% | 2.2% |" in text
    assert "| grpo | 3 | 3.00e+01 | 1.00e+01-never | 1.00x | 0.700 (0.620-0.740) | 0.700 | 0.450 | 20.0% | 0.0% |" in text
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["methods"]["grpo"]["flops_to_target_range"] == [10, None]


def test_most_seeds_never_reaching_the_target_make_the_median_never(tmp_path):
    """Two of three seeds never reach the target: the median is "never", even though one seed did."""
    make_run(tmp_path / "g0", "grpo", 0, [1, 10], [0.5, 0.9])
    make_run(tmp_path / "g1", "grpo", 1, [1, 10], [0.5, 0.6])
    make_run(tmp_path / "g2", "grpo", 2, [1, 10], [0.5, 0.6])
    report = main([str(tmp_path), "--target", "0.8"])
    assert report["methods"]["grpo"]["flops_to_target"] == float("inf")
    assert report["methods"]["grpo"]["flops_to_target_range"] == [10, float("inf")]
