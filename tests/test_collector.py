"""RolloutCollector and FlopsLedger on fixed, scripted rollouts: every FLOP generated is charged,
zero-variance groups and DAPO refills that overshoot are wasted, DAPO drops, refills, truncates
and gives up with a clear error; the ledger sums sharded work over ranks once."""

from __future__ import annotations

import pytest

from sgpo.engines.base import Completion
from sgpo.flops import FlopsLedger, ModelShape, rollouts_forward_flops
from sgpo.rollouts import RolloutCollector
from sgpo.tasks.base import Query, Task

SHAPE = ModelShape(n_layer=2, d_model=16, n_heads=2, n_kv_heads=2, head_dim=8, d_ff=32, vocab_size=20)


class ScriptedTask(Task):
    """Reward 1 for the completion text "ok", else 0."""

    def score(self, query: Query, completion: str) -> float:
        return float(completion == "ok")


class ScriptedEngine:
    """Returns, for query q's prompt, the texts script[q] (one token per character), in order."""

    name = "scripted"
    shares_prompt = True  # the prompt's forward is charged once per group

    def __init__(self, script: dict[int, list[str]]) -> None:
        self.script, self.calls = script, []

    def generate(self, prompt_ids, n, sampling, seed):
        self.calls.append((len(prompt_ids), n))
        return [[Completion(tuple(range(len(t))), t, "stop") for t in self.script[p[0]][:n]] for p in prompt_ids]


# query q: prompt of q + 1 tokens whose first token is q; "ok" is right
SCRIPT = {0: ["ok", "no", "ok", "no"], 1: ["no", "no"], 2: ["ok", "ok"], 3: ["ok", "nope"], 4: ["no", "ok"],
          5: ["yes!", "ok"]}
PROMPTS = [[q] * (q + 1) for q in range(6)]


def collector(dynamic: bool, refill=None, cap: int = 4) -> tuple[RolloutCollector, FlopsLedger, ScriptedEngine]:
    ledger, engine = FlopsLedger(0.0), ScriptedEngine(SCRIPT)
    queries = [Query(f"q{i}", "p", "ok") for i in range(6)]
    c = RolloutCollector(lambda: engine, ScriptedTask(), queries, PROMPTS, None, SHAPE, ledger,
                         dynamic_sampling=dynamic, max_generation_batches=cap, refill=refill)
    return c, ledger, engine


def flops(q: int, g: int) -> float:
    return rollouts_forward_flops(SHAPE, len(PROMPTS[q]), [len(t) for t in SCRIPT[q][:g]], shared_prompt=True)


def test_every_group_is_charged_and_zero_variance_groups_are_wasted():
    c, ledger, engine = collector(dynamic=False)
    out = c.collect([(0, 4), (1, 2), (2, 2), (3, 2)], seed=0, step=0)
    ledger.settle()
    assert out.specs == [(0, 4), (1, 2), (2, 2), (3, 2)] and out.rollouts == 10 and out.generation_batches == 1
    assert out.rewards == [[1, 0, 1, 0], [0, 0], [1, 1], [1, 0]]
    assert engine.calls == [(3, 2), (1, 4)], "one generate call per group size"
    assert ledger.rollout == pytest.approx(flops(0, 4) + flops(1, 2) + flops(2, 2) + flops(3, 2))
    assert ledger.wasted == pytest.approx(flops(1, 2) + flops(2, 2))
    assert ledger.train == 0 and ledger.total == pytest.approx(ledger.rollout)


def test_dapo_drops_refills_and_charges_the_overshoot_as_wasted():
    asked = []

    def refill(groups):
        asked.append(groups)
        return [(3, 2), (4, 2), (5, 2)]  # a whole sampler step: one more group than needed

    c, ledger, _ = collector(dynamic=True, refill=refill)
    out = c.collect([(0, 4), (1, 2), (2, 2)], seed=0, step=0)
    ledger.settle()
    assert asked == [2] and out.generation_batches == 2 and out.rollouts == 14
    assert out.specs == [(0, 4), (3, 2), (4, 2)], "zero-variance groups dropped, the step truncated to 3 groups"
    every = flops(0, 4) + flops(1, 2) + flops(2, 2) + flops(3, 2) + flops(4, 2) + flops(5, 2)
    assert ledger.rollout == pytest.approx(every)
    # dropped (1, 2 never vary) and cut (5 is mixed but has no room): generated, paid, never trained
    assert ledger.wasted == pytest.approx(flops(1, 2) + flops(2, 2) + flops(5, 2))


def test_dapo_gives_up_after_the_cap_with_a_clear_error():
    c, _, _ = collector(dynamic=True, refill=lambda groups: [(1, 2), (2, 2)], cap=3)
    with pytest.raises(RuntimeError, match=r"only 0 of 2 groups had mixed rewards after 3 generation batches "
                                           r"\(algo.max_generation_batches\)"):
        c.collect([(1, 2), (2, 2)], seed=0, step=0)


