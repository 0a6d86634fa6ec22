"""Complaint-text sentiment: TextBlob's built-in PatternAnalyzer polarity (-1..1), offline.

Only the lexicon shipped inside textblob is used (no NLTK corpora). CFPB masking ("XXXX",
"XX/XX/XXXX") and dollar placeholders ("{$100.00}") are removed first; empty text gives NaN.
The Spark job applies `polarity_series` through a pandas UDF; the text itself never leaves it.
"""
from __future__ import annotations

import math
import re
from typing import Optional

import pandas as pd

_MASK = re.compile(r"\bX{2,}(?:/X{2,})*\b|\{\$[\d,.]+\}", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def clean_text(text: Optional[str], max_chars: int = 5000) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    out = _SPACE.sub(" ", _MASK.sub(" ", str(text))).strip()
    return out[:max_chars]


def polarity(text: Optional[str], max_chars: int = 5000) -> float:
    """TextBlob polarity of one text; NaN when there is no text to score."""
    cleaned = clean_text(text, max_chars)
    if not cleaned:
        return float("nan")
    from textblob import TextBlob  # heavy import (nltk); only where sentiment is computed

    return float(TextBlob(cleaned).sentiment.polarity)


def polarity_series(texts: pd.Series, max_chars: int = 5000) -> pd.Series:
    """Polarity of every text in a Series (same index); NaN for empty or missing text."""
    return pd.Series([polarity(t, max_chars) for t in texts], index=texts.index, dtype="float64")
