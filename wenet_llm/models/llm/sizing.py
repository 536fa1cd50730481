"""Full-size LLM-ASR models on the meta device: trainable parameters per stage and per-GPU memory estimates.

Qwen3-8B cannot be downloaded here, but its architecture is known (:func:`qwen3_8b_config`), so the
corpus recipes' configs are built on PyTorch's meta device (shapes without memory) to count what each
SFT stage trains (Index-ASR reports about 29M trainable parameters in SFT 1 and 438M in SFT 2) and to
estimate the memory of one GPU under DeepSpeed ZeRO.

The memory model (bytes per parameter and per token, documented in :func:`memory_estimate`) is an
estimate from first principles, not a measurement; the allocator's fragmentation and communication
buffers beyond the configured bucket sizes come on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.config.llm import LLMASRModelConfig


def qwen3_8b_config():
    """Qwen3-8B's published configuration (config.json)."""
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=151936, hidden_size=4096, num_hidden_layers=36, num_attention_heads=32,
                       num_key_value_heads=8, head_dim=128, intermediate_size=12288, max_position_embeddings=40960,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu",
                       attention_bias=False, bos_token_id=151643, eos_token_id=151645)


def build_on_meta(model_cfg: LLMASRModelConfig, encoder_cfg: AEDModelConfig, llm_config=None):
    """The LLM-ASR model of ``model_cfg`` with the encoder of ``encoder_cfg`` and a randomly initialised
    LLM of ``llm_config`` (default Qwen3-8B), on the meta device."""
    from wenet_llm.models.aed.export import ExportedEncoder
    from wenet_llm.models.llm.decoder import llm_from_config
    from wenet_llm.models.llm.llm_asr import LLMASRModel

    with torch.device("meta"):
        encoder = ExportedEncoder(encoder_cfg)
        llm = llm_from_config(llm_config if llm_config is not None else qwen3_8b_config(), model_cfg.llm)
        return LLMASRModel(encoder, llm, model_cfg)


def parameter_counts(model) -> dict[str, dict[str, int]]:
    """{module: {"trainable": n, "frozen": n}} with the model's module names (encoder, adapter, lora, llm)."""
    out: dict[str, dict[str, int]] = {}
    for name, p in model.named_parameters():
        row = out.setdefault(model.module_of(name), {"trainable": 0, "frozen": 0})
        row["trainable" if p.requires_grad else "frozen"] += p.numel()
    return out


@dataclass
class MemoryEstimate:
    weights_gib: float  # frozen weights (their dtype) + trainable weights (fp32), per GPU
    gradients_gib: float  # fp32 gradients of the trainable weights (partitioned under ZeRO-2/3) + buckets
    optimizer_gib: float  # Adam moments (fp32), partitioned under ZeRO >= 1
    activations_gib: float  # saved activations and the largest transient ones of the configured batch
    total_gib: float


def memory_estimate(model, world_size: int = 8, zero_stage: int = 2, frozen_bytes: int = 2,
                    batch_tokens: int = 4000, target_tokens: int = 800, gradient_checkpointing: bool = True,
                    bucket_elements: float = 2e8, encoder_frames: int = 5000) -> MemoryEstimate:
    """Per-GPU memory (GiB) of one training step, from first principles:

    - weights: frozen parameters at ``frozen_bytes`` each (bf16: 2), trainable ones in fp32 (4 bytes;
      autocast computes in bf16); ZeRO-3 would partition both (not modelled for frozen weights);
    - gradients: 4 bytes per trainable parameter, divided by the world size under ZeRO >= 2, plus one
      reduce bucket of ``bucket_elements`` fp32 values;
    - optimizer: Adam's two fp32 moments, 8 bytes per trainable parameter, divided by the world size;
    - activations of the LLM for ``batch_tokens`` sequence positions per GPU: with gradient checkpointing,
      one bf16 hidden state per layer and position saved, plus one layer's transient activations
      (attention projections and the SwiGLU MLP, bf16) recomputed in backward; without it, every layer's;
      the output layer only at the ``target_tokens`` predicted positions (fp32 logits, kept for the loss);
      the encoder's ``encoder_frames`` (after subsampling) with its own per-block activations.
    """
    counts = parameter_counts(model)
    trainable = sum(r["trainable"] for r in counts.values())
    frozen = sum(r["frozen"] for r in counts.values())
    gib = 2.0 ** 30
    weights = (frozen * frozen_bytes + trainable * 4) / gib
    shard = world_size if zero_stage >= 2 else 1
    gradients = (trainable * 4 / shard + (bucket_elements * 4 if zero_stage >= 2 else 0)) / gib
    optimizer = trainable * 8 / (world_size if zero_stage >= 1 else 1) / gib
    cfg = model.llm.config
    e, layers, ffn = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    heads, kv, head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    per_layer = batch_tokens * 2 * (4 * e + (heads + 2 * kv) * head_dim + heads * head_dim + 3 * ffn)  # bf16 bytes
    if gradient_checkpointing:
        llm_act = layers * batch_tokens * e * 2 + per_layer
    else:
        llm_act = layers * per_layer
    logits = target_tokens * cfg.vocab_size * 4 * 2  # fp32 logits and their gradient
    d = model.encoder.output_size
    blocks = model.encoder.cfg.encoder_conf.num_blocks
    units = model.encoder.cfg.encoder_conf.linear_units
    enc_act = encoder_frames * blocks * 2 * (8 * d + 2 * units)
    if model.encoder.cfg.encoder_conf.gradient_checkpointing:
        enc_act = encoder_frames * blocks * d * 2 + enc_act / blocks
    activations = (llm_act + logits + enc_act) / gib
    total = weights + gradients + optimizer + activations
    return MemoryEstimate(weights, gradients, optimizer, activations, total)


def report(stages: dict[str, object], estimate: MemoryEstimate | None = None, world_size: int = 8) -> str:
    """A text table of trainable / frozen parameters per stage and module, and the memory estimate."""
    lines = [f"{'stage':<10} {'module':<8} {'trainable':>15} {'frozen':>15}"]
    for stage, model in stages.items():
        counts = parameter_counts(model)
        for module, row in counts.items():
            lines.append(f"{stage:<10} {module:<8} {row['trainable']:>15,} {row['frozen']:>15,}")
        total = sum(r["trainable"] for r in counts.values())
        lines.append(f"{stage:<10} {'total':<8} {total:>15,} {sum(r['frozen'] for r in counts.values()):>15,}")
    if estimate is not None:
        lines.append(f"per-GPU memory estimate ({world_size} GPUs): weights {estimate.weights_gib:.1f} GiB, "
                     f"gradients {estimate.gradients_gib:.1f} GiB, optimizer {estimate.optimizer_gib:.1f} GiB, "
                     f"activations {estimate.activations_gib:.1f} GiB, total {estimate.total_gib:.1f} GiB")
    return "\n".join(lines)
