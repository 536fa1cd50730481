"""Models. This package never imports ``wenet_llm.data`` or ``wenet_llm.train``."""
