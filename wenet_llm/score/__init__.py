"""Scoring: WeNet-compatible tokenisation, alignment and WER/CER/MER reports; hallucination and hotword metrics."""
