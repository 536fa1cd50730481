"""wenet_llm: LLM-based speech recognition in the WeNet tradition.

``wenet_llm.load(dir)`` and ``wenet_llm.transcribe(dir, wavs, hotwords=None)`` are the Python API
(see :mod:`wenet_llm.api`); they import torch and transformers only when called.
"""


def load(*args, **kwargs):
    from wenet_llm.api import load as _load

    return _load(*args, **kwargs)


def transcribe(*args, **kwargs):
    from wenet_llm.api import transcribe as _transcribe

    return _transcribe(*args, **kwargs)


load.__doc__ = "Load an exported or trained LLM-ASR model: see wenet_llm.api.load."
transcribe.__doc__ = "Transcribe audio with an LLM-ASR model: see wenet_llm.api.transcribe."
