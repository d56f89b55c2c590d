"""Training data tokenised once and cached: token ids of every unique query and passage, examples as indices.

Tokenising per step (the original example) repeats the same work every epoch; here each data source — a JSONL
file, or a BEIR/T2Ranking split — is tokenised once and stored under
``embedkit.paths.cache_dir("tokenized")/<key>`` as ``.npy`` arrays plus ``meta.json`` (never pickle). The key
covers everything the token ids depend on: the source files' sha256, the tokenizer's files, the max lengths,
the instructions and the example subsampling. Per-epoch sampling then only picks among cached ids.

With ``keep_texts`` (in-context examples in training, which are formatted and tokenised per batch) the raw
texts are kept as well, UTF-8 bytes in `Ragged` rows: each query's text and instruction, each passage's text.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import numpy as np

from embedkit import console, paths
from embedkit.data.train_jsonl import TrainExample
from embedkit.filenames import TOKENIZER_FILES
from embedkit.fsutil import atomic_path, sha256_file, write_json
from embedkit.integrity import file_records, mismatch
from embedkit.modeling.tokenize import tokenize

CACHE_FORMAT = 2
META_FILE = "meta.json"


@dataclass
class Ragged:
    """Variable-length int/float rows stored flat: row i is ``values[offsets[i]:offsets[i+1]]``."""

    values: np.ndarray
    offsets: np.ndarray  # int64 [n + 1]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], dtype) -> Ragged:
        rows = list(rows)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.fromiter((v for r in rows for v in r), dtype=dtype, count=int(offsets[-1]))
        return cls(values, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]:self.offsets[i + 1]]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Ragged:
        encoded = [t.encode("utf-8") for t in texts]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets)

    def text(self, i: int) -> str:
        return self[i].tobytes().decode("utf-8")

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def shifted(self, by: int) -> Ragged:
        return Ragged(self.values + by, self.offsets)

    @staticmethod
    def concat(parts: Sequence[Ragged]) -> Ragged:
        values = np.concatenate([p.values for p in parts])
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for p in parts:
            offsets.append(p.offsets[1:] + base)
            base += int(p.offsets[-1])
        return Ragged(values, np.concatenate(offsets))


@dataclass
class TokenizedExamples:
    """One or more data sources, tokenised: unique texts' token ids and examples pointing at them."""

    query_tokens: Ragged  # int32 token ids per unique query text (instruction included)
    passage_tokens: Ragged  # int32 token ids per unique passage text (instruction included)
    passage_hashes: np.ndarray  # int64 text_hash of each passage's raw text, for false-negative masking
    example_query: np.ndarray  # int32 [E] row in query_tokens
    example_pos: Ragged  # int32 passage rows
    example_neg: Ragged  # int32 passage rows
    pos_scores: Ragged  # float32 teacher scores aligned with example_pos (empty rows without scores)
    neg_scores: Ragged  # float32, aligned with example_neg
    fill_pool: np.ndarray  # int32 passage rows random negatives are drawn from
    # The raw texts, with keep_texts only (None otherwise): UTF-8 per query row and passage row, and each
    # query row's instruction as a row of the ``instructions`` table.
    query_texts: Optional[Ragged] = None
    passage_texts: Optional[Ragged] = None
    instructions: Optional[Ragged] = None
    query_instruction: Optional[np.ndarray] = None  # int32 [Q] row in instructions

    @property
    def has_texts(self) -> bool:
        return self.query_texts is not None

    def __len__(self) -> int:
        return len(self.example_query)

    def has_scores(self, i: int) -> bool:
        """Whether example i carries teacher scores (its ``pos_scores`` and ``neg_scores``)."""
        return len(self.pos_scores[i]) > 0

    @staticmethod
    def concat(parts: Sequence[TokenizedExamples]) -> TokenizedExamples:
        if len(parts) == 1:
            return parts[0]
        q_base = np.cumsum([0] + [len(p.query_tokens) for p in parts])[:-1]
        p_base = np.cumsum([0] + [len(p.passage_tokens) for p in parts])[:-1]
        texts = {}
        if all(p.has_texts for p in parts):
            i_base = np.cumsum([0] + [len(p.instructions) for p in parts])[:-1]
            texts = {"query_texts": Ragged.concat([p.query_texts for p in parts]),
                     "passage_texts": Ragged.concat([p.passage_texts for p in parts]),
                     "instructions": Ragged.concat([p.instructions for p in parts]),
                     "query_instruction": np.concatenate([p.query_instruction + b for p, b in
                                                          zip(parts, i_base, strict=True)]).astype(np.int32)}
        return TokenizedExamples(
            query_tokens=Ragged.concat([p.query_tokens for p in parts]),
            passage_tokens=Ragged.concat([p.passage_tokens for p in parts]),
            passage_hashes=np.concatenate([p.passage_hashes for p in parts]),
            example_query=np.concatenate([p.example_query + q for p, q in zip(parts, q_base, strict=True)]).astype(np.int32),
            example_pos=Ragged.concat([p.example_pos.shifted(int(b)) for p, b in zip(parts, p_base, strict=True)]),
            example_neg=Ragged.concat([p.example_neg.shifted(int(b)) for p, b in zip(parts, p_base, strict=True)]),
            pos_scores=Ragged.concat([p.pos_scores for p in parts]),
            neg_scores=Ragged.concat([p.neg_scores for p in parts]),
            fill_pool=np.concatenate([p.fill_pool + b for p, b in zip(parts, p_base, strict=True)]).astype(np.int32),
            **texts,
        )

    def save(self, directory: Path) -> list[str]:
        """Write one .npy per array; returns the file names."""
        written = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:  # texts not kept
                continue
            arrays = ({f"{f.name}.values.npy": value.values, f"{f.name}.offsets.npy": value.offsets}
                      if isinstance(value, Ragged) else {f"{f.name}.npy": value})
            for name, array in arrays.items():
                np.save(directory / name, array, allow_pickle=False)
                written.append(name)
        return written

    def inconsistency(self, vocab_size: int) -> Optional[str]:
        """Why these arrays cannot be training data for a tokenizer of ``vocab_size`` tokens (None if they can)."""
        for name in ("query_tokens", "passage_tokens", "example_pos", "example_neg", "pos_scores", "neg_scores"):
            ragged = getattr(self, name)
            offsets = ragged.offsets
            if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ragged.values) or (np.diff(offsets) < 0).any():
                return f"{name}: offsets do not partition its values"
        for name in ("query_tokens", "passage_tokens"):
            values = getattr(self, name).values
            if len(values) and (values.min() < 0 or values.max() >= vocab_size):
                return f"{name}: token ids outside the vocabulary (0..{vocab_size - 1})"
        rows = {"example_query": (self.example_query, len(self.query_tokens)),
                "example_pos": (self.example_pos.values, len(self.passage_tokens)),
                "example_neg": (self.example_neg.values, len(self.passage_tokens)),
                "fill_pool": (self.fill_pool, len(self.passage_tokens))}
        if self.has_texts:
            for name in ("query_texts", "passage_texts", "instructions"):
                offsets = getattr(self, name).offsets
                if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(getattr(self, name).values):
                    return f"{name}: offsets do not partition its values"
            if len(self.query_texts) != len(self.query_tokens) or len(self.passage_texts) != len(self.passage_tokens):
                return "texts: not one per tokenised query and passage"
            rows["query_instruction"] = (self.query_instruction, len(self.instructions))
        for name, (values, bound) in rows.items():
            if len(values) and (values.min() < 0 or values.max() >= bound):
                return f"{name}: rows outside 0..{bound - 1}"
        return None

    @classmethod
    def load(cls, directory: Path) -> TokenizedExamples:
        kwargs = {}
        for f in fields(cls):
            if (directory / f"{f.name}.npy").is_file():
                kwargs[f.name] = np.load(directory / f"{f.name}.npy", allow_pickle=False)
            elif f.default is None and not (directory / f"{f.name}.values.npy").is_file():
                kwargs[f.name] = None  # texts not kept
            else:
                kwargs[f.name] = Ragged(np.load(directory / f"{f.name}.values.npy", allow_pickle=False),
                                        np.load(directory / f"{f.name}.offsets.npy", allow_pickle=False))
        return cls(**kwargs)


