"""Read a wandb run file (``run-<id>.wandb``) back without a server, e.g. an offline run.

The file is wandb's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0)
followed by LevelDB-style log blocks of 32 KiB; each record chunk has a 7-byte header (crc32,
little-endian length, type FULL/FIRST/MIDDLE/LAST) and carries a serialised
``wandb_internal_pb2.Record``. Records are decoded with wandb's own protobuf classes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _chunks(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a wandb run file (missing :W&B header)")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # block trailer padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        payload = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            yield pending + payload
            pending = b""


def read_records(path: str | Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2

    for raw in _chunks(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        yield record


def _put(row: dict[str, Any], item) -> None:
    """Store one item; media (histograms, tables) arrive as nested keys ["data/p_hat", "_type"]."""
    value = json.loads(item.value_json)
    if item.key:
        row[item.key] = value
        return
    *parents, leaf = list(item.nested_key)
    node = row
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Every logged history row of a run file, values JSON-decoded (media as nested dicts)."""
    rows = []
    for record in read_records(path):
        if record.WhichOneof("record_type") == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _put(row, item)
            rows.append(row)
    return rows


def read_summary(path: str | Path) -> dict[str, Any]:
    """The run summary: summary records in order, later values winning."""
    summary: dict[str, Any] = {}
    for record in read_records(path):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                _put(summary, item)
    return summary


def read_run_info(path: str | Path) -> dict[str, Any]:
    """The run record: id, project, group, tags (the last run record wins)."""
    info: dict[str, Any] = {}
    for record in read_records(path):
        if record.WhichOneof("record_type") == "run":
            run = record.run
            info = {"run_id": run.run_id, "project": run.project, "group": run.run_group, "tags": list(run.tags)}
    return info
