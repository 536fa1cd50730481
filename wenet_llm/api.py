"""The Python API: load a trained or exported LLM-ASR model and transcribe audio.

    import wenet_llm
    texts = wenet_llm.transcribe("exp/llm_sft2/export", ["a.wav", "b.wav"], hotwords=["Zorvath"])
    model = wenet_llm.load("exp/llm_sft2")          # a training dir works too (its final checkpoint)
    model.transcribe(["a.wav"], hotwords="Zorvath,Kavanok")

``hotwords`` (a list or ``"a,b"``) go into every utterance's prompt; an empty list is the same as none.
The hallucination guards of the model config's ``decode.guards`` run (docs/guards.md); ``guards=False``
turns them all off, and ``transcribe_detailed`` also returns which guard fired on each utterance.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


@dataclasses.dataclass
class Recognizer:
    """A loaded LLM-ASR model with its prompt builder, tokenizer and settings."""

    model: object
    cfg: object
    tokenizer: object
    device: str = "cpu"

    def __post_init__(self) -> None:
        from wenet_llm.models.llm.prompt import PromptBuilder

        self._ctc_tokenizer = None  # the encoder's CTC units, loaded when the CTC guard first runs
        self.builder = PromptBuilder(self.tokenizer, self.cfg.prompt, self.model.speech_length,
                                     self.cfg.data.fbank.frame_shift_ms)

    def transcribe(self, audio: Sequence[str | np.ndarray], hotwords: Optional[Sequence[str] | str] = None,
                   summary: str = "", sample_rate: int = 16000, batch_size: int = 8,
                   guards: Optional[bool] = None) -> list[str]:
        """Transcripts of wav paths or float32 sample arrays (at ``sample_rate``), in order.

        ``guards``: None runs the config's guards, False none of them, True the config's per-guard
        settings even if the config switches guards off as a whole."""
        return [o.text for o in self.transcribe_detailed(audio, hotwords, summary, sample_rate, batch_size, guards)]

    def transcribe_detailed(self, audio: Sequence[str | np.ndarray], hotwords: Optional[Sequence[str] | str] = None,
                            summary: str = "", sample_rate: int = 16000, batch_size: int = 8,
                            guards: Optional[bool] = None) -> list:
        """Like ``transcribe``, one :class:`wenet_llm.decode.guards.GuardedOutput` per input: ``text``,
        ``tokens``, ``flags`` (which guard fired), ``details`` (what it changed), ``ctc_text``."""
        import torch

        from wenet_llm.data.features import compute_fbank, load_audio, resample
        from wenet_llm.decode.guards import GuardedDecoder, load_ctc_tokenizer, switch_guards
        from wenet_llm.models.llm.prompt import hotword_list

        fbank = self.cfg.data.fbank
        gen = dataclasses.replace(self.cfg.decode, guards=switch_guards(self.cfg.decode.guards, enabled=guards))
        if (gen.guards.active("ctc") or gen.rescoring.enabled) and self._ctc_tokenizer is None:
            self._ctc_tokenizer = load_ctc_tokenizer(self.model.cfg.encoder_dir)
        decoder = GuardedDecoder(self.model, self.tokenizer, self.builder, gen, fbank, self._ctc_tokenizer)
        context = {k: v for k, v in (("hotwords", hotword_list(hotwords)), ("summary", summary)) if v}
        out: list = []
        for start in range(0, len(audio), batch_size):
            feats = []
            for item in audio[start:start + batch_size]:
                if isinstance(item, (str, Path)):
                    samples = load_audio(str(item), fbank.sample_rate)
                else:
                    samples = np.asarray(item, dtype=np.float32)
                    if sample_rate != fbank.sample_rate:
                        samples = resample(samples, sample_rate, fbank.sample_rate)
                feats.append(torch.as_tensor(compute_fbank(samples, fbank.sample_rate, fbank, dither=0.0)))
            lengths = torch.tensor([f.shape[0] for f in feats])
            padded = torch.zeros(len(feats), max(1, int(lengths.max())), feats[0].shape[1])
            for i, f in enumerate(feats):
                padded[i, : f.shape[0]] = f
            prompts = [self.builder.build(None, context) for _ in feats]
            out.extend(decoder(padded.to(self.device), lengths.to(self.device), prompts,
                               [context.get("hotwords", [])] * len(feats)))
        return out


def load(model_dir: str | Path, checkpoint: str | Path | None = None, device: str = "cpu") -> Recognizer:
    """A :class:`Recognizer` from an export directory or an LLM training directory (its final checkpoint,
    or ``checkpoint``)."""
    root = Path(model_dir)
    if (root / "config.yaml").is_file() and (root / "adapter.safetensors").is_file():
        from wenet_llm.decode.guards import load_ctc_tokenizer
        from wenet_llm.models.llm.export import ENCODER, load_exported

        model, cfg, tokenizer = load_exported(root, device, ctc_decode=load_ctc_tokenizer(root / ENCODER).decode)
    elif (root / "train.yaml").is_file():
        from wenet_llm.train.llm import load_trained

        model, cfg, tokenizer = load_trained(root, checkpoint)
        model.to(device)
    else:
        raise FileNotFoundError(f"{root} is neither an exported LLM-ASR model (config.yaml + adapter.safetensors) "
                                f"nor an LLM training dir (train.yaml)")
    return Recognizer(model, cfg, tokenizer, device)


def transcribe(model_dir: str | Path, wavs: Sequence[str | np.ndarray], hotwords: Optional[Sequence[str] | str] = None,
               device: str = "cpu") -> list[str]:
    """One-call transcription: ``load(model_dir).transcribe(wavs, hotwords)``."""
    return load(model_dir, device=device).transcribe(wavs, hotwords)
