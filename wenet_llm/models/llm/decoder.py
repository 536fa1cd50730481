"""The LLM decoder: any local Hugging Face causal-LM directory (Qwen3-8B for the corpus recipes), and LoRA.

Nothing is downloaded: ``path`` must be a local directory holding ``config.json``, the weights and the
tokenizer files (with a chat template). The demo builds such a directory itself (a tiny Qwen3 with
the genuine Qwen tokenizer, trimmed) and reads it through the same function.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from wenet_llm.config.llm import DecoderLLMConfig, LoraConfig

logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_llm_dir(path: str | Path) -> Path:
    """``path`` as a local model directory, or an error saying what a local directory needs."""
    if not str(path):
        raise ValueError("model.llm.path is empty: set it to a local Hugging Face model directory "
                         "(e.g. --llm_path /models/Qwen3-8B); the demo recipe builds one in stage 1 (exp/demo_llm)")
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(
            f"model.llm.path {path} is not a local directory. wenet_llm never downloads models: copy the "
            f"model (config.json, *.safetensors, tokenizer files) to a local directory and pass that path, "
            f"e.g. --llm_path /models/Qwen3-8B. The demo recipe builds its own in stage 1 (exp/demo_llm).")
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{p} has no config.json: not a Hugging Face model directory")
    return p


def load_tokenizer(path: str | Path):
    """The tokenizer (and chat template) of a local model directory."""
    from transformers import AutoTokenizer

    p = check_llm_dir(path)
    return AutoTokenizer.from_pretrained(str(p), local_files_only=True, trust_remote_code=False)


def load_llm(cfg: DecoderLLMConfig, gradient_checkpointing: bool = False) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained`` of a local directory, dtype and attention from ``cfg``."""
    from transformers import AutoModelForCausalLM

    p = check_llm_dir(cfg.path)
    model = AutoModelForCausalLM.from_pretrained(str(p), dtype=DTYPES[cfg.dtype], local_files_only=True,
                                                 trust_remote_code=False,
                                                 attn_implementation=cfg.attn_implementation)
    model.config.use_cache = not gradient_checkpointing
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def llm_from_config(config, cfg: DecoderLLMConfig) -> nn.Module:
    """A randomly initialised causal LM of a HF config (meta-device reports, tests)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(config, dtype=DTYPES[cfg.dtype], trust_remote_code=False,
                                            attn_implementation=cfg.attn_implementation)


def apply_lora(llm: nn.Module, cfg: LoraConfig) -> nn.Module:
    """Wrap ``llm`` with LoRA adapters (peft); only the LoRA weights require grad afterwards."""
    import peft

    names = {n.rsplit(".", 1)[-1] for n, m in llm.named_modules() if isinstance(m, nn.Linear)}
    missing = sorted(set(cfg.target_modules) - names)
    if missing:
        raise ValueError(f"lora.target_modules {missing} are not Linear modules of this LLM; "
                         f"its Linear modules are {sorted(names)}")
    config = peft.LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                             target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    return peft.get_peft_model(llm, config)


def is_peft(llm: nn.Module) -> bool:
    try:
        import peft
    except ImportError:
        return False
    return isinstance(llm, peft.PeftModel)


def lora_state_to_peft(weights: dict[str, torch.Tensor], llm: nn.Module) -> dict[str, torch.Tensor]:
    """Our keys of the LoRA weights (``llm.`` stripped) -> PEFT's adapter file keys."""
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(llm, state_dict=weights)


def save_lora(llm: nn.Module, weights: dict[str, torch.Tensor], out_dir: Path) -> None:
    """The LoRA weights in PEFT's own adapter format (adapter_config.json + adapter_model.safetensors)."""
    llm.save_pretrained(str(out_dir), state_dict=weights, safe_serialization=True)


def load_lora_weights(lora_dir: Path, llm: nn.Module) -> dict[str, torch.Tensor]:
    """PEFT adapter file -> the keys of ``llm.state_dict()`` (adapter name inserted), checked to exist."""
    from safetensors.torch import load_file

    file = Path(lora_dir) / "adapter_model.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: not a PEFT adapter directory")
    stored = load_file(str(file))
    own = llm.state_dict()
    adapter = getattr(llm, "active_adapter", "default")
    out = {}
    for key, value in stored.items():
        candidates = [key]
        for part in (".lora_A", ".lora_B", ".lora_embedding_A", ".lora_embedding_B", ".lora_magnitude_vector"):
            if part in key:
                head, tail = key.split(part, 1)
                candidates.insert(0, f"{head}{part}.{adapter}{tail}")
        found = next((c for c in candidates if c in own), None)
        if found is None:
            raise KeyError(f"{file}: {key} matches no LoRA weight of this model; was it trained with another "
                           f"lora.target_modules or r?")
        out[found] = value
    return out
