"""Schema of the generated bilingual demo corpus (``python -m wenet_llm.bin.make_demo_corpus``)."""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "dev", "test", "test_hotword")
NOISY_KINDS = ("white", "pink", "babble")
# Kinds of the training noise folder: the non-speech generators that make a background (not silence).
# Babble cannot be one: it is kept out of training so that test_noisy has a noise kind never heard.
TRAIN_NOISE_KINDS = ("white", "pink", "hum", "tones")


@dataclass
class DemoCorpusConfig:
    num_utts: int = 3000  # speech utterances over train/dev/test/test_hotword
    seed: int = 0
    sample_rate: int = 16000
    zh_fraction: float = 0.5  # share of Mandarin utterances in every split (balanced per recording); the rest English
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
    # Rare names: invented names of a pool disjoint from the entities above, so that a contextual stage
    # learns to copy names from a hotword list rather than to remember them.
    rare_name_rate: float = 0.15  # share of train and dev sentences naming one rare name (more slows the AED)
    rare_name_repeat_rate: float = 0.1  # share of train mentions that reuse a name already used once
    max_rare_name_count: int = 2  # times one rare name may occur in train (dev names occur once)
    distractor_names_per_kind: int = 500  # never-spoken names per language and kind (distractor_names.json)
    # test_noisy: every test utterance at every SNR, the noise kind cycling over the utterances.
    noisy_kinds: list[str] = field(default_factory=lambda: list(NOISY_KINDS))
    noisy_snrs_db: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0])
    babble_talkers: int = 5
    noise_only_kinds: list[str] = field(default_factory=lambda: ["silence", "white", "pink", "hum", "tones"])
    min_noise_only_seconds: float = 2.0
    max_noise_only_seconds: float = 10.0
    # Training noise: a folder of clips for the data pipeline's noise augmentation (data.noise) and
    # non-speech clips with empty targets (data.non_speech); their own seeds, never test material.
    train_noise_kinds: list[str] = field(default_factory=lambda: list(TRAIN_NOISE_KINDS))
    train_noise_clips_per_kind: int = 10
    train_noise_seconds: float = 15.0
    train_non_speech_fraction: float = 0.05  # train_non_speech clips, relative to num_utts (2-10 s each)
    train_non_speech_kinds: list[str] = field(default_factory=lambda: ["silence", "white", "pink", "hum", "tones"])

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
        if not 0.0 <= self.rare_name_rate <= 1.0 - self.train_entity_rate:
            raise ValueError(f"rare_name_rate must be in [0, 1 - train_entity_rate] (a sentence names one entity or "
                             f"one rare name), got {self.rare_name_rate}")
        if not 0.0 <= self.rare_name_repeat_rate < 1.0 or self.max_rare_name_count < 1:
            raise ValueError("need 0 <= rare_name_repeat_rate < 1 and max_rare_name_count >= 1")
        if self.distractor_names_per_kind < 0:
            raise ValueError(f"distractor_names_per_kind must be >= 0, got {self.distractor_names_per_kind}")
        unknown = sorted(set(self.train_noise_kinds) - set(TRAIN_NOISE_KINDS))
        if unknown or not self.train_noise_kinds:
            raise ValueError(f"train_noise_kinds must be a non-empty subset of {list(TRAIN_NOISE_KINDS)}, got "
                             f"{self.train_noise_kinds} (babble stays out of training: it is test_noisy's unseen kind)")
        if self.train_noise_clips_per_kind < 1 or self.train_noise_seconds <= 0:
            raise ValueError("need train_noise_clips_per_kind >= 1 and train_noise_seconds > 0")
        if self.train_non_speech_fraction <= 0 or not self.train_non_speech_kinds:
            raise ValueError("train_non_speech_fraction must be > 0 and train_non_speech_kinds not empty")
