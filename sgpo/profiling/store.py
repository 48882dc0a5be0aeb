"""``DifficultyProfile``: the verified outcomes of k samples per query, and its on-disk cache.

Layout of one profile folder ``<profiles_dir>/<task>-<model>/<fingerprint16>-k<k>/``::

    plan.json          what is being profiled (fingerprint, k, query order, chunking): written first
    parts/part-NNNNN.parquet   one finished chunk each, written atomically (resume unit)
    profile.parquet    all rows once every chunk is done
    meta.json          fingerprint, counts, FLOPs, wall time, sha256 of profile.parquet: written
                       last, so its presence marks a complete profile
    summary.json, p_hat_hist.png   for people

A profile with k samples serves any request for k' <= k: ``prefix(k')`` keeps the first k'
outcomes of every query in sampling order, and its FLOPs are recomputed from the token counts
of exactly those samples.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sgpo.faults import crash_point
from sgpo.flops import ModelShape, sequence_forward_flops
from sgpo.io import atomic_write, atomic_write_json, file_sha256

PROFILE_FILE = "profile.parquet"
META_FILE = "meta.json"
PLAN_FILE = "plan.json"
SUMMARY_FILE = "summary.json"
HIST_FILE = "p_hat_hist.png"
PARTS_DIR = "parts"


class CacheError(RuntimeError):
    """A profile on disk that cannot be trusted (truncated, corrupted, or from another run)."""


@dataclass
class DifficultyProfile:
    """Outcomes of k samples for each of Q queries.

    query_ids: [Q] ids, in the task split's order.
    outcomes: [Q, k] int8, 1 where the sample was verified correct, in sampling order.
    prompt_tokens: [Q] int, prompt length in tokens.
    completion_tokens: [Q, k] int, completion length in tokens (EOS included).
    truncated: [Q, k] bool, the sample hit max_new_tokens without EOS.
    meta: the ``meta.json`` content (fingerprint, shape, sampling, FLOPs, wall time).
    """

    query_ids: list[str]
    outcomes: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    truncated: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    completions: list[list[str]] | None = None

    @classmethod
    def unprofiled(cls, query_ids: list[str]) -> DifficultyProfile:
        """A stand-in for runs without a profiling pass: no outcomes, zero FLOPs."""
        q = len(query_ids)
        return cls(list(query_ids), np.zeros((q, 0), np.int8), np.zeros(q, np.int64), np.zeros((q, 0), np.int64),
                   np.zeros((q, 0), bool), {"profile_flops": 0.0, "num_samples": 0})

    @property
    def num_queries(self) -> int:
        return len(self.query_ids)

    @property
    def num_samples(self) -> int:
        return int(self.outcomes.shape[1])

    def success_rates(self) -> np.ndarray:
        """p-hat per query: [Q] float in [0, 1]."""
        if self.outcomes.size == 0:
            return np.zeros(self.num_queries)
        return self.outcomes.mean(axis=1)

    def p_hat(self) -> dict[str, float]:
        return dict(zip(self.query_ids, self.success_rates().tolist()))

    def prefix(self, k: int) -> DifficultyProfile:
        """The same profile restricted to the first ``k`` samples of every query."""
        if not 1 <= k <= self.num_samples:
            raise ValueError(f"profile.num_samples={k}: this profile holds 1..{self.num_samples} samples per query")
        if k == self.num_samples:
            return self
        meta = dict(self.meta, num_samples=k, reused_from_num_samples=self.num_samples)
        view = DifficultyProfile(
            self.query_ids, self.outcomes[:, :k], self.prompt_tokens, self.completion_tokens[:, :k],
            self.truncated[:, :k], meta,
            None if self.completions is None else [c[:k] for c in self.completions],
        )
        if "model_shape" in meta:
            view.meta["profile_flops"] = view.flops(ModelShape(**meta["model_shape"]))
        return view

    def flops(self, shape: ModelShape) -> float:
        """Forward FLOPs of every sample held, as the engine that made the profile computed them:
        the prompt once per query (``meta.prompt_prefill == "shared"``) or once per sample (profiles
        made before prefix sharing have no such key: that is what they spent)."""
        lengths = self.prompt_tokens[:, None] + self.completion_tokens
        full = float(np.sum(sequence_forward_flops(shape, lengths)))
        if self.meta.get("prompt_prefill") != "shared" or self.num_samples == 0:
            return full
        return full - (self.num_samples - 1) * float(np.sum(sequence_forward_flops(shape, self.prompt_tokens)))

    def summary(self) -> dict[str, Any]:
        rates = self.success_rates()
        n = max(1, len(rates))
        return {
            "num_queries": self.num_queries,
            "num_samples": self.num_samples,
            "frac_trivial": float(np.sum(rates == 1.0) / n),
            "frac_unsolvable": float(np.sum(rates == 0.0) / n),
            "frac_mixed": float(np.sum((rates > 0) & (rates < 1)) / n),
            "mean_success": float(rates.mean()) if len(rates) else 0.0,
            "frac_truncated": float(self.truncated.mean()) if self.truncated.size else 0.0,
            "mean_completion_tokens": float(self.completion_tokens.mean()) if self.completion_tokens.size else 0.0,
            "profile_flops": float(self.meta.get("profile_flops", 0.0)),
            "wall_s": float(self.meta.get("wall_s", 0.0)),
        }


# ---- rows <-> arrow ---------------------------------------------------------------------------

def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of {query_id, prompt_tokens, outcomes[k], completion_tokens[k], truncated[k], (completions[k])}."""
    columns: dict[str, Any] = {
        "query_id": pa.array([r["query_id"] for r in rows], pa.string()),
        "prompt_tokens": pa.array([r["prompt_tokens"] for r in rows], pa.int32()),
        "outcomes": pa.array([r["outcomes"] for r in rows], pa.list_(pa.int8())),
        "completion_tokens": pa.array([r["completion_tokens"] for r in rows], pa.list_(pa.int32())),
        "truncated": pa.array([r["truncated"] for r in rows], pa.list_(pa.bool_())),
    }
    if rows and "completions" in rows[0]:
        columns["completions"] = pa.array([r["completions"] for r in rows], pa.list_(pa.string()))
    return pa.table(columns)


