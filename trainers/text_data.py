"""Task `text`: character windows of a text that ships with every Python install.

The text is `pydoc_data.topics.topics` (the help() pages, ~465,000 characters of English
documentation), its values joined in sorted key order so every process and machine reads the same
string. The vocabulary is fixed, not learned from the text: id 0 is "unknown", then newline and the
95 printable ASCII characters (97 symbols, within twinboard.contract.costs.TEXT_VOCAB); the text's
few non-ASCII characters (typographic quotes and dashes, 575 of 464,970) become "unknown".

A sample is TEXT_WINDOW + 1 consecutive characters at a start drawn from the seed: x = ids[0:32],
y = ids[1:33], the next character at every position (a character language model's targets).
numpy and the standard library only: both trainers call this and get the very same arrays.
"""
from __future__ import annotations

import string
from functools import lru_cache

import numpy as np

from twinboard.contract import RunSpec
from twinboard.contract.costs import TEXT_VOCAB, TEXT_WINDOW

UNKNOWN = 0
SYMBOLS = "\n" + "".join(chr(c) for c in range(32, 127))  # ids 1.. in this order
VOCAB = 1 + len(SYMBOLS)  # 97
assert VOCAB <= TEXT_VOCAB and set(SYMBOLS) <= set(string.printable)


@lru_cache(maxsize=1)
def text() -> str:
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


@lru_cache(maxsize=1)
def token_ids() -> np.ndarray:
    """The whole text as int64 ids (~4 ms for 465,000 characters)."""
    table = np.full(128, UNKNOWN, np.int64)  # ASCII code -> id
    table[[ord(c) for c in SYMBOLS]] = np.arange(1, VOCAB)
    codes = np.frombuffer(text().encode("utf-32-le"), np.uint32)
    return np.where(codes < 128, table[np.minimum(codes, 127)], UNKNOWN)


def decode(ids: np.ndarray) -> str:
    """Ids back to characters, "\ufffd" for unknown: what a sample says, for people and tests."""
    chars = np.array(["\ufffd", *SYMBOLS])
    return "".join(chars[np.asarray(ids).reshape(-1)])


def windows(spec: RunSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(x int64 [n, 32], y int64 [n, 32], vocabulary size): spec.n_samples windows whose starts are
    drawn uniformly, with replacement, from `rng` (the caller seeds it from spec.seed)."""
    ids = token_ids()
    starts = rng.integers(0, len(ids) - TEXT_WINDOW, size=spec.n_samples)
    rows = ids[starts[:, None] + np.arange(TEXT_WINDOW + 1)]
    return rows[:, :-1].copy(), rows[:, 1:].copy(), VOCAB


def load_text(spec: RunSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """windows() from the stream trainers.data.load uses for the synthetic tasks ([seed, 0])."""
    return windows(spec, np.random.default_rng([spec.seed, 0]))