def test_dapo_at_the_cap_trains_on_the_mixed_groups_it_found_and_counts_the_step(caplog):
    c, ledger, _ = collector(dynamic=True, refill=lambda groups: [(1, 2), (2, 2)], cap=3)
    with caplog.at_level("WARNING"):
        out = c.collect([(0, 4), (1, 2)], seed=0, step=0)  # 0 is mixed; the refills never are
    assert [q for q, _ in out.specs] == [0] and out.generation_batches == 3 and c.short_steps == 1
    assert "1 of 2 groups had mixed rewards after 3 generation batches" in caplog.text
    ledger.settle()
    assert ledger.wasted == pytest.approx(flops(1, 2) + 2 * (flops(1, 2) + flops(2, 2)))
    c.collect([(0, 4), (1, 2)], seed=0, step=1)
    assert c.short_steps == 2 and caplog.text.count("generation batches") == 1  # said once, counted always


def test_ledger_charges_settle_over_ranks_once():
    two_ranks = FlopsLedger(5.0, reduce=lambda values: [2 * v for v in values])  # both ranks charged the same
    two_ranks.charge("rollout", 10.0)
    two_ranks.charge("train", 3.0)
    two_ranks.charge("wasted", 1.0)
    two_ranks.charge("eval", 7.0)
    assert two_ranks.rollout == 0 and two_ranks.eval == 7.0, "sharded work waits for settle; eval is per rank"
    with pytest.raises(RuntimeError, match="settle"):
        two_ranks.state_dict()
    two_ranks.settle()
    two_ranks.settle()  # nothing pending: adds nothing
    assert (two_ranks.profile, two_ranks.rollout, two_ranks.train, two_ranks.wasted) == (5.0, 20.0, 6.0, 2.0)
    assert two_ranks.total == 31.0, "profile + rollout + train; wasted is a part of them, eval is not counted"
    restored = FlopsLedger(0.0)
    restored.load_state_dict(two_ranks.state_dict())
    assert restored.metrics() == two_ranks.metrics() and restored.metrics()["compute/total_flops"] == 31.0
    with pytest.raises(KeyError, match="valid: profile, rollout"):
        two_ranks.charge("rollouts", 1.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        two_ranks.charge("train", float("nan"))


class StreamEngine:
    """Hands out query q's texts stream[q] in order across calls (a screen, then its commit)."""

    name = "stream"
    shares_prompt = True

    def __init__(self, stream: dict[int, list[str]]) -> None:
        self.stream, self.calls = {q: list(t) for q, t in stream.items()}, []

    def generate(self, prompt_ids, n, sampling, seed):
        self.calls.append((len(prompt_ids), n))
        out = []
        for p in prompt_ids:
            texts, self.stream[p[0]] = self.stream[p[0]][:n], self.stream[p[0]][n:]
            out.append([Completion(tuple(range(len(t))), t, "stop") for t in texts])
        return out


def test_screen_then_commit_finishes_mixed_and_approved_groups_only():
    stream = {0: ["ok", "no", "ok", "ok"], 1: ["no", "no", "ok", "no"], 2: ["ok", "ok", "ok", "ok"],
              3: ["no", "no"]}
    engine, ledger = StreamEngine(stream), FlopsLedger(0.0)
    asked = []

    def commit(q, successes, screen, group):  # approve query 1 only
        asked.append((q, successes, screen, group))
        return q == 1

    queries = [Query(f"q{i}", "p", "ok") for i in range(4)]
    c = RolloutCollector(lambda: engine, ScriptedTask(), queries, PROMPTS, None, SHAPE, ledger,
                         dynamic_sampling=False, max_generation_batches=1, screen=2, commit=commit)
    out = c.collect([(0, 4), (1, 4), (2, 4), (3, 2)], seed=0, step=0)
    ledger.settle()
    # 0: mixed screen -> committed; 1: degenerate screen, approved -> committed; 2: refused -> 2 rollouts;
    # 3: a group no larger than the screen is sampled whole and never asked about
    assert out.specs == [(0, 4), (1, 4), (2, 2), (3, 2)]
    assert out.rewards == [[1, 0, 1, 1], [0, 0, 1, 0], [1, 1], [0, 0]]
    assert asked == [(1, 0.0, 2, 4), (2, 2.0, 2, 4)]
    assert engine.calls == [(4, 2), (2, 2)] and out.generation_batches == 2 and out.rollouts == 12
    assert (c.screened, c.committed) == (3, 2)

    def part(q, texts):
        return rollouts_forward_flops(SHAPE, len(PROMPTS[q]), [len(t) for t in texts], shared_prompt=True)

    charged = {0: part(0, ["ok", "no"]) + part(0, ["ok", "ok"]), 1: part(1, ["no", "no"]) + part(1, ["ok", "no"]),
               2: part(2, ["ok", "ok"]), 3: part(3, ["no", "no"])}
    assert ledger.rollout == pytest.approx(sum(charged.values())), "a commit pays its own prefill"
    assert ledger.wasted == pytest.approx(charged[2] + charged[3]), "a degenerate screen costs only itself"


def test_screening_refuses_dapo_and_a_one_rollout_screen():
    ledger = FlopsLedger(0.0)
    queries = [Query("q0", "p", "ok")]
    with pytest.raises(ValueError, match="use one of them"):
        RolloutCollector(lambda: None, ScriptedTask(), queries, PROMPTS, None, SHAPE, ledger, dynamic_sampling=True,
                         max_generation_batches=2, screen=2)
    with pytest.raises(ValueError, match="selection.screen=1"):
        RolloutCollector(lambda: None, ScriptedTask(), queries, PROMPTS, None, SHAPE, ledger, dynamic_sampling=False,
                         max_generation_batches=2, screen=1)