def _matrix(column: pa.ChunkedArray, dtype) -> np.ndarray:
    values = column.to_pylist()
    return np.asarray(values, dtype=dtype) if values else np.zeros((0, 0), dtype=dtype)


def table_to_profile(table: pa.Table, meta: dict[str, Any]) -> DifficultyProfile:
    completions = table.column("completions").to_pylist() if "completions" in table.column_names else None
    return DifficultyProfile(
        query_ids=table.column("query_id").to_pylist(),
        outcomes=_matrix(table.column("outcomes"), np.int8),
        prompt_tokens=np.asarray(table.column("prompt_tokens").to_pylist(), dtype=np.int64),
        completion_tokens=_matrix(table.column("completion_tokens"), np.int64),
        truncated=_matrix(table.column("truncated"), bool),
        meta=meta,
        completions=completions,
    )


def write_parquet(path: Path, table: pa.Table) -> None:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


# ---- folders ----------------------------------------------------------------------------------

def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CacheError(f"{path}: unreadable ({err}); delete the folder {path.parent} to profile again") from err


def is_complete(folder: Path) -> bool:
    return (folder / META_FILE).is_file() and (folder / PROFILE_FILE).is_file()


def load_profile(folder: str | Path, verify: bool = True) -> DifficultyProfile:
    """Read a complete profile folder; with ``verify`` the Parquet file's sha256 must match meta."""
    folder = Path(folder)
    if not is_complete(folder):
        raise CacheError(f"{folder}: not a complete profile (no {META_FILE} or {PROFILE_FILE})")
    meta = read_json(folder / META_FILE)
    if verify and file_sha256(folder / PROFILE_FILE) != meta.get("sha256"):
        raise CacheError(
            f"{folder / PROFILE_FILE}: checksum does not match {META_FILE} (truncated or modified); "
            f"delete {folder} to profile again"
        )
    try:
        table = pq.read_table(folder / PROFILE_FILE)
    except (OSError, pa.ArrowException) as err:
        raise CacheError(f"{folder / PROFILE_FILE}: unreadable Parquet ({err}); delete {folder} to profile again") from err
    return table_to_profile(table, meta)


def save_profile(folder: Path, profile_table: pa.Table, meta: dict[str, Any]) -> None:
    """Write profile.parquet, then meta.json (with its checksum) last: the completion marker."""
    write_parquet(folder / PROFILE_FILE, profile_table)
    crash_point("profile:before_meta")
    atomic_write_json(folder / META_FILE, dict(meta, sha256=file_sha256(folder / PROFILE_FILE)))


def finished_folders(group_dir: Path, fingerprint: str) -> list[Path]:
    """Folders named ``<fingerprint[:16]>-k<k>`` holding a meta.json (set-aside copies excluded)."""
    pattern = re.compile(rf"{re.escape(fingerprint[:16])}-k[0-9]+")
    return sorted(f for f in group_dir.glob(f"{fingerprint[:16]}-k*") if pattern.fullmatch(f.name) and is_complete(f))


def find_complete(group_dir: Path, fingerprint: str, min_samples: int) -> Path | None:
    """The complete profile of this fingerprint with the fewest samples >= ``min_samples``."""
    best: tuple[int, Path] | None = None
    for folder in finished_folders(group_dir, fingerprint):
        meta = read_json(folder / META_FILE)
        if meta.get("fingerprint") != fingerprint:
            continue
        k = int(meta["num_samples"])
        if k >= min_samples and (best is None or k < best[0]):
            best = (k, folder)
    return None if best is None else best[1]
