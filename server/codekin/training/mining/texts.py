"""A doc as a user would type it, shared by the miners and the held-out queries (a function's
renamed copy is in training/pairs/renaming.py)."""

from __future__ import annotations

import re

from codekin.training.mining.cutting import MIN_DOC_WORDS

_WORD = re.compile(r"[A-Za-z]{2,}")


def doc_query(doc: str, max_words: int = 40) -> str:
    """What a user would type for this doc: its first paragraph's first sentence(s) on one line,
    up to `max_words` words (code examples and later paragraphs left out)."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    words: list[str] = []
    for word in paragraph.split(" "):
        words.append(word)
        if len(words) >= max_words or (word.endswith(".") and len(_WORD.findall(" ".join(words))) >= MIN_DOC_WORDS):
            break
    return " ".join(words)
