"""A character-level transformers tokenizer: one token per printable ASCII character.

It is a real ``tokenizers`` BPE model with no merges (so every character is its own token),
wrapped as a fast tokenizer and saved with ``save_pretrained``; ``AutoTokenizer`` and vLLM load
the folder like any hub tokenizer. Encoding prepends ``<s>``; characters outside printable
ASCII map to ``<unk>``.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, processors
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
CHARACTERS = tuple(chr(code) for code in range(32, 127))


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """The tokenizer of the shipped tiny policy (vocabulary of 4 specials + 95 characters)."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", BOS_ID)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
    )
