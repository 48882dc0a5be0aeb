"""The profiling pass: k samples per query under the initial policy, verified, cached on disk.

``run(cfg)`` is what ``python profile.py`` calls. It

1. builds the task and loads the policy, and fingerprints (weights, task data as token ids,
   sampling parameters, engine, seed);
2. reuses a complete cached profile of that fingerprint with k >= the requested k (taking the
   first k outcomes), unless ``profile.force``;
3. otherwise samples chunk by chunk, writing each finished chunk atomically, so a run killed at
   any point resumes at the first missing chunk. Each chunk has its own seed, so a resumed
   profile is identical to an uninterrupted one;
4. merges the chunks, writes ``profile.parquet`` then ``meta.json`` (the completion marker),
   ``summary.json`` and the p-hat histogram, and prints ``profile: <folder>`` last.

A file lock per profile folder makes concurrent runs of the same profile wait for one another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

import sgpo
from sgpo.config import ProfileSection, typed
from sgpo.engines import SamplingParams, build_engine, prefill_shared, stream_of
from sgpo.engines.base import derive_seed
from sgpo.faults import crash_point
from sgpo.flops import ModelShape, rollouts_forward_flops
from sgpo.io import atomic_write_json
from sgpo.models import load_policy, model_summary, prepare_model, weights_fingerprint
from sgpo.profiling import store
from sgpo.profiling.report import save_histogram, summary_table
from sgpo.profiling.sweep import sweep_max_num_samples
from sgpo.prompts import encode_queries, prompt_encoder
from sgpo.tasks import Query, build_task

log = logging.getLogger(__name__)


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def validate_profile_cfg(cfg: DictConfig) -> None:
    """Refuse a bad ``profile`` section (types and ranges: sgpo.config.ProfileSection) with a ConfigError."""
    typed(cfg, "profile", ProfileSection)


class ProfileJob:
    """Everything one profiling request needs, with its fingerprint computed."""

    def __init__(self, cfg: DictConfig) -> None:
        validate_profile_cfg(cfg)
        self.cfg = cfg
        p = cfg.profile
        self.k = int(p.num_samples)
        self.task = build_task(cfg.task)
        queries = self.task.split(p.split)
        self.queries: list[Query] = queries[: p.max_queries] if p.max_queries else queries
        prepare_model(cfg.model)
        device = p.device
        device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.model, self.tokenizer = load_policy(cfg.model.path, cfg.model.dtype, device=device)
        self.shape = ModelShape.from_config(self.model.config)
        self.prompt_ids = encode_queries(prompt_encoder(self.tokenizer, cfg.model), self.task, self.queries)
        self.sampling = SamplingParams(float(p.temperature), float(p.top_p), int(p.max_new_tokens))
        self.components = {
            "weights": weights_fingerprint(self.model),
            "data": _sha([[q.id, ids, q.answer] for q, ids in zip(self.queries, self.prompt_ids)]),
            "sampling": asdict(self.sampling),
            # Engines draw different random streams, so a profile is only reproducible with its own.
            "engine": stream_of(cfg.engine),
            "seed": int(cfg.seed),
        }
        self.fingerprint = _sha(self.components)
        self.group_dir = Path(cfg.paths.profiles_dir) / f"{cfg.task.name}-{cfg.model.name}"

    def folder_for(self, k: int) -> Path:
        return self.group_dir / f"{self.fingerprint[:16]}-k{k}"


def get_profile(cfg: DictConfig) -> tuple[store.DifficultyProfile, Path]:
    """The profile ``cfg`` asks for (k = profile.num_samples), from cache or freshly sampled.

    Inside a multirun that sweeps ``profile.num_samples`` (and with ``profile.share_across_sweep``),
    the largest k of the sweep is drawn once and every job keeps its first k outcomes.
    """
    job = ProfileJob(cfg)
    want = job.k
    draw = max(want, sweep_max_num_samples() or 0) if cfg.profile.share_across_sweep else want
    job.group_dir.mkdir(parents=True, exist_ok=True)
    # One lock per fingerprint (k is not in it): parallel jobs of a sweep wait for the one profiling.
    with FileLock(str(job.group_dir / f".{job.fingerprint[:16]}.lock")):
        if not cfg.profile.force:
            _set_aside_damaged(job)
        hit = None if cfg.profile.force else store.find_complete(job.group_dir, job.fingerprint, want)
        if hit is not None:
            profile = store.load_profile(hit)
            note = "" if profile.num_samples == want else f" (first {want} of its {profile.num_samples} samples)"
            log.info("reusing cached profile %s%s", hit, note)
            return profile.prefix(want), hit
        if draw > want:
            log.info("profiling k=%d, the largest profile.num_samples of this sweep, once for every job; "
                     "this job uses the first %d", draw, want)
            job.k = draw
        folder = job.folder_for(job.k)
        if cfg.profile.force and folder.exists():
            shutil.rmtree(folder)
        return sample_profile(job, folder).prefix(want), folder


def _set_aside_damaged(job: ProfileJob) -> None:
    """Move finished profiles of this fingerprint that fail their checksum out of the way.

    A truncated or modified profile.parquet, or an unreadable meta.json, is renamed to
    ``<folder>.corrupt-<time>`` (kept for inspection: nothing is deleted) and profiled again.
    """
    for folder in store.finished_folders(job.group_dir, job.fingerprint):
        try:
            store.load_profile(folder, verify=True)
        except store.CacheError as err:
            aside = folder.with_name(f"{folder.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            folder.rename(aside)
            log.warning("cached profile failed its check (%s); moved it to %s and profiling again", err, aside)


def _plan(job: ProfileJob, folder: Path) -> dict[str, Any]:
    """Write plan.json, or read the one a killed run left (its chunking must be kept)."""
    path = folder / store.PLAN_FILE
    plan = {
        "fingerprint": job.fingerprint,
        "num_samples": job.k,
        "chunk_queries": int(job.cfg.profile.chunk_queries),
        "query_ids_sha256": _sha([q.id for q in job.queries]),
        "num_queries": len(job.queries),
    }
    if path.is_file():
        old = store.read_json(path)
        if any(old.get(key) != plan[key] for key in ("fingerprint", "num_samples", "query_ids_sha256")):
            raise store.CacheError(f"{path}: belongs to a different profile; delete {folder} to profile again")
        return old  # resume with the chunking the interrupted run used, so results are identical
    atomic_write_json(path, plan)
    return plan


def _sample_chunk(job: ProfileJob, engine, index: int, start: int, stop: int) -> tuple[list[dict[str, Any]], float]:
    queries, prompts = job.queries[start:stop], job.prompt_ids[start:stop]
    outs = engine.generate(prompts, job.k, job.sampling, seed=derive_seed(int(job.cfg.seed), index))
    rewards = job.task.score_batch(queries, [[c.text for c in cs] for cs in outs])
    rows, flops = [], 0.0
    for q, ids, cs, rs in zip(queries, prompts, outs, rewards):
        row = {
            "query_id": q.id,
            "prompt_tokens": len(ids),
            "outcomes": [int(r > 0.5) for r in rs],
            "completion_tokens": [c.num_tokens for c in cs],
            "truncated": [c.finish_reason == "length" for c in cs],
        }
        if job.cfg.profile.save_completions:
            row["completions"] = [c.text for c in cs]
        flops += rollouts_forward_flops(job.shape, len(ids), [c.num_tokens for c in cs],
                                        shared_prompt=engine.shares_prompt)
        rows.append(row)
    return rows, flops


def _part_ok(path: Path) -> bool:
    """A finished chunk file that still reads; a damaged one is set aside (and its chunk redone)."""
    if not path.is_file():
        return False
    try:
        pq.read_metadata(path)
        return True
    except Exception as err:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(aside)
        log.warning("chunk file %s is unreadable (%s); moved to %s, sampling that chunk again", path, err, aside)
        return False


def sample_profile(job: ProfileJob, folder: Path) -> store.DifficultyProfile:
    parts_dir = folder / store.PARTS_DIR
    parts_dir.mkdir(parents=True, exist_ok=True)
    plan = _plan(job, folder)
    size = int(plan["chunk_queries"])
    chunks = [(i, s, min(s + size, len(job.queries))) for i, s in enumerate(range(0, len(job.queries), size))]
    done = {i for i, _, _ in chunks if _part_ok(parts_dir / f"part-{i:05d}.parquet")}
    if done:
        print(f"resuming {folder}: {len(done)} of {len(chunks)} chunks already done", flush=True)
    engine = build_engine(job.cfg.engine, job.model, job.tokenizer, job.cfg.model.path, seed=int(job.cfg.seed))
    bar = tqdm(total=len(job.queries), unit="query", desc=f"profiling k={job.k}", dynamic_ncols=True)
    bar.update(sum(stop - start for i, start, stop in chunks if i in done))
    rollouts, started = 0, time.time()
    for index, start, stop in chunks:
        if index in done:
            continue
        t0 = time.time()
        rows, flops = _sample_chunk(job, engine, index, start, stop)
        table = store.rows_to_table(rows).replace_schema_metadata(
            {"wall_s": str(time.time() - t0), "flops": repr(flops)})
        store.write_parquet(parts_dir / f"part-{index:05d}.parquet", table)
        crash_point(f"profile:chunk:{index}")
        rollouts += (stop - start) * job.k
        bar.update(stop - start)
        bar.set_postfix(rollouts_per_s=f"{rollouts / max(time.time() - started, 1e-9):.0f}")
    bar.close()
    return finalize(job, folder, [parts_dir / f"part-{i:05d}.parquet" for i, _, _ in chunks])


def finalize(job: ProfileJob, folder: Path, part_paths: list[Path]) -> store.DifficultyProfile:
    import pyarrow as pa

    tables = [pq.read_table(p) for p in part_paths]
    table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables])
    if table.column("query_id").to_pylist() != [q.id for q in job.queries]:
        raise store.CacheError(f"{folder}: chunk files do not cover the queries in order; delete it to profile again")
    wall = sum(float(t.schema.metadata[b"wall_s"]) for t in tables)
    meta = {
        "fingerprint": job.fingerprint,
        "components": job.components,
        "num_queries": len(job.queries),
        "num_samples": job.k,
        "task": OmegaConf.to_container(job.cfg.task, resolve=True),
        "model": {"name": job.cfg.model.name, "path": str(job.cfg.model.path), **model_summary(job.model)},
        "model_shape": asdict(job.shape),
        "engine": job.cfg.engine.name,
        # what the engine computed per group: the prompt once ("shared") or once per sample
        "prompt_prefill": "shared" if prefill_shared(job.cfg.engine) else "per_sample",
        "split": job.cfg.profile.split,
        "wall_s": wall,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sgpo_version": sgpo.__version__,
    }
    profile = store.table_to_profile(table, meta)
    meta["profile_flops"] = profile.flops(job.shape)
    store.save_profile(folder, table, meta)
    summary = profile.summary()
    atomic_write_json(folder / store.SUMMARY_FILE, summary)
    save_histogram(profile.outcomes, folder / store.HIST_FILE,
                   f"{job.cfg.task.name} / {job.cfg.model.name}: p-hat over {profile.num_queries} queries, k={job.k}")
    crash_point("profile:before_cleanup")
    shutil.rmtree(folder / store.PARTS_DIR, ignore_errors=True)
    return profile


def run(cfg: DictConfig) -> Path:
    """Entry point of ``profile.py``: returns (and prints last) the profile folder."""
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    profile, folder = get_profile(cfg)
    print(summary_table(profile.summary(), f"difficulty profile ({cfg.task.name}, {cfg.model.name})"), flush=True)
    print(f"profile: {folder}", flush=True)
    return folder
