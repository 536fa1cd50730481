"""Small Qwen3-architecture language models with the genuine (trimmed) Qwen tokenizer.

The demo and the tests cannot download Qwen3-8B, so they build a Qwen3 of the same architecture
(RMSNorm, rotary positions, grouped-query attention with per-head q/k norms, SwiGLU MLP) at a size
that trains on a CPU, and save it as an ordinary Hugging Face directory: ``config.json``,
``model.safetensors``, the tokenizer with Qwen3's special tokens and chat template, and
``vocab_map.json`` (the Qwen3 id of each trimmed id). Every consumer reads it through
``AutoModelForCausalLM`` / ``AutoTokenizer`` exactly as it reads a real Qwen3 checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from wenet_llm.config.demo_llm import TinyLLMSize
from wenet_llm.models.llm.qwen_tokenizer import save_vocab_map, trim_tokenizer


def qwen3_config(vocab_size: int, tokenizer, size: TinyLLMSize):
    """A ``Qwen3Config`` of the given size for a tokenizer (eos <|im_end|>, pad <|endoftext|>)."""
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size, hidden_size=size.hidden_size, num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads, num_key_value_heads=size.num_key_value_heads,
        head_dim=size.head_dim, intermediate_size=size.intermediate_size,
        max_position_embeddings=size.max_position_embeddings, rope_theta=size.rope_theta,
        tie_word_embeddings=size.tie_word_embeddings, rms_norm_eps=1e-6, hidden_act="silu",
        attention_bias=False, attention_dropout=0.0, use_cache=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )


def build_tiny_qwen(texts: Iterable[str], out_dir: str | Path, size: TinyLLMSize | None = None, seed: int = 0):
    """Trim the Qwen tokenizer to ``texts``, initialise a Qwen3 of ``size`` at random, save both to ``out_dir``.

    Returns (model, tokenizer). The embedding has one row per tokenizer entry, rounded up to a multiple of 8.
    """
    import torch
    from transformers import AutoModelForCausalLM

    size = size or TinyLLMSize()
    tokenizer, qwen_ids = trim_tokenizer(texts)
    rows = (len(tokenizer) + 7) // 8 * 8
    config = qwen3_config(rows, tokenizer, size)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    save_vocab_map(out, qwen_ids)
    return model, tokenizer
