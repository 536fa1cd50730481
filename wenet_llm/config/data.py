"""Schema of the data pipeline: features, augmentation, filtering, sampling and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class FbankConfig:
    """Kaldi fbank with WeNet's settings (computed with lhotse on int16-scaled samples)."""

    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.1  # training only; evaluation always uses 0
    sample_rate: int = 16000  # audio at another rate is resampled to this

    def validate(self) -> None:
        if self.num_mel_bins <= 0 or self.frame_length_ms <= 0 or self.frame_shift_ms <= 0:
            raise ValueError("num_mel_bins, frame_length_ms and frame_shift_ms must be > 0")
        if self.dither < 0:
            raise ValueError(f"dither must be >= 0, got {self.dither}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0, got {self.sample_rate}")


@dataclass
class SpeedPerturbConfig:
    enabled: bool = False
    factors: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])

    def validate(self) -> None:
        if not self.factors or any(f <= 0 for f in self.factors):
            raise ValueError(f"factors must be a non-empty list of positive numbers, got {self.factors}")


@dataclass
class SpecAugConfig:
    """WeNet's SpecAugment: masks on the raw fbank (before CMVN); no time warp."""

    enabled: bool = True
    num_t_mask: int = 2
    num_f_mask: int = 2
    max_t: int = 50
    max_f: int = 10

    def validate(self) -> None:
        if min(self.num_t_mask, self.num_f_mask, self.max_t, self.max_f) < 0:
            raise ValueError("SpecAugment counts and widths must be >= 0")


@dataclass
class NoiseAugConfig:
    """Additive noise from a folder of wavs (MUSAN style) at a random SNR."""

    enabled: bool = False
    noise_dir: str = ""  # searched recursively for *.wav / *.flac
    prob: float = 0.5
    min_snr_db: float = 0.0
    max_snr_db: float = 20.0
    # First epoch (0-based) that adds noise: a small model on little data first learns to align on
    # clean speech; noise from the first step can keep its CTC alignment from forming at all.
    start_epoch: int = 0

    def validate(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {self.prob}")
        if self.start_epoch < 0:
            raise ValueError(f"start_epoch must be >= 0, got {self.start_epoch}")
        if self.min_snr_db > self.max_snr_db:
            raise ValueError("min_snr_db must be <= max_snr_db")
        if self.enabled and not self.noise_dir:
            raise ValueError("noise augmentation is enabled but noise_dir is empty")


@dataclass
class ReverbConfig:
    """Reverberation by convolution with room impulse responses from a folder of wavs."""

    enabled: bool = False
    rir_dir: str = ""
    prob: float = 0.3

    def validate(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {self.prob}")
        if self.enabled and not self.rir_dir:
            raise ValueError("reverberation is enabled but rir_dir is empty")


@dataclass
class NonSpeechConfig:
    """Non-speech clips with EMPTY targets mixed into training (teaches "say nothing")."""

    enabled: bool = False
    cuts: str = ""  # data.list / Kaldi dir / manifest of non-speech clips (e.g. the demo's noise_only)
    rate: float = 0.05  # expected share of non-speech items among training items
    start_epoch: int = 0  # first epoch (0-based) with non-speech clips (as noise.start_epoch)

    def validate(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {self.rate}")
        if self.start_epoch < 0:
            raise ValueError(f"start_epoch must be >= 0, got {self.start_epoch}")
        if self.enabled and not self.cuts:
            raise ValueError("non-speech mixing is enabled but cuts is empty")


@dataclass
class FilterConfig:
    """Length limits (WeNet's filter, in seconds and tokens); out-of-range items are counted, not silently lost."""

    min_seconds: float = 0.1
    max_seconds: float = 40.0
    max_tokens: int = 200
    min_tokens: int = 0  # 0 keeps empty-target (non-speech) items

    def validate(self) -> None:
        if not 0 <= self.min_seconds < self.max_seconds:
            raise ValueError(f"need 0 <= min_seconds < max_seconds, got min_seconds {self.min_seconds}, "
                             f"max_seconds {self.max_seconds} (every item would be filtered out)")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"need 0 <= min_tokens <= max_tokens, got min_tokens {self.min_tokens}, "
                             f"max_tokens {self.max_tokens}")


@dataclass
class SamplerConfig:
    """lhotse DynamicBucketingSampler by total duration."""

    max_duration: float = 200.0  # seconds of audio per batch
    # LLM stages: also bound the padded token count per batch (speech positions + prompt + context +
    # transcript, times the batch size); 0 = no token bound. The AED ignores it.
    max_tokens: int = 0
    num_buckets: int = 10
    shuffle: bool = True
    drop_last: bool = False
    buffer_size: int = 20000
    seed: int = 0

    def validate(self) -> None:
        if self.max_duration <= 0:
            raise ValueError(f"max_duration (seconds of audio per batch) must be > 0, got {self.max_duration}")
        if self.num_buckets < 1 or self.buffer_size < 1:
            raise ValueError(f"num_buckets and buffer_size must be >= 1, got {self.num_buckets}, {self.buffer_size}")


@dataclass
class DataConfig:
    train: str = "data/train/data.list"
    dev: str = "data/dev/data.list"
    format: Literal["raw", "shar"] = "raw"  # raw: data.list / Kaldi dir / manifest; shar: lhotse Shar dir
    fbank: FbankConfig = field(default_factory=FbankConfig)
    speed_perturb: SpeedPerturbConfig = field(default_factory=SpeedPerturbConfig)
    spec_aug: SpecAugConfig = field(default_factory=SpecAugConfig)
    noise: NoiseAugConfig = field(default_factory=NoiseAugConfig)
    reverb: ReverbConfig = field(default_factory=ReverbConfig)
    non_speech: NonSpeechConfig = field(default_factory=NonSpeechConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    num_workers: int = 2

    def validate(self) -> None:
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (0: load in the main process), got {self.num_workers}")


@dataclass
class ValidateConfig:
    """Checks of ``python -m wenet_llm.bin.validate``."""

    min_seconds: float = 0.1
    max_seconds: float = 40.0
    sample_rate: int = 16000  # other rates are resampled at load time: reported, not rejected
    allow_empty_text: bool = False  # true for non-speech sets, whose targets are empty by design

    def validate(self) -> None:
        if not 0 <= self.min_seconds < self.max_seconds:
            raise ValueError(f"need 0 <= min_seconds < max_seconds, got min_seconds {self.min_seconds}, "
                             f"max_seconds {self.max_seconds} (every entry would be rejected)")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0 (the rate training reads), got {self.sample_rate}")
