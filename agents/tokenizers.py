"""Tokenizers built in code, so tests and smoke runs need no download.

- `byte_tokenizer()`: 256 byte tokens + ChatML specials; any text round-trips exactly.
- `word_tokenizer(words)`: one token per word of a small environment's vocabulary, with a plain
  chat template. Tiny models learn one-word actions from scratch with it; with bytes they never
  see a reward.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

IM_START, IM_END, EOT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
UNK = "<unk>"

# ChatML, as Qwen and SmolLM2 use it.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Words only (the word tokenizer splits on whitespace, so newlines would be lost anyway).
WORD_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what the ByteLevel decoder inverts)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def _wrap(tok: Tokenizer, template: str) -> PreTrainedTokenizerFast:
    out = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=IM_START,
        eos_token=IM_END,
        pad_token=EOT,
        unk_token=UNK if tok.token_to_id(UNK) is not None else None,
    )
    out.chat_template = template
    return out


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer: token id b is byte b; specials <|im_start|>=256, <|im_end|>=257, <|endoftext|>=258."""
    vocab = {ch: b for b, ch in _bytes_to_unicode().items()}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    # no regex split, no prefix space: the text maps to its bytes one to one
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([IM_START, IM_END, EOT])
    return _wrap(tok, CHATML_TEMPLATE)


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over `words` (plus chat roles); unknown words map to <unk>."""
    vocab: dict[str, int] = {}
    for w in [IM_START, IM_END, EOT, UNK, "system", "user", "assistant", *words]:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([IM_START, IM_END, EOT])  # already in vocab: marks them special
    return _wrap(tok, WORD_TEMPLATE)
