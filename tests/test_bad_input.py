"""Bad input is refused at start with the key, file, row and field named, or skipped and reported.

Covers the jsonl loader (error and skip modes, very long prompts), the arithmetic generator's
config, unknown registry names, and out-of-range values: all refused before any profiling.
"""

from __future__ import annotations

import json
import logging

import pytest
from conftest import REPO, run_cli
from hydra import compose, initialize_config_dir

from sgpo.tasks import build_task
from sgpo.tasks.jsonl import DataError, read_jsonl
from sgpo.training import validate

GOOD = {"prompt": "1+1=", "answer": "2"}
# (raw line, reason the skip report must give)
BAD_ROWS = [
    (b"{bad json", "bad JSON"),
    (json.dumps({"prompt": "x"}).encode(), "missing field 'answer'"),
    (json.dumps({"answer": "3"}).encode(), "missing field 'prompt'"),
    (json.dumps({"prompt": "", "answer": "1"}).encode(), "field 'prompt' is empty"),
    (json.dumps({"prompt": "2+2=", "answer": " "}).encode(), "field 'answer' is empty"),
    (json.dumps({"prompt": {"a": 1}, "answer": "1"}).encode(), "field 'prompt' must be a string"),
    (json.dumps({"prompt": "3+3=", "answer": True}).encode(), "field 'answer' must be a string"),
    (json.dumps("just a string").encode(), "expected a JSON object"),
    (b"\xc3\x28 not utf-8", "not valid UTF-8"),
    (json.dumps(GOOD).encode(), "duplicate id"),
    (json.dumps({"prompt": "9" * 20_000 + "=", "answer": "1"}).encode(), "above task.max_prompt_chars=16000"),
]


def write_rows(path, rows):
    path.write_bytes(b"\n".join([json.dumps(GOOD).encode(), *rows, json.dumps({"prompt": "5+5=", "answer": "10"}).encode()])
                     + b"\n")
    return path


