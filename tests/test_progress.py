"""The training progress bar's postfix: short names, FLOPs in scientific notation, no v_num."""

from __future__ import annotations

from sgpo.progress import RunProgressBar, format_postfix


def test_postfix_names_and_formats():
    logged = {"compute/total_flops": 4967180533760.0, "train/reward_mean": 0.52349, "curriculum/phase": 1.0}
    postfix = format_postfix(logged)
    assert postfix == {"reward": "0.523", "phase": "1", "FLOPs": "4.97e12"}
    assert list(postfix) == ["reward", "phase", "FLOPs"]  # the bar's order, whatever order they were logged in


def test_postfix_small_numbers_and_other_metrics():
    postfix = format_postfix({"compute/total_flops": 0.00153, "actor/grad_norm": 0.123456, "train/reward_mean": 1})
    assert postfix == {"reward": "1.000", "FLOPs": "1.53e-3", "grad_norm": "0.1235"}


def test_bar_shows_only_the_formatted_postfix():
    class Trainer:  # what get_metrics reads from Lightning's trainer
        progress_bar_metrics = {"train/reward_mean": 0.25, "compute/total_flops": 1.0e9}

    assert RunProgressBar().get_metrics(Trainer(), None) == {"reward": "0.250", "FLOPs": "1.00e9"}
