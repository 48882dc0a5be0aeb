import numpy as np
import pytest
from transformers import LlamaConfig

from sgpo.flops import ModelShape, forward_flops_per_token, sequence_forward_flops, sequence_train_flops


def tiny_shape():
    config = LlamaConfig(vocab_size=99, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4)
    return ModelShape.from_config(config)


def test_matmul_params_hand_count_for_tiny_model():
    # per layer: q,k,v,o 4 x 128 x 128 = 65,536; gated MLP 3 x 128 x 512 = 196,608
    # 4 layers: 1,048,576; LM head 99 x 128 = 12,672
    assert tiny_shape().matmul_params == 1_048_576 + 12_672


def test_forward_flops_per_token_and_sequence_hand_count():
    shape = tiny_shape()
    p = 1_061_248
    assert forward_flops_per_token(shape, 1) == 2 * p + 4 * 4 * 128 * 1
    # 3 tokens: 3 x 2P + 4 x n_layer x d_attn x (1 + 2 + 3)
    assert sequence_forward_flops(shape, 3) == 3 * 2 * p + 4 * 4 * 128 * 6
    assert sequence_forward_flops(shape, 3) == sum(forward_flops_per_token(shape, t) for t in (1, 2, 3))
    assert sequence_train_flops(shape, 3) == 3 * sequence_forward_flops(shape, 3)


def test_vectorised_lengths():
    shape = tiny_shape()
    out = sequence_forward_flops(shape, np.array([[1, 2], [3, 0]]))
    assert out.shape == (2, 2) and out[1, 1] == 0
    assert out[0, 1] == pytest.approx(sequence_forward_flops(shape, 2))


def test_gqa_and_head_dim_from_config():
    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=8, num_key_value_heads=2, head_dim=16)
    shape = ModelShape.from_config(config)
    # q 64x128, k,v 64x32 each, o 128x64, mlp 3x64x128; LM head 1000x64
    assert shape.matmul_params == 2 * (64 * 128 + 2 * 64 * 32 + 128 * 64 + 3 * 64 * 128) + 1000 * 64


def test_shipped_model_matches_hand_count(tiny_policy):
    model, tokenizer = tiny_policy
    shape = ModelShape.from_config(model.config)
    assert shape.matmul_params == 1_048_576 + len(tokenizer) * 128


def test_rollouts_forward_flops_per_sample_prefill_sums_prompt_plus_each_completion():
    from sgpo.flops import rollouts_forward_flops

    shape = tiny_shape()
    assert rollouts_forward_flops(shape, 3, [2, 5], shared_prompt=False) == \
        sequence_forward_flops(shape, 5) + sequence_forward_flops(shape, 8)
    assert rollouts_forward_flops(shape, 3, [], shared_prompt=False) == 0.0


def test_rollouts_forward_flops_with_a_shared_prompt_hand_count():
    """Prompt of 3 tokens once, then completions of 2 and 5 tokens at positions 4.. (attending the prompt)."""
    from sgpo.flops import rollouts_forward_flops

    shape = tiny_shape()
    p, attn = 1_061_248, 4 * 4 * 128  # 2P per token; 4 n_layer d_attn per attended position
    prompt = 3 * 2 * p + attn * (1 + 2 + 3)
    first = 2 * 2 * p + attn * (4 + 5)                  # completion tokens at positions 4, 5
    second = 5 * 2 * p + attn * (4 + 5 + 6 + 7 + 8)     # positions 4..8
    assert rollouts_forward_flops(shape, 3, [2, 5], shared_prompt=True) == prompt + first + second
    assert rollouts_forward_flops(shape, 3, [4], shared_prompt=True) == rollouts_forward_flops(
        shape, 3, [4], shared_prompt=False), "one sample: nothing is shared"
    assert rollouts_forward_flops(shape, 3, [], shared_prompt=True) == 0.0
    # the tiny policy's profile shape: 8 samples of a 7-token prompt, 4-token answers
    shared = rollouts_forward_flops(shape, 7, [4] * 8, shared_prompt=True)
    assert shared == pytest.approx(rollouts_forward_flops(shape, 7, [4] * 8, shared_prompt=False)
                                   - 7 * sequence_forward_flops(shape, 7))


def test_profile_flops_follow_the_engine_that_made_it():
    """Profiles record whether the prompt was prefilled once per query; old ones (no key) per sample."""
    from sgpo.profiling.store import DifficultyProfile

    shape = tiny_shape()
    outcomes = np.array([[True, False, True], [False, False, False]])
    completion = np.array([[2, 5, 1], [3, 3, 3]])
    prompt = np.array([3, 6])
    per_sample = DifficultyProfile(["a", "b"], outcomes, prompt, completion, outcomes & False, {})
    shared = DifficultyProfile(["a", "b"], outcomes, prompt, completion, outcomes & False, {"prompt_prefill": "shared"})
    want_per_sample = sum(sequence_forward_flops(shape, int(p + c)) for p, row in zip(prompt, completion) for c in row)
    assert per_sample.flops(shape) == pytest.approx(want_per_sample)
    assert shared.flops(shape) == pytest.approx(want_per_sample - 2 * (sequence_forward_flops(shape, 3)
                                                                      + sequence_forward_flops(shape, 6)))
