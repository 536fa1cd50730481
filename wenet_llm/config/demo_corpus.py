"""Schema of the generated bilingual demo corpus (``python -m wenet_llm.bin.make_demo_corpus``)."""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "dev", "test", "test_hotword")
NOISY_KINDS = ("white", "pink", "babble")


@dataclass
class DemoCorpusConfig:
    num_utts: int = 3000  # speech utterances over train/dev/test/test_hotword
    seed: int = 0
    sample_rate: int = 16000
    zh_fraction: float = 0.5  # share of Mandarin recordings; the rest are English
    # Split sizes as fractions of num_utts; train takes what is left.
    dev_fraction: float = 0.05
    test_fraction: float = 0.05
    test_hotword_fraction: float = 0.1
    noise_only_fraction: float = 0.05  # non-speech clips, relative to num_utts
    min_noise_only: int = 5
    # A "recording" is a run of utterances by one speaker on one topic (paragraph context).
    min_utts_per_recording: int = 3
    max_utts_per_recording: int = 8
    # Target speech duration (s) at espeak-ng's default rate; actual lengths vary around it.
    min_target_seconds: float = 2.5
    max_target_seconds: float = 8.0
    num_speakers_per_lang: int = 16
    en_voices: list[str] = field(default_factory=lambda: ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029"])
    zh_voices: list[str] = field(default_factory=lambda: ["cmn-latn-pinyin"])
    # Variants; "+f4" and "+klatt3" are left out: hardest to recognise (espeak-ng notes).
    variants: list[str] = field(
        default_factory=lambda: ["", "m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f5", "klatt", "klatt2"]
    )
    min_speed_wpm: int = 130
    max_speed_wpm: int = 185
    min_pitch: int = 35
    max_pitch: int = 70
    # Entities: rare in train, frequent in test_hotword.
    entities_per_kind: int = 40  # per language and kind (person, company, product, place)
    seen_entity_fraction: float = 0.5  # the rest never occur in train
    train_entity_rate: float = 0.08  # share of train/dev/test sentences naming one entity
    max_train_count_per_entity: int = 2
    hotword_distractors: int = 4  # distractor terms in each test_hotword list
    # test_noisy: every test utterance once, cycling over kinds x SNRs.
    noisy_kinds: list[str] = field(default_factory=lambda: list(NOISY_KINDS))
    noisy_snrs_db: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0])
    babble_talkers: int = 5
    noise_only_kinds: list[str] = field(default_factory=lambda: ["silence", "white", "pink", "hum", "tones"])
    min_noise_only_seconds: float = 2.0
    max_noise_only_seconds: float = 10.0

    def validate(self) -> None:
        if self.num_utts < 20:
            raise ValueError(f"num_utts must be >= 20 so every split gets utterances, got {self.num_utts}")
        held_out = self.dev_fraction + self.test_fraction + self.test_hotword_fraction
        if not 0 < held_out < 0.9 or min(self.dev_fraction, self.test_fraction, self.test_hotword_fraction) <= 0:
            raise ValueError("dev/test/test_hotword fractions must be > 0 and sum to < 0.9")
        if not 0.0 <= self.zh_fraction <= 1.0:
            raise ValueError(f"zh_fraction must be in [0, 1], got {self.zh_fraction}")
        if not 1 <= self.min_utts_per_recording <= self.max_utts_per_recording:
            raise ValueError("need 1 <= min_utts_per_recording <= max_utts_per_recording")
        if not 0 < self.min_target_seconds <= self.max_target_seconds:
            raise ValueError("need 0 < min_target_seconds <= max_target_seconds")
        if not 0 < self.min_noise_only_seconds <= self.max_noise_only_seconds:
            raise ValueError("need 0 < min_noise_only_seconds <= max_noise_only_seconds")
        if not 80 <= self.min_speed_wpm <= self.max_speed_wpm <= 450:
            raise ValueError("need 80 <= min_speed_wpm <= max_speed_wpm <= 450 (espeak-ng -s)")
        if not 0 <= self.min_pitch <= self.max_pitch <= 99:
            raise ValueError("need 0 <= min_pitch <= max_pitch <= 99 (espeak-ng -p)")
        if self.sample_rate != 16000:
            raise ValueError("sample_rate must be 16000: WeNet's features and the recipes assume 16 kHz")
        unknown = sorted(set(self.noisy_kinds) - set(NOISY_KINDS))
        if unknown or not self.noisy_kinds:
            raise ValueError(f"noisy_kinds must be a non-empty subset of {list(NOISY_KINDS)}, got {self.noisy_kinds}")
        if not self.noisy_snrs_db or not self.noise_only_kinds:
            raise ValueError("noisy_snrs_db and noise_only_kinds must not be empty")
        if not self.en_voices or not self.zh_voices or not self.variants:
            raise ValueError("en_voices, zh_voices and variants must not be empty")
        if self.entities_per_kind < 2 or not 0 < self.seen_entity_fraction < 1:
            raise ValueError("need entities_per_kind >= 2 and 0 < seen_entity_fraction < 1")
        if self.babble_talkers < 2:
            raise ValueError("babble_talkers must be >= 2")
