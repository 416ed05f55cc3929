"""The text pipeline of the paper (section 4.1): lowercase, tokenize, drop stop-words, stem.

Queries that normalize to the same text map to one ``:Query`` node; the stems become
``:Term`` nodes that link queries and items. Stop-words come from the maintained
``stopwords`` package (its 175-word English list, the classic
SMART/NLTK-style set) and stems from the Snowball English stemmer; tokens with
digits ("360", "ps4") are always kept because model numbers carry intent in product search.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer
from stopwords import get_stopwords

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    return frozenset(w.replace("'", "") for w in get_stopwords("en") if w)


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lowercased ASCII-folded word tokens."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [t.replace("'", "") for t in _TOKEN.findall(folded)]


def terms(text: str) -> list[str]:
    """Stemmed content terms of ``text`` in order, stop-words removed, duplicates kept."""
    stop = _stop_words()
    kept = [t for t in tokenize(text) if t not in stop or any(c.isdigit() for c in t)]
    return [s for s in _stemmer().stemWords(kept) if s]


def normalize_query(text: str) -> str:
    """The canonical form of a query: its unique terms, sorted, space-joined.

    Near-identical queries ("Racing games", "racing game", "games for racing") share it.
    Returns "" for a query with no content terms.
    """
    return " ".join(sorted(set(terms(text))))


_CODE = re.compile(r"[^A-Za-z]*(?:L\d+:)?[^A-Za-z]*")


def category_label(name: str) -> str:
    """A category's name as shown in text: a bare code (``200``, ``L2:1234``, anything
    without a letter) becomes ``category 200``, so that a segment named after two codes
    reads ``category 200 & category 594`` and says what the numbers are. A source gives its
    codes real names with a ``categories.csv`` (``id,name``; see docs/loaders.md)."""
    clean = " ".join(str(name).split())
    if clean and _CODE.fullmatch(clean):
        return f"category {clean}"
    return clean