@dataclass(frozen=True)
class TokenizeSettings:
    query_max_len: int
    passage_max_len: int
    query_instruction: str
    passage_instruction: str
    append_eos: bool = False
    keep_texts: bool = False  # also store the raw texts (see the module docstring)


def tokenizer_fingerprint(tokenizer) -> str:
    """Identifies the tokenizer by class and the bytes of its vocabulary files."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    source = Path(getattr(tokenizer, "name_or_path", "") or "")
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            digest.update(name.encode() + sha256_file(source / name).encode())
    digest.update(str(len(tokenizer)).encode())
    return digest.hexdigest()


def cache_key(source_hashes: dict[str, str], tokenizer, settings: TokenizeSettings, extra: dict) -> str:
    described = dict(settings.__dict__)
    if not described["keep_texts"]:  # entries made before keep_texts existed keep their keys
        del described["keep_texts"]
    payload = {"format": CACHE_FORMAT, "sources": source_hashes, "tokenizer": tokenizer_fingerprint(tokenizer),
               "settings": described, **extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def cached(key: str, build: Callable[[], TokenizedExamples], describe: dict,
           vocab_size: int) -> tuple[TokenizedExamples, bool]:
    """The cached entry for ``key``, or ``build()`` stored atomically under it; also whether it was a hit.

    An entry is used only when its files match the records in its ``meta.json`` (written last) and its arrays
    are consistent with the tokenizer; otherwise it is discarded with a warning and built again.
    """
    target = paths.cache_dir("tokenized") / key
    if target.is_dir():
        loaded, problem = _verified(target, vocab_size)
        if loaded is not None:
            return loaded, True
        console.get().warning(f"discarding a damaged tokenisation cache entry {target}: {problem}; "
                              "tokenising again")
        shutil.rmtree(target, ignore_errors=True)  # under the cache root, named by its key: embedkit's own
    data = build()
    with atomic_path(target, replace_dir=True) as staged:  # a cache entry: embedkit's own
        staged.mkdir()
        names = data.save(staged)
        write_json(staged / META_FILE, {"format": CACHE_FORMAT, "examples": len(data),
                                        "queries": len(data.query_tokens), "passages": len(data.passage_tokens),
                                        "files": file_records(staged, names), **describe})
    return data, False


def _verified(entry: Path, vocab_size: int) -> tuple[Optional[TokenizedExamples], Optional[str]]:
    try:
        meta = json.loads((entry / META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, f"{META_FILE} is missing or unreadable"
    problem = mismatch(entry, meta.get("files") if isinstance(meta, dict) else None)
    if problem is not None:
        return None, problem
    try:
        data = TokenizedExamples.load(entry)
    except (OSError, ValueError) as exc:
        return None, f"unreadable arrays ({exc})"
    problem = data.inconsistency(vocab_size)
    return (None, problem) if problem is not None else (data, None)


class _Interner:
    """Assigns a row to each distinct text, in first-seen order."""

    def __init__(self):
        self.rows: dict[tuple[str, str], int] = {}

    def __call__(self, instruction: str, text: str) -> int:
        return self.rows.setdefault((instruction, text), len(self.rows))

    def grouped(self) -> dict[str, list[tuple[int, str]]]:
        """Texts by instruction, so each group is tokenised with its own prefix."""
        groups: dict[str, list[tuple[int, str]]] = {}
        for (instruction, text), row in self.rows.items():
            groups.setdefault(instruction, []).append((row, text))
        return groups


def _tokenize_rows(tokenizer, interner: _Interner, max_len: int, append_eos: bool,
                   on_progress: Callable[[int], None], chunk: int = 1024) -> Ragged:
    rows: list[list[int]] = [[] for _ in range(len(interner.rows))]
    for instruction, items in interner.grouped().items():
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            features = tokenize(tokenizer, [t for _, t in part], max_len, instruction, append_eos)
            for (row, _), feature in zip(part, features, strict=True):
                rows[row] = feature["input_ids"]
            on_progress(len(part))
    return Ragged.from_rows(rows, np.int32)


def tokenize_examples(examples: Sequence[TrainExample], tokenizer, settings: TokenizeSettings,
                      corpus: Sequence[str] | None = None, fill_from_corpus: bool = True,
                      on_progress: Callable[[int], None] = lambda n: None) -> TokenizedExamples:
    """Tokenise ``examples`` (and ``corpus``, a retrieval dataset's documents, listed first among passages).

    A per-example ``prompt`` replaces the recipe's query instruction for that example. Random negatives are
    drawn from the corpus when one is given and ``fill_from_corpus``, otherwise from every example passage.
    """
    from embedkit.losses import text_hash

    queries, passages = _Interner(), _Interner()
    passage_instruction = settings.passage_instruction
    corpus_rows = sorted({passages(passage_instruction, doc) for doc in corpus or ()})
    example_query, pos, neg, pos_scores, neg_scores = [], [], [], [], []
    for ex in examples:
        instruction = ex.prompt if ex.prompt is not None else settings.query_instruction
        example_query.append(queries(instruction, ex.query))
        pos.append([passages(passage_instruction, t) for t in ex.pos])
        neg.append([passages(passage_instruction, t) for t in ex.neg])
        scored = ex.pos_scores is not None and ex.neg_scores is not None
        pos_scores.append(ex.pos_scores if scored else [])
        neg_scores.append(ex.neg_scores if scored else [])
    passage_texts = [text for (_, text) in passages.rows]
    texts = {}
    if settings.keep_texts:
        instruction_rows: dict[str, int] = {}
        query_instruction = [instruction_rows.setdefault(instruction, len(instruction_rows))
                             for (instruction, _) in queries.rows]
        texts = {"query_texts": Ragged.from_texts(text for (_, text) in queries.rows),
                 "passage_texts": Ragged.from_texts(passage_texts),
                 "instructions": Ragged.from_texts(instruction_rows),
                 "query_instruction": np.asarray(query_instruction, dtype=np.int32)}
    if corpus is not None and fill_from_corpus:
        fill_pool = np.asarray(corpus_rows, dtype=np.int32)
    elif corpus is not None:  # only the documents that are some example's positive
        fill_pool = np.unique(np.fromiter((p for row in pos for p in row), dtype=np.int32))
    else:
        fill_pool = np.arange(len(passage_texts), dtype=np.int32)
    return TokenizedExamples(
        query_tokens=_tokenize_rows(tokenizer, queries, settings.query_max_len, settings.append_eos, on_progress),
        passage_tokens=_tokenize_rows(tokenizer, passages, settings.passage_max_len, settings.append_eos,
                                      on_progress),
        passage_hashes=np.array([text_hash(t) for t in passage_texts], dtype=np.int64),
        example_query=np.asarray(example_query, dtype=np.int32),
        example_pos=Ragged.from_rows(pos, np.int32),
        example_neg=Ragged.from_rows(neg, np.int32),
        pos_scores=Ragged.from_rows(pos_scores, np.float32),
        neg_scores=Ragged.from_rows(neg_scores, np.float32),
        fill_pool=fill_pool,
        **texts,
    )
