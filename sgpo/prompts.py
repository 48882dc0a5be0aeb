"""From a task's prompt text to the token ids the policy sees, per model family.

Base models (and the shipped tiny policy) read the text as is. Chat models get their own chat
template (``model.chat_template: true``), with an optional system message
(``model.system_prompt``, e.g. Qwen2.5-Math's "reason step by step ... \\boxed{}"); the task
adds its instruction on the answer format to the user message. Prompts longer than
``model.max_prompt_tokens`` are refused, naming the query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def prompt_encoder(tokenizer, model_cfg: Mapping[str, Any]) -> Callable[[str], list[int]]:
    """``encode(text) -> token ids`` for the model described by ``model_cfg`` (a conf/model node)."""
    use_chat = bool(model_cfg.get("chat_template", False))
    system = model_cfg.get("system_prompt")
    limit = model_cfg.get("max_prompt_tokens")
    if use_chat and not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"model.chat_template=true, but the tokenizer of model.path={model_cfg.get('path')} has no "
                         "chat template; set model.chat_template=false for a base model")

    def encode(text: str) -> list[int]:
        if use_chat:
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
            rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tokenizer(rendered, add_special_tokens=False).input_ids
        else:
            ids = tokenizer(text).input_ids
        if limit and len(ids) > int(limit):
            raise ValueError(f"a prompt of {len(ids)} tokens is longer than model.max_prompt_tokens={limit}: "
                             f"{text[:80]!r}...")
        return list(ids)

    return encode


def encode_queries(encode: Callable[[str], list[int]], task, queries) -> list[list[int]]:
    """Token ids of every query's prompt: [Q] lists of ints."""
    return [encode(task.prompt_text(q)) for q in queries]
