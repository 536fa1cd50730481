"""Synthesis of the generated demo corpus: grammar text, espeak-ng speech, noise and non-speech clips.

It makes a corpus; it is not part of the data pipeline that reads one (``wenet_llm.data``). It may
use the pipeline's formats and mixing; ``wenet_llm.data`` never imports it.
"""