@pytest.mark.parametrize("raw, reason", BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_each_bad_row_fails_naming_file_line_and_field(tmp_path, raw, reason):
    path = write_rows(tmp_path / "train.jsonl", [raw])
    with pytest.raises(DataError) as err:
        read_jsonl(path, "prompt", "answer", max_prompt_chars=16000)
    assert f"{path}:2:" in str(err.value) and reason in str(err.value)


def test_skip_mode_skips_every_bad_row_and_reports_which(tmp_path, caplog):
    path = write_rows(tmp_path / "train.jsonl", [raw for raw, _ in BAD_ROWS])
    with caplog.at_level(logging.WARNING, logger="sgpo.tasks.jsonl"):
        task = build_task({"type": "jsonl", "name": "mine", "train_path": str(path), "on_bad_row": "skip"})
    kept = task.split("train")
    assert [q.prompt for q in kept] == ["1+1=", "5+5="], "only the good rows are kept, in order"
    skipped = task.skipped["train"]
    assert len(skipped) == len(BAD_ROWS)
    for line_no, ((_, reason), message) in enumerate(zip(BAD_ROWS, skipped), start=2):
        assert message.startswith(f"{path}:{line_no}:") and reason in message
    assert f"skipped {len(BAD_ROWS)} malformed rows of {path}" in caplog.text


def test_skip_mode_with_nothing_usable_is_still_an_error(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"{bad\n[1]\n")
    with pytest.raises(DataError, match="no usable rows .2 skipped"):
        read_jsonl(path, "prompt", "answer", on_bad_row="skip")


def test_unknown_bad_row_policy_lists_the_valid_ones(tmp_path):
    path = write_rows(tmp_path / "train.jsonl", [])
    with pytest.raises(ValueError, match="task.on_bad_row='ignore'; valid: error, skip"):
        read_jsonl(path, "prompt", "answer", on_bad_row="ignore")


@pytest.mark.parametrize("params, key", [
    ({"min_digits": 0}, "task.min_digits=0"),
    ({"min_digits": 4, "max_digits": 2}, "task.min_digits=4, task.max_digits=2"),
    ({"max_digits": 19}, "task.max_digits=19"),
    ({"operators": ["/"]}, "task.operators=['/']"),
    ({"operators": []}, "task.operators=[]"),
    ({"num_train": -1}, "task.num_train=-1"),
    ({"max_digits": 1, "num_train": 5000}, "widen task.min_digits/task.max_digits"),
])
def test_arithmetic_generator_config_errors_name_the_key(params, key):
    with pytest.raises(ValueError) as err:
        build_task({"type": "arithmetic", "name": "arithmetic", **params})
    assert key in str(err.value)


def compose_train(*overrides):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


@pytest.mark.parametrize("override, message", [
    ("filter.trivial_threshold=1.5", "filter.trivial_threshold=1.5 must be in [0, 1]"),
    ("filter.trivial_threshold=-0.1", "filter.trivial_threshold=-0.1 must be in [0, 1]"),
    ("filter.keep_unsolvable=2", "filter.keep_unsolvable=2 must be in [0, 1]"),
    ("allocation.g_min=1", "allocation.g_min=1: a group needs at least 2 rollouts"),
    ("profile.num_samples=0", "profile.num_samples=0: must be an int >= 1"),
    ("data.rollouts_per_step=4", "data.rollouts_per_step=4 is smaller than the largest group this allocation can give (8)"),
    ("allocation.name=foo", "allocation.name='foo' is not registered; valid: budgeted, inverse, inverse_pow2, uniform"),
    ("loss.name=ppo", "loss.name='ppo' is not registered; valid: dapo, dr_grpo, grpo"),
    ("optim.lr=0", "optim.lr=0: must be a float > 0"),
    ("algo.train_rows=1", "algo.train_rows=1: must be null (train on every rollout) or an int >= 2"),
    ("algo.train_rows_rule=top", "algo.train_rows_rule='top': must be a registered down-sampling rule"),
])
def test_out_of_range_values_are_refused_naming_the_key(override, message):
    with pytest.raises((ValueError, KeyError)) as err:
        validate(compose_train("method=sgpo_paper", override))  # the paper's filter and group-size rule
    assert message in str(err.value)


@pytest.mark.parametrize("overrides, message", [
    (["allocation=inverse"], "allocation=inverse: with a selection config the adaptive sampler sizes and orders"),
    (["curriculum=sorted"], "curriculum=sorted: with a selection config"),
    (["data.refresh_p_hat=true"], "data.refresh_p_hat=true: the adaptive sampler's posterior already follows"),
    (["algo.dynamic_sampling=true"], "algo.dynamic_sampling=true with a selection config"),
    (["selection.rule.name=greedy"], "selection.rule.name='greedy' is not registered; valid: knapsack"),
    (["selection.rule.value=entropy"], "known: advantage, mixed"),
    (["selection.rule.sizes=[1,4]"], "selection.rule.sizes=[1, 4]: every group needs at least 2 rollouts"),
    (["+selection.rule.width=3"], "unexpected keyword argument 'width'"),
    (["~selection.rule.sizes"], "selection.rule.sizes is missing"),
    (["selection.rule.sizes=[2,32]", "data.rollouts_per_step=16"],
     "data.rollouts_per_step=16 is smaller than the largest group selection.rule.sizes allows (32)"),
])
def test_adaptive_sgpo_settings_are_refused_naming_the_key(overrides, message):
    with pytest.raises((ValueError, KeyError)) as err:
        validate(compose_train("method=sgpo", *overrides))
    assert message in str(err.value)


def test_refused_at_start_before_any_profiling(tmp_path):
    """A bad value stops train.py before it profiles (no profile folder) and the message names the key."""
    proc = run_cli("train.py", "method=sgpo_paper", "filter.trivial_threshold=1.5", f"paths.output_dir={tmp_path}",
                   check=False)
    assert proc.returncode != 0
    assert "filter.trivial_threshold=1.5 must be in [0, 1]" in proc.stderr
    assert not (tmp_path / "profiles").exists()


def test_unknown_group_option_lists_the_valid_ones(tmp_path):
    proc = run_cli("train.py", "allocation=foo", f"paths.output_dir={tmp_path}", check=False)
    assert proc.returncode != 0
    assert "allocation/foo" in proc.stderr and "inverse_pow2" in proc.stderr and "uniform" in proc.stderr


@pytest.mark.parametrize("params, message", [
    ({"name": "no_such_generator"}, "task.name='no_such_generator' is not a reasoning_gym generator; valid:"),
    ({"generator_args": {"no_such_option": 1}}, "task.generator_args={'no_such_option': 1} rejected"),
    ({"generator_args": {"min_terms": 5, "max_terms": 2}}, "rejected by the reasoning_gym generator 'basic_arithmetic'"),
    ({"num_train": -1}, "task.num_train=-1 must be >= 0"),
])
def test_reasoning_gym_config_errors_name_the_key(params, message):
    cfg = {"type": "reasoning_gym", "name": "basic_arithmetic", "num_train": 4, "num_val": 2, "num_test": 2, **params}
    with pytest.raises((KeyError, ValueError)) as err:
        build_task(cfg)
    assert message in str(err.value)


def test_datasets_loader_reports_unreadable_local_files(tmp_path):
    bad = tmp_path / "train.parquet"
    bad.write_bytes(b"not parquet")
    cfg = {"type": "hf_dataset", "name": "gsm8k",
           "sources": {"train": {"path": "parquet", "data_files": str(bad), "split": "train"}}}
    with pytest.raises(DataError, match=f"task.sources.train: could not read {bad} as parquet"):
        build_task(cfg)


def test_waiting_for_mixed_groups_is_refused_where_degenerate_rows_would_train():
    validate(compose_train("method=sgpo"))
    # experiment=compute_matched trains degenerate rows (the paper's accounting): it turns the waiting off
    validate(compose_train("experiment=compute_matched"))
    with pytest.raises(ValueError, match=r"algo.min_mixed_groups=16 .* algo.skip_zero_adv=true \(now False\)"):
        validate(compose_train("method=sgpo", "algo.skip_zero_adv=false"))
    with pytest.raises(ValueError, match=r"loss.beta=0 \(now 0.1\)"):
        validate(compose_train("method=sgpo", "loss.beta=0.1"))
    with pytest.raises(ValueError, match="algo.min_mixed_groups"):
        validate(compose_train("method=sgpo", "algo.min_mixed_groups=0"))


def test_a_down_sampling_rule_that_may_unmix_groups_is_refused_with_dapo():
    validate(compose_train("method=dapo", "algo.train_rows=4"))  # max_variance keeps mixed groups mixed
    with pytest.raises(ValueError, match="algo.train_rows_rule=random with algo.dynamic_sampling=true"):
        validate(compose_train("method=dapo", "algo.train_rows=4", "algo.train_rows_rule=random"))
