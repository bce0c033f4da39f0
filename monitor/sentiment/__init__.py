"""Sentiment scoring of reviews: stars first, then text in its language (detection, VADER for English)."""
from .scorer import Scorer, score_jsonl
from .verdict import TextInput, Verdict

__all__ = ["Scorer", "TextInput", "Verdict", "score_jsonl"]
