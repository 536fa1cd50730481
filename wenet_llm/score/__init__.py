"""Scoring: WeNet-compatible tokenisation, Levenshtein alignment and WER/CER reports."""
