"""The Python API: load a trained or exported LLM-ASR model and transcribe audio.

    import wenet_llm
    texts = wenet_llm.transcribe("exp/llm_sft2/export", ["a.wav", "b.wav"], hotwords=["Zorvath"])
    model = wenet_llm.load("exp/llm_sft2")          # a training dir works too (its final checkpoint)
    model.transcribe(["a.wav"], hotwords="Zorvath,Kavanok")

``hotwords`` (a list or ``"a,b"``) go into every utterance's prompt; an empty list is the same as none.
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

        self.builder = PromptBuilder(self.tokenizer, self.cfg.prompt, self.model.speech_length,
                                     self.cfg.data.fbank.frame_shift_ms)

    def transcribe(self, audio: Sequence[str | np.ndarray], hotwords: Optional[Sequence[str] | str] = None,
                   summary: str = "", sample_rate: int = 16000, batch_size: int = 8) -> list[str]:
        """Transcripts of wav paths or float32 sample arrays (at ``sample_rate``), in order."""
        import torch

        from wenet_llm.data.features import compute_fbank, load_audio, resample
        from wenet_llm.decode.llm_decode import length_caps
        from wenet_llm.models.llm.prompt import hotword_list

        fbank = self.cfg.data.fbank
        context = {k: v for k, v in (("hotwords", hotword_list(hotwords)), ("summary", summary)) if v}
        out: list[str] = []
        eos = sorted({i for i in (self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|endoftext|>"))
                      if isinstance(i, int) and i >= 0})
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos[0]
        for start in range(0, len(audio), batch_size):
            feats, seconds = [], []
            for item in audio[start:start + batch_size]:
                if isinstance(item, (str, Path)):
                    samples = load_audio(str(item), fbank.sample_rate)
                else:
                    samples = np.asarray(item, dtype=np.float32)
                    if sample_rate != fbank.sample_rate:
                        samples = resample(samples, sample_rate, fbank.sample_rate)
                feats.append(torch.as_tensor(compute_fbank(samples, fbank.sample_rate, fbank, dither=0.0)))
                seconds.append(samples.size / fbank.sample_rate)
            lengths = torch.tensor([f.shape[0] for f in feats])
            padded = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
            for i, f in enumerate(feats):
                padded[i, : f.shape[0]] = f
            prompts = [self.builder.build(None, context) for _ in feats]
            ids = self.model.generate(padded.to(self.device), lengths.to(self.device), prompts, self.cfg.decode, eos,
                                      pad, max_new_tokens=length_caps(seconds, self.cfg.decode))
            out.extend(self.builder.output_text(self.tokenizer.decode(s, skip_special_tokens=True)) for s in ids)
        return out


def load(model_dir: str | Path, checkpoint: str | Path | None = None, device: str = "cpu") -> Recognizer:
    """A :class:`Recognizer` from an export directory or an LLM training directory (its final checkpoint,
    or ``checkpoint``)."""
    root = Path(model_dir)
    if (root / "config.yaml").is_file() and (root / "adapter.safetensors").is_file():
        from wenet_llm.models.llm.export import load_exported

        model, cfg, tokenizer = load_exported(root, device)
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
