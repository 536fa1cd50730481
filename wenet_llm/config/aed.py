"""Schema of the Conformer attention encoder-decoder (AED), mirroring WeNet's train.yaml sections.

A WeNet ``train.yaml`` maps onto :class:`AEDModelConfig`: ``encoder_conf`` -> :class:`ConformerEncoderConfig`,
``decoder_conf`` -> :class:`TransformerDecoderConfig`, ``model_conf`` -> :class:`AEDLossConfig`. Some WeNet keys
are accepted only at their non-streaming / default value (e.g. ``causal: false``, ``static_chunk_size: 0``):
another value is an error naming the key rather than a silently different model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


@dataclass
class ConformerEncoderConfig:
    """WeNet ``encoder_conf`` of ``encoder: conformer``."""

    output_size: int = 256
    attention_heads: int = 4
    linear_units: int = 2048
    num_blocks: int = 12
    dropout_rate: float = 0.1
    positional_dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.0
    input_layer: Literal["conv2d", "conv2d6", "conv2d8"] = "conv2d"
    normalize_before: bool = True
    macaron_style: bool = True
    use_cnn_module: bool = True
    cnn_module_kernel: int = 15
    cnn_module_norm: Literal["batch_norm", "layer_norm"] = "batch_norm"
    activation_type: Literal["swish", "relu", "gelu"] = "swish"
    pos_enc_layer_type: Literal["rel_pos"] = "rel_pos"
    selfattention_layer_type: Literal["rel_selfattn"] = "rel_selfattn"
    use_sdpa: bool = False
    gradient_checkpointing: bool = False
    # wenet_llm extension: zero padded frames again after the GLU so that batched decoding equals
    # one-by-one decoding exactly. WeNet does not (its yaml lacks the key), so loaded WeNet models keep false.
    conv_mask_after_glu: bool = False
    # WeNet keys accepted only at these values (streaming / legacy variants are not implemented).
    static_chunk_size: int = 0
    use_dynamic_chunk: bool = False
    use_dynamic_left_chunk: bool = False
    causal: bool = False
    concat_after: bool = False

    def validate(self) -> None:
        if min(self.output_size, self.attention_heads, self.linear_units, self.num_blocks) <= 0:
            raise ValueError("output_size, attention_heads, linear_units and num_blocks must be > 0")
        if self.output_size % self.attention_heads:
            raise ValueError(
                f"output_size {self.output_size} is not divisible by attention_heads {self.attention_heads}"
            )
        if self.cnn_module_kernel <= 0 or self.cnn_module_kernel % 2 == 0:
            raise ValueError(f"cnn_module_kernel must be odd and > 0 (symmetric padding), got {self.cnn_module_kernel}")
        for name in ("dropout_rate", "positional_dropout_rate", "attention_dropout_rate"):
            _check_rate(name, getattr(self, name))
        unsupported = {
            "static_chunk_size": (self.static_chunk_size, 0),
            "use_dynamic_chunk": (self.use_dynamic_chunk, False),
            "use_dynamic_left_chunk": (self.use_dynamic_left_chunk, False),
            "causal": (self.causal, False),
            "concat_after": (self.concat_after, False),
        }
        for name, (value, ok) in unsupported.items():
            if value != ok:
                raise ValueError(f"{name}: {value!r} is not supported (streaming/legacy variant); only {ok!r} is")


@dataclass
class TransformerDecoderConfig:
    """WeNet ``decoder_conf`` of ``decoder: transformer`` (its model dim is the encoder's output_size)."""

    attention_heads: int = 4
    linear_units: int = 2048
    num_blocks: int = 6
    dropout_rate: float = 0.1
    positional_dropout_rate: float = 0.1
    self_attention_dropout_rate: float = 0.0
    src_attention_dropout_rate: float = 0.0
    normalize_before: bool = True
    use_sdpa: bool = False
    gradient_checkpointing: bool = False
    # WeNet keys accepted only at these values.
    input_layer: Literal["embed"] = "embed"
    use_output_layer: Literal[True] = True
    src_attention: Literal[True] = True
    activation_type: Literal["relu"] = "relu"
    concat_after: bool = False
    tie_word_embedding: bool = False

    def validate(self) -> None:
        if min(self.attention_heads, self.linear_units, self.num_blocks) <= 0:
            raise ValueError("attention_heads, linear_units and num_blocks must be > 0")
        for name in ("dropout_rate", "positional_dropout_rate", "self_attention_dropout_rate",
                     "src_attention_dropout_rate"):
            _check_rate(name, getattr(self, name))
        if self.concat_after:
            raise ValueError("concat_after: true is not supported (legacy variant); only false is")
        if self.tie_word_embedding:
            raise ValueError("tie_word_embedding: true is not supported; only false is")


@dataclass
class AEDLossConfig:
    """WeNet ``model_conf``: loss = ctc_weight * CTC + (1 - ctc_weight) * attention loss."""

    ctc_weight: float = 0.3
    lsm_weight: float = 0.1  # label smoothing epsilon
    length_normalized_loss: bool = False  # False: losses are sums divided by the batch size
    reverse_weight: float = 0.0  # only meaningful for a bitransformer decoder, which is not supported

    def validate(self) -> None:
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {self.ctc_weight}")
        _check_rate("lsm_weight", self.lsm_weight)
        if self.reverse_weight != 0.0:
            raise ValueError(
                f"reverse_weight: {self.reverse_weight} needs a bitransformer decoder, which is not supported; use 0.0"
            )


@dataclass
class AEDModelConfig:
    """The whole AED model: WeNet's ``input_dim``, ``vocab_size`` (``output_dim``) and conf sections.

    ``sos_id``/``eos_id`` None mean WeNet's default without ``special_tokens``: vocab_size - 1.
    ``global_cmvn`` false builds the encoder without a CMVN module (no ``encoder.global_cmvn.*`` keys).
    """

    vocab_size: int = 0  # 0: taken from the tokenizer's units.txt when the model is built
    input_dim: int = 80
    encoder: Literal["conformer"] = "conformer"
    encoder_conf: ConformerEncoderConfig = field(default_factory=ConformerEncoderConfig)
    decoder: Literal["transformer"] = "transformer"
    decoder_conf: TransformerDecoderConfig = field(default_factory=TransformerDecoderConfig)
    model_conf: AEDLossConfig = field(default_factory=AEDLossConfig)
    global_cmvn: bool = True
    blank_id: int = 0
    sos_id: Optional[int] = None
    eos_id: Optional[int] = None

    @property
    def sos(self) -> int:
        return self.vocab_size - 1 if self.sos_id is None else self.sos_id

    @property
    def eos(self) -> int:
        return self.vocab_size - 1 if self.eos_id is None else self.eos_id

    def validate(self) -> None:
        if self.vocab_size != 0 and self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (or 0: from units.txt), got {self.vocab_size}")
        if self.input_dim <= 0:
            raise ValueError(f"input_dim must be > 0, got {self.input_dim}")
        # The conv subsampling must leave at least one frequency bin.
        min_dim = {"conv2d": 7, "conv2d6": 11, "conv2d8": 15}[self.encoder_conf.input_layer]
        if self.input_dim < min_dim:
            raise ValueError(
                f"input_dim {self.input_dim} is too small for input_layer {self.encoder_conf.input_layer} "
                f"(needs >= {min_dim})"
            )
        for name, value in (("blank_id", self.blank_id), ("sos_id", self.sos), ("eos_id", self.eos)):
            if self.vocab_size and not 0 <= value < self.vocab_size:
                raise ValueError(f"{name} {value} is outside the vocabulary [0, {self.vocab_size})")
        d, h = self.encoder_conf.output_size, self.decoder_conf.attention_heads
        if d % h:
            raise ValueError(f"decoder_conf.attention_heads {h} does not divide encoder_conf.output_size {d}")
