"""wenet_llm: LLM-based speech recognition in the WeNet tradition."""
