import numpy as np
import pytest

from sgpo.flops import ModelShape, sequence_forward_flops
from sgpo.profiling import store
from sgpo.profiling.store import CacheError, DifficultyProfile

SHAPE = ModelShape(n_layer=2, d_model=16, n_heads=2, n_kv_heads=2, head_dim=8, d_ff=32, vocab_size=20)


def make_rows():
    outcomes = [[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
    return [
        {"query_id": f"q{i}", "prompt_tokens": 3 + i, "outcomes": o, "completion_tokens": [2, 3, 4, 5],
         "truncated": [False, False, False, True]}
        for i, o in enumerate(outcomes)
    ]


def make_profile():
    table = store.rows_to_table(make_rows())
    profile = store.table_to_profile(table, {"model_shape": SHAPE.__dict__})
    profile.meta["profile_flops"] = profile.flops(SHAPE)
    return table, profile


def test_summary_fractions():
    _, profile = make_profile()
    s = profile.summary()
    assert s["num_queries"] == 4 and s["num_samples"] == 4
    assert s["frac_trivial"] == 0.25 and s["frac_unsolvable"] == 0.25 and s["frac_mixed"] == 0.5
    assert s["mean_success"] == pytest.approx((1 + 0 + 0.5 + 0.25) / 4)
    assert s["frac_truncated"] == 0.25


def test_prefix_keeps_first_outcomes_and_charges_only_their_flops():
    _, profile = make_profile()
    two = profile.prefix(2)
    assert two.num_samples == 2
    np.testing.assert_array_equal(two.outcomes, [[1, 1], [0, 0], [1, 0], [0, 0]])
    expected = sum(sequence_forward_flops(SHAPE, 3 + i + c) for i in range(4) for c in (2, 3))
    assert two.meta["profile_flops"] == pytest.approx(expected)
    assert two.meta["profile_flops"] < profile.meta["profile_flops"]
    assert two.summary()["frac_unsolvable"] == 0.5  # q1 and q3 have no success in their first 2
    assert profile.prefix(4) is profile
    with pytest.raises(ValueError, match="1..4"):
        profile.prefix(5)


def test_save_load_roundtrip_and_checksum(tmp_path):
    table, profile = make_profile()
    folder = tmp_path / "abc-k4"
    store.save_profile(folder, table, dict(profile.meta, fingerprint="f" * 64, num_samples=4))
    loaded = store.load_profile(folder)
    np.testing.assert_array_equal(loaded.outcomes, profile.outcomes)
    assert loaded.query_ids == profile.query_ids
    # flip a byte in the middle of the Parquet file: the checksum catches it
    data = bytearray((folder / store.PROFILE_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / store.PROFILE_FILE).write_bytes(bytes(data))
    with pytest.raises(CacheError, match="checksum"):
        store.load_profile(folder)


def test_find_complete_picks_smallest_sufficient_k(tmp_path):
    table, profile = make_profile()
    fp = "a" * 64
    for k in (4, 8):
        store.save_profile(tmp_path / f"{fp[:16]}-k{k}", table, {"fingerprint": fp, "num_samples": k})
    (tmp_path / f"{fp[:16]}-k16").mkdir()  # incomplete: no meta.json
    assert store.find_complete(tmp_path, fp, 2).name.endswith("-k4")
    assert store.find_complete(tmp_path, fp, 5).name.endswith("-k8")
    assert store.find_complete(tmp_path, fp, 9) is None
    assert store.find_complete(tmp_path, "b" * 64, 1) is None


def test_empty_profile_summary_is_defined():
    p = DifficultyProfile([], np.zeros((0, 0), np.int8), np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0), bool))
    assert p.summary()["num_queries"] == 0
