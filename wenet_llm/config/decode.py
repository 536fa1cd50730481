"""Names of the AED search methods, WeNet's four.

They live here, with no heavy imports, so that the command-line tools can offer them as choices
without loading torch; :mod:`wenet_llm.decode.aed_decode` implements them.
"""

AED_METHODS = ("ctc_greedy_search", "ctc_prefix_beam_search", "attention", "attention_rescoring")
DECODE_DEVICES = ("cpu", "cuda", "auto")  # auto: CUDA when one is visible, else the CPU
