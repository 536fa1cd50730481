"""Schema of the contextual data builder (``python -m wenet_llm.bin.make_context_data``).

Which knob does what (docs/context.md has the full story):

- ``plain_fraction``: share of utterances written with no context at all (no ``hotwords``, no
  ``summary``). The training stage mixes contextual and plain samples at its own ratio; this knob is for
  a list that should carry both by itself.
- ``hotwords``: per-utterance lists. Targets (terms said in the utterance) come from an entry field
  (``targets: field``, e.g. the demo corpus's ``entities``) or from an extractor (``statistical`` or
  ``llm``); distractors come from the corpus-level term pool (the targets of every other utterance, plus
  ``pool_files``). ``negative_fraction`` of the utterances that have targets get a list without them.
- ``summary``: one paragraph per group of utterances (``group_by`` field or ``group_key_regex``), offline
  (``extractive``) or from the chat endpoint (``llm``), given to ``fraction`` of the contextual utterances.
- ``statistical`` / ``llm``: the two extractors; ``llm`` also writes the ``llm`` summaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class StatisticalExtractorConfig:
    """Rare terms by corpus frequency. Units are English (Latin) words and single Hanzi.

    A unit is rare when it is outside the ``common_words`` most frequent words (Hanzi: ``common_chars``
    most frequent characters) of the corpus, and, with ``max_rare_count`` > 0, seen at most that often.
    A term is a run of rare units: 1..``max_words`` words, or ``zh_min_chars``..``zh_max_chars`` Hanzi
    (a shorter run of rare Hanzi is widened with the neighbours that most often go with it in the corpus).
    A word written capitalised inside a mixed-case sentence, or mixing letters and digits, counts as rare
    (entity-like) whatever its frequency.
    """

    common_words: int = 2000
    common_chars: int = 1000
    max_rare_count: int = 0  # 0: frequency rank only
    max_words: int = 4
    min_word_chars: int = 3  # a one-word term needs at least this many characters
    zh_min_chars: int = 2
    zh_max_chars: int = 4

    def validate(self) -> None:
        if self.common_words < 0 or self.common_chars < 0 or self.max_rare_count < 0:
            raise ValueError("common_words, common_chars and max_rare_count must be >= 0")
        if not 1 <= self.max_words <= 8:
            raise ValueError(f"max_words must be in 1..8, got {self.max_words}")
        if self.min_word_chars < 1:
            raise ValueError(f"min_word_chars must be >= 1, got {self.min_word_chars}")
        if not 1 <= self.zh_min_chars <= self.zh_max_chars <= 8:
            raise ValueError(f"need 1 <= zh_min_chars <= zh_max_chars <= 8, got {self.zh_min_chars}, {self.zh_max_chars}")


@dataclass
class LLMEndpointConfig:
    """An OpenAI-compatible chat-completions endpoint (a local vLLM server or a hosted model).

    Empty ``base_url`` / ``model`` are taken from the environment: ``WENET_LLM_CONTEXT_BASE_URL`` then
    ``OPENAI_BASE_URL``, and ``WENET_LLM_CONTEXT_MODEL`` then ``OPENAI_MODEL``. The API key is read from
    the environment variable named by ``api_key_env`` (none set: no Authorization header, as a local
    server needs), so that no key is written into a YAML file or the resolved config saved beside outputs.
    """

    base_url: str = ""  # e.g. http://localhost:8000/v1 ; requests go to <base_url>/chat/completions
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = 20  # transcripts per extraction request
    num_workers: int = 4  # requests in flight at once
    timeout_s: float = 120.0
    max_retries: int = 5  # further tries after a failed one (connection error, timeout, HTTP 429 / 5xx)
    backoff_s: float = 1.0  # wait before the first retry; doubled for each further one
    temperature: float = 0.0
    cache_dir: str = ""  # responses cached by request content; empty: <out>/llm_cache

    def validate(self) -> None:
        if self.batch_size < 1 or self.num_workers < 1:
            raise ValueError("batch_size and num_workers must be >= 1")
        if self.timeout_s <= 0 or self.backoff_s < 0 or self.max_retries < 0:
            raise ValueError("timeout_s must be > 0, backoff_s and max_retries >= 0")
        if self.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise ValueError(f"api_key_env must name an environment variable (not hold the key), got {self.api_key_env!r}")


@dataclass
class HotwordListConfig:
    enabled: bool = True
    # Where the targets come from: an entry field, the extractor, or the field with the extractor for
    # entries that lack it.
    targets: Literal["extract", "field", "field_or_extract"] = "extract"
    target_field: str = "entities"
    extractor: Literal["statistical", "llm"] = "statistical"
    max_targets: int = 3  # at most this many targets per utterance (M)
    # Total list length (targets + distractors), drawn uniformly from [min_list_len, max_list_len]; a list
    # never drops a target to fit, so it is at least as long as its targets.
    min_list_len: int = 0
    max_list_len: int = 100
    negative_fraction: float = 0.2  # share of utterances with targets whose list holds none of them
    no_target_lists: bool = True  # an utterance without targets gets a distractor-only list (false: no list)
    pool_files: list[str] = field(default_factory=list)  # extra distractor terms (txt, json or jsonl)
    same_language: bool = True  # distractors in the utterance's language (entry `lang`, else its script)
    normalize_terms: bool = True  # write terms as the transcripts are written (text_norm), so case never tells

    def validate(self) -> None:
        if self.max_targets < 1:
            raise ValueError(f"max_targets must be >= 1, got {self.max_targets}")
        if not 0 <= self.min_list_len <= self.max_list_len:
            raise ValueError(f"need 0 <= min_list_len <= max_list_len, got {self.min_list_len}, {self.max_list_len}")
        if not 0.0 <= self.negative_fraction <= 1.0:
            raise ValueError(f"negative_fraction must be in [0, 1], got {self.negative_fraction}")
        if self.targets != "extract" and not self.target_field:
            raise ValueError(f"targets: {self.targets} needs a target_field")


@dataclass
class SummaryConfig:
    enabled: bool = False
    group_by: str = "rec"  # entry field naming the group (rec, topic, spk, ...)
    group_key_regex: str = ""  # instead: group = first capture group of this regex on the utterance key
    source: Literal["extractive", "llm"] = "extractive"
    fraction: float = 1.0  # share of contextual utterances that carry their group's summary
    min_group_size: int = 2  # smaller groups get no summary (it would describe the utterance itself)
    topic_field: str = "topic"  # entry field whose value, shared by the group, names its topic
    max_terms: int = 8  # key terms (the group's targets) in an extractive summary
    max_topic_words: int = 5  # words (Hanzi bigrams) most typical of the group, by tf-idf over groups
    max_chars: int = 600  # a longer summary is cut at a word or character boundary
    max_prompt_chars: int = 6000  # transcripts sent to the endpoint per group (llm source)

    def validate(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {self.fraction}")
        if self.min_group_size < 1 or self.max_terms < 1 or self.max_topic_words < 0 or self.max_chars < 20 or self.max_prompt_chars < 100:
            raise ValueError("need min_group_size >= 1, max_terms >= 1, max_topic_words >= 0, max_chars >= 20, max_prompt_chars >= 100")
        if self.group_key_regex:
            try:
                pattern = re.compile(self.group_key_regex)
            except re.error as e:
                raise ValueError(f"group_key_regex {self.group_key_regex!r} is not a valid regex: {e}") from None
            if pattern.groups < 1:
                raise ValueError(f"group_key_regex {self.group_key_regex!r} needs a capture group, e.g. ^(\\d+-\\d+)-")
        elif self.enabled and not self.group_by:
            raise ValueError("summary needs group_by (an entry field) or group_key_regex")


@dataclass
class ContextDataConfig:
    seed: int = 0
    plain_fraction: float = 0.0  # share of utterances written without any context
    hotwords: HotwordListConfig = field(default_factory=HotwordListConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    statistical: StatisticalExtractorConfig = field(default_factory=StatisticalExtractorConfig)
    llm: LLMEndpointConfig = field(default_factory=LLMEndpointConfig)

    def validate(self) -> None:
        if not 0.0 <= self.plain_fraction <= 1.0:
            raise ValueError(f"plain_fraction must be in [0, 1], got {self.plain_fraction}")
        if not (self.hotwords.enabled or self.summary.enabled):
            raise ValueError("both hotwords.enabled and summary.enabled are false: nothing to build")
