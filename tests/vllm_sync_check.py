"""Run by tests/test_vllm.py in its own process (vLLM wants a __main__ guard).

Takes one real optimiser step on the shipped policy from rollouts sampled by vLLM, syncs the
weights into vLLM, and prints JSON comparing vLLM's log-probs of a fixed sequence with the
trained policy's, before and after the sync.
"""

import json
import sys

if __name__ == "__main__":
    import torch

    from sgpo.algos.advantages import group_advantages
    from sgpo.algos.losses import LOSSES
    from sgpo.engines.base import SamplingParams
    from sgpo.engines.vllm import VLLMEngine
    from sgpo.models import load_policy
    from sgpo.rollouts import pack_rollouts, token_logprobs

    path = sys.argv[1]
    policy, tok = load_policy(path)
    engine = VLLMEngine(path)
    problems = {"4821+9305=": "14126", "77+18=": "95", "123+456=": "579", "5+9=": "14"}
    prompts = [tok(p).input_ids for p in problems]
    outs = engine.generate(prompts, 8, SamplingParams(1.0, 1.0, 8), seed=0)
    rewards = [float(c.text == answer) for answer, cs in zip(problems.values(), outs) for c in cs]
    flat_p = [p for p, cs in zip(prompts, outs) for _ in cs]
    flat_c = [list(c.token_ids) for cs in outs for c in cs]
    gidx = [i for i, cs in enumerate(outs) for _ in cs]
    adv, _ = group_advantages(torch.tensor(rewards), torch.tensor(gidx))
    if not adv.abs().sum():
        adv = torch.linspace(-1, 1, len(adv))  # guarantee a non-zero update
    batch = pack_rollouts(flat_p, flat_c, tok.pad_token_id, rewards, adv, gidx)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    policy.train()
    logp = token_logprobs(policy, batch.input_ids, batch.attention_mask)
    loss, _ = LOSSES.get("grpo")(logp, logp.detach(), batch.advantages, batch.loss_mask, eps=0.2, beta=0.0)
    loss.backward()
    opt.step()

    fixed = tok("4821+9305=14126").input_ids + [tok.eos_token_id]
    with torch.no_grad():
        ids = torch.tensor([fixed])
        trained = token_logprobs(policy.eval(), ids, torch.ones_like(ids))[0].tolist()
    before = engine.sequence_logprobs(fixed)
    engine.sync_weights(policy)
    after = engine.sequence_logprobs(fixed)
    print(json.dumps({
        "max_abs_diff_before_sync": max(abs(a - b) for a, b in zip(before, trained)),
        "max_abs_diff_after_sync": max(abs(a - b) for a, b in zip(after, trained)),
    }))
