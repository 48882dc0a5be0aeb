"""Policy loading: a folder (or hub name) -> (model, tokenizer), with clear errors offline."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"model.dtype={name!r}; valid: {', '.join(DTYPES)}") from None


def load_policy(path: str, dtype: str = "float32", device: str = "cpu") -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer (left padding, a pad token) from a folder or hub name."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype))
    except OSError as err:
        raise OSError(
            f"could not load model.path={path!r}: {err}\nOffline? Point model.path at a local folder "
            "holding config.json, the weights and the tokenizer files."
        ) from err
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer


def prepare_model(model_cfg) -> str:
    """Make ``model.path`` loadable: for a GGUF-shipped model (``model.gguf``), dequantise it there once."""
    gguf = model_cfg.get("gguf")
    if gguf:
        from pathlib import Path

        from sgpo.models.gguf import gguf_file, materialize

        materialize(gguf_file(gguf["package"], gguf["file"]), Path(model_cfg["path"]))
    return str(model_cfg["path"])


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def model_summary(model: PreTrainedModel) -> dict[str, Any]:
    return {"parameters": sum(p.numel() for p in model.parameters()), "architecture": type(model).__name__}


__all__ = ["load_policy", "weights_fingerprint", "model_summary", "prepare_model", "resolve_dtype"]
