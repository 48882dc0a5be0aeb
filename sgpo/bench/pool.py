"""The selection profile behind the easy and hard mixes, written as a small JSON file that
sgpo/tasks/difficulty_pool.py reads.

Two passes under the tiny policy (T = 1.0), with seeds no benchmark or tuning run uses: k samples
of every candidate train problem (profile.py), then ``confirm`` more samples of the candidates the
first pass found at an extreme (solved k of k, or 0 of k; or only one of them, ``confirm_classes``).
k = 8 alone is a weak screen: problems solved 8 of 8 once are solved 8 of 8 again only about half
the time (regression to the mean), so a mix built on them cannot make most GRPO groups
zero-advantage. A problem solved k + confirm of k + confirm times has a success rate near 1.

A name ending in ``.json.gz`` is written gzipped, for large candidate sets (196,608 candidates are
5.5 MB as text, 2 MB gzipped).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import sgpo
from sgpo.io import atomic_write, atomic_write_text
from sgpo.profiling.store import load_profile
from sgpo.tasks.difficulty_pool import CLASSES, class_of

DEFAULT_OUT = sgpo.ROOT_DIR / "benchmarks" / "pools" / "arithmetic_tiny_arith_k8_seed1000.json"


def first_pass(candidates: int, k: int, seed: int, output_dir: Path | None) -> tuple[dict[str, list[int]], str, dict]:
    """profile.py on the first ``candidates`` train problems: ({id: [successes, k]}, command, summary)."""
    overrides = ["task=arithmetic", "model=tiny_arith", f"task.num_train={candidates}", f"profile.num_samples={k}",
                 f"seed={seed}"] + ([] if output_dir is None else [f"paths.output_dir={output_dir}"])
    command = "python profile.py " + " ".join(overrides)
    print(f"selection profile, first pass: {command}", flush=True)
    proc = subprocess.run([sys.executable, str(sgpo.ROOT_DIR / "profile.py"), *overrides], cwd=sgpo.ROOT_DIR,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"profile.py exited with {proc.returncode}: {command}")
    profile = load_profile(Path(proc.stdout.strip().splitlines()[-1].removeprefix("profile: ")))
    counts = {q: [int(s), k] for q, s in zip(profile.query_ids, profile.outcomes.sum(axis=1))}
    return counts, command, profile.summary()


def confirm_extremes(counts: dict[str, list[int]], candidates: int, extra: int, seed: int,
                     classes: tuple[str, ...] = ("trivial", "unsolvable")) -> int:
    """Add ``extra`` samples (seed ``seed``) to every candidate of ``classes`` (trivial: all samples
    solved, unsolvable: none); returns how many."""
    from hydra import compose, initialize_config_dir
    from tqdm import tqdm

    from sgpo.engines.base import SamplingParams
    from sgpo.engines.hf import HFEngine
    from sgpo.models import load_policy
    from sgpo.prompts import encode_queries, prompt_encoder
    from sgpo.tasks import build_task

    with initialize_config_dir(config_dir=str(sgpo.ROOT_DIR / "conf"), version_base="1.3"):
        cfg = compose(config_name="profile", overrides=["task=arithmetic", f"task.num_train={candidates}"])
    task = build_task(cfg.task)
    extremes = [q for q in task.split("train") if class_of(*counts[q.id]) in classes]
    policy, tokenizer = load_policy(cfg.model.path, cfg.model.dtype)
    engine = HFEngine(policy, tokenizer)
    prompts = encode_queries(prompt_encoder(tokenizer, cfg.model), task, extremes)
    params = SamplingParams(float(cfg.profile.temperature), float(cfg.profile.top_p), int(cfg.profile.max_new_tokens))
    chunk = 256
    for start in tqdm(range(0, len(extremes), chunk), desc=f"confirming {len(extremes)} extremes x {extra}", unit="chunk"):
        queries = extremes[start:start + chunk]
        outs = engine.generate(prompts[start:start + chunk], extra, params, seed=seed + start)
        for q, rewards in zip(queries, task.score_batch(queries, [[c.text for c in cs] for cs in outs])):
            counts[q.id][0] += int(sum(r > 0.5 for r in rewards))
            counts[q.id][1] += extra
    return len(extremes)


def make_pool(candidates: int = 8192, k: int = 8, confirm: int = 24, seed: int = 1000, out: Path = DEFAULT_OUT,
              output_dir: Path | None = None, confirm_classes: tuple[str, ...] = ("trivial", "unsolvable")) -> dict:
    """Both passes, then the file: counts per candidate with the commands and class shares."""
    unknown = set(confirm_classes) - {"trivial", "unsolvable"}
    if unknown or not confirm_classes:
        raise ValueError(f"pool: confirm classes {list(confirm_classes)}: give trivial, unsolvable or both "
                         f"(the classes of {', '.join(CLASSES)} a first pass can put at an extreme)")
    counts, command, first = first_pass(candidates, k, seed, output_dir)
    confirmed = confirm_extremes(counts, candidates, confirm, seed + 1, confirm_classes) if confirm else 0
    classes = {c: sum(class_of(s, n) == c for s, n in counts.values()) for c in CLASSES}
    at = {"trivial": f"{k} of {k}", "unsolvable": f"0 of {k}"}
    data = {"what": "[successes, samples] per train problem of the default arithmetic task under tiny_arith "
                    "(T = 1.0): the selection profile of the benchmark's easy and hard mixes",
            "command": f"python -m sgpo.bench pool --candidates {candidates} --confirm-classes "
                       f"{' '.join(confirm_classes)} --pool-out {out.name}  (first pass: {command}; then {confirm} "
                       f"more samples, seed {seed + 1}, of the {confirmed} candidates at "
                       f"{' or '.join(at[c] for c in confirm_classes)})",
            "made": time.strftime("%Y-%m-%d %H:%M %Z"), "first_pass": first, "classes": classes,
            "counts": counts}
    text = json.dumps(data, sort_keys=True) + "\n"  # one line: 8192 counts stay small in git
    if out.name.endswith(".gz"):  # mtime=0: the same counts give the same bytes (the jobs key on its digest)
        atomic_write(out, lambda tmp: tmp.write_bytes(gzip.compress(text.encode(), mtime=0)))
    else:
        atomic_write_text(out, text)
    return data
