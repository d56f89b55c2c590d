"""Text length statistics, in tokens when a tokenizer is given and in characters otherwise."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Any

_BATCH = 256  # texts per tokenizer call: batching is much faster than one call per text


@dataclass(frozen=True)
class LengthStats:
    count: int
    p50: int | None  # None when there are no texts
    p95: int | None
    max: int | None

    @classmethod
    def of(cls, lengths: array) -> LengthStats:
        if not lengths:
            return cls(0, None, None, None)
        ordered = sorted(lengths)
        return cls(len(ordered), _nearest_rank(ordered, 50), _nearest_rank(ordered, 95), ordered[-1])


def _nearest_rank(ordered: list[int], percent: int) -> int:
    """The smallest observed length with at least ``percent``% of lengths at or below it."""
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


class LengthMeter:
    """Collects the lengths of texts by field (such as "queries"), batching texts through the tokenizer."""

    def __init__(self, fields: tuple[str, ...], tokenizer: Any = None):
        self.tokenizer = tokenizer
        self.unit = "tokens" if self.tokenizer else "characters"
        self._lengths = {name: array("I") for name in fields}
        self._pending: dict[str, list[str]] = {name: [] for name in fields}

    def add(self, field: str, text: str) -> None:
        if self.tokenizer is None:
            self._lengths[field].append(len(text))
            return
        pending = self._pending[field]
        pending.append(text)
        if len(pending) >= _BATCH:
            self._flush(field)

    def stats(self) -> dict[str, LengthStats]:
        for name in self._pending:
            self._flush(name)
        return {name: LengthStats.of(lengths) for name, lengths in self._lengths.items()}

    def suggested_max_len(self, p95: int | None) -> int | None:
        """A max_len covering 95% of texts: p95 rounded up to a multiple of 8, capped at the model's limit."""
        if self.tokenizer is None or p95 is None:
            return None
        value = max(8, math.ceil(p95 / 8) * 8)
        limit = getattr(self.tokenizer, "model_max_length", None)
        # Tokenizers without a known limit report a huge sentinel (int(1e30)) instead.
        return min(value, limit) if isinstance(limit, int) and limit < 1_000_000 else value

    def _flush(self, field: str) -> None:
        pending = self._pending[field]
        if pending:
            # Special tokens count, as query_max_len / passage_max_len include them. verbose=False: texts
            # longer than the model's limit are what we are measuring, not a mistake to warn about.
            encoded = self.tokenizer(
                pending,
                add_special_tokens=True,
                return_attention_mask=False,
                return_token_type_ids=False,
                verbose=False,
            )
            self._lengths[field].extend(len(ids) for ids in encoded["input_ids"])
            pending.clear()
