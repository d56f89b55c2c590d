"""The texts layer scores are computed on: the task's own queries and passages, or any text for parity.

A BEIR or T2Ranking directory gives its split's queries and its corpus; training JSONL gives queries, positives
and negatives; a ``.txt`` file (one text per line) or a ``.jsonl`` file with a ``text`` field gives texts with no
side (no instruction, as the original ShortGPT script fed PG19). A seeded sample of ``samples`` texts is kept,
half queries where there are enough, so a corpus thousands of passages long does not drown its queries.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from embedkit.choices import Side
from embedkit.errors import UserError

DEFAULT_SAMPLES = 512


@dataclass(frozen=True)
class CalibrationText:
    text: str
    side: Optional[Side]  # None: plain text, encoded without an instruction by every tower


@dataclass(frozen=True)
class Calibration:
    source: str
    texts: list[CalibrationText]
    max_length: Optional[int]  # None: each side's max length from the model's spec

    @property
    def fingerprint(self) -> str:
        """sha256 (16 hex digits) of the sampled texts, their sides and the length limit: what the scores saw."""
        payload = [self.max_length, [(t.side and str(t.side), t.text) for t in self.texts]]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        sides = [str(t.side) if t.side else "text" for t in self.texts]
        return {side: sides.count(side) for side in sorted(set(sides))}

    def for_side(self, sides: tuple[Side, ...]) -> list[CalibrationText]:
        """The texts a tower serving ``sides`` is calibrated on (plain texts reach every tower)."""
        return [t for t in self.texts if t.side is None or t.side in sides]


def load_calibration(path: str | Path, *, split: str = "test", samples: int = DEFAULT_SAMPLES, seed: int = 42,
                     max_length: Optional[int] = None) -> Calibration:
    """A seeded sample of at most ``samples`` texts from ``path`` (``split``: a retrieval dataset's queries)."""
    if samples < 1:
        raise UserError(f"--calibration-samples must be at least 1, got {samples}")
    queries, passages, plain = _read(Path(path), split)
    rng = random.Random(seed)
    wanted_queries = min(len(queries), max(samples // 2, samples - len(passages)))
    chosen = [CalibrationText(t, Side.QUERY) for t in _sample(rng, queries, wanted_queries)]
    chosen += [CalibrationText(t, Side.PASSAGE) for t in _sample(rng, passages, samples - len(chosen))]
    chosen += [CalibrationText(t, None) for t in _sample(rng, plain, samples - len(chosen))]
    if not chosen:
        raise UserError("no texts to calibrate on", path)
    return Calibration(str(path), chosen, max_length)


def _sample(rng: random.Random, texts: list[str], n: int) -> list[str]:
    if n >= len(texts):
        return list(texts)
    return [texts[i] for i in sorted(rng.sample(range(len(texts)), n))]


def _read(path: Path, split: str) -> tuple[list[str], list[str], list[str]]:
    """(queries, passages, plain texts) of a calibration path, each deduplicated in file order."""
    from embedkit.data import detect_format, iter_train_jsonl, load_retrieval, passage_text
    from embedkit.data.texts import read_texts

    if path.is_file() and (path.suffix.lower() == ".txt" or _is_text_jsonl(path)):
        return [], [], _unique(read_texts(path))
    fmt = detect_format(path)
    if fmt == "train-jsonl":
        examples = list(iter_train_jsonl(path))
        return (_unique(e.query for e in examples),
                _unique(text for e in examples for text in (*e.pos, *e.neg)), [])
    data = load_retrieval(path, split)
    return _unique(data.queries.values()), _unique(passage_text(doc) for doc in data.corpus.values()), []


def _is_text_jsonl(path: Path) -> bool:
    """A ``.jsonl`` file of ``{"text": ...}`` records (what `embedkit encode` reads), not training JSONL."""
    if path.suffix.lower() != ".jsonl":
        return False
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    return False  # the training reader reports it with its line
                return isinstance(record, dict) and "text" in record and "query" not in record
    return False


def _unique(texts) -> list[str]:
    return list(dict.fromkeys(texts))
