"""Decoding: search algorithms and the decode entry points that write Kaldi-style hypotheses."""
