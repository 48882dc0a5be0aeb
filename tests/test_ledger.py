"""FlopsLedger by hand: charges by kind, settle over ranks, totals, metrics and checkpoint state;
and the branches of the FLOPs formula the shipped model does not take."""

import pytest

from sgpo.flops import sequence_forward_flops


def test_ledger_in_one_process_by_hand():
    """profile at start; rollout/train/wasted wait for settle(); eval counts at once but not in the total."""
    from sgpo.flops import FlopsLedger

    ledger = FlopsLedger(2.0)
    assert ledger.profile == 2.0 and ledger.total == 2.0 and ledger.reduce is None
    for kind, flops in (("rollout", 10), ("train", 4.5), ("wasted", 3), ("eval", 7), ("profile", 1)):
        ledger.charge(kind, flops)
    assert (ledger.rollout, ledger.train, ledger.wasted, ledger.eval, ledger.profile) == (0, 0, 0, 7.0, 3.0)
    assert ledger.pending == {"rollout": 10.0, "train": 4.5, "wasted": 3.0}
    ledger.settle()
    assert ledger.pending == {"rollout": 0.0, "train": 0.0, "wasted": 0.0}
    assert ledger.metrics() == {"compute/profile_flops": 3.0, "compute/rollout_flops": 10.0, "compute/train_flops": 4.5,
                                "compute/wasted_flops": 3.0, "compute/eval_flops": 7.0, "compute/total_flops": 17.5}
    ledger.charge("train", 0)  # zero is a valid charge
    with pytest.raises(ValueError, match=r"rollout FLOPs must be finite and >= 0, got -1.0"):
        ledger.charge("rollout", -1)
    with pytest.raises(ValueError, match="finite"):
        ledger.charge("eval", float("inf"))
    with pytest.raises(AttributeError, match="nope"):
        ledger.nope  # noqa: B018
    state = ledger.state_dict()
    assert state == {"profile": 3.0, "rollout": 10.0, "train": 4.5, "wasted": 3.0, "eval": 7.0}
    ledger.charge("train", 1.0)
    ledger.load_state_dict({**state, "extra": 1.0})
    assert ledger.pending == {"rollout": 0.0, "train": 0.0, "wasted": 0.0}, "a restore drops unsettled charges"
    assert ledger.totals == state and isinstance(ledger.totals["train"], float)


def test_ledger_settle_sums_over_ranks_in_kind_order():
    from sgpo.flops import FlopsLedger

    seen = []

    def reduce(values):
        seen.append(values)
        return [v + d for v, d in zip(values, (100.0, 200.0, 300.0))]  # the other rank's rollout, train, wasted

    ledger = FlopsLedger(0.0, reduce=reduce)
    ledger.charge("rollout", 1)
    ledger.charge("train", 2)
    ledger.charge("wasted", 3)
    ledger.settle()
    assert seen == [[1.0, 2.0, 3.0]]
    assert (ledger.rollout, ledger.train, ledger.wasted) == (101.0, 202.0, 303.0)


def test_flops_formula_branches():
    """An ungated MLP counts 2 d d_ff per layer; GQA/head_dim and defaults read off a config; C_seq(0) = 0."""
    from types import SimpleNamespace

    from sgpo.flops import ModelShape

    config = SimpleNamespace(num_attention_heads=2, hidden_size=8, num_hidden_layers=3, intermediate_size=16,
                             vocab_size=10, model_type="gpt2")
    shape = ModelShape.from_config(config)
    assert (shape.head_dim, shape.n_kv_heads, shape.gated_mlp) == (4, 2, False)
    assert shape.matmul_params == 3 * (4 * 8 * 8 + 2 * 8 * 16) + 10 * 8
    assert ModelShape.from_config(SimpleNamespace(**{**vars(config), "model_type": "qwen2"})).gated_mlp
    assert sequence_forward_flops(shape, 0) == 0.0 and isinstance(sequence_forward_flops(shape, 2), float)
    # C_seq(2) = 2 P 2 + 2 n_layer d_attn 2 3
    assert sequence_forward_flops(shape, 2) == 4 * shape.matmul_params + 2 * 3 * 8 * 6


def test_ledger_defaults_copies_and_the_unsettled_state_error():
    import copy
    import pickle
    import re

    from sgpo.flops import FlopsLedger

    assert FlopsLedger().total == 0.0 and FlopsLedger().profile == 0.0
    ledger = FlopsLedger(1.0)
    ledger.charge("train", 2.0)
    for clone in (copy.deepcopy(ledger), pickle.loads(pickle.dumps(ledger))):  # attribute lookup before __dict__ exists
        clone.settle()
        assert clone.total == 3.0
    with pytest.raises(RuntimeError, match="^" + re.escape(
            "FlopsLedger.state_dict with unsettled charges: call settle() first") + "$"):
        ledger.state_dict()


def test_head_dim_defaults_to_an_integer_division():
    from types import SimpleNamespace

    from sgpo.flops import ModelShape

    config = SimpleNamespace(num_attention_heads=3, hidden_size=10, num_hidden_layers=1, intermediate_size=4,
                             vocab_size=5, model_type="llama")
    assert ModelShape.from_config(config).head_dim == 3
