"""The training dataset: each example becomes a query plus a group of passages, re-sampled every epoch.

``train_data`` is a JSONL file, a directory of JSONL files or a BEIR/T2Ranking directory (``train_split``).
Each source is tokenised once (see :mod:`embedkit.training.tokenized`); an item is then only a choice of
cached token ids: one positive and ``train_group_size - 1`` negatives drawn by
:func:`embedkit.training.sampling.sample_group` with a generator seeded by ``(seed, epoch, index)``
(:func:`~embedkit.training.sampling.example_rng`), so an
epoch's groups are the same on every rank, in every run and after a resume — and differ between epochs.

Items are addressed as ``dataset[(epoch, index)]``: the batch sampler (which knows the epoch) yields such
pairs, so the epoch reaches the dataset even in DataLoader worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedkit.config import TrainConfig
from embedkit.data import detect_format, open_retrieval, passage_text
from embedkit.data.retrieval import load_retrieval_files, retrieval_to_train_examples
from embedkit.data.sampling import chosen_indices
from embedkit.data.train_jsonl import iter_train_jsonl, train_jsonl_files
from embedkit.errors import UserError
from embedkit.fsutil import sha256_file
from embedkit.training.tokenized import (
    TokenizedExamples,
    TokenizeSettings,
    cache_key,
    cached,
    tokenize_examples,
)


@dataclass
class DataSource:
    """One tokenised source, for the model card and the run summary."""

    kind: str  # "jsonl" or "beir"/"t2ranking"
    files: dict[str, str]  # path -> sha256
    examples: int
    cache_hit: bool


@dataclass
class TrainingData:
    tokens: TokenizedExamples
    sources: list[DataSource] = field(default_factory=list)


def tokenize_settings(config: TrainConfig, append_eos: bool = False) -> TokenizeSettings:
    return TokenizeSettings(config.query_max_len, config.passage_max_len,
                            config.query_instruction_for_retrieval or "", config.passage_instruction_for_retrieval or "",
                            append_eos, keep_texts=config.icl.examples_per_query > 0)


def load_training_data(config: TrainConfig, tokenizer, on_progress: Callable[[int], None] = lambda n: None,
                       append_eos: bool = False, masked_query_tokens: int | None = None) -> TrainingData:
    """Every source of ``config.train_data``, tokenised (from the cache when it can be) as the model's spec says
    (``append_eos``: EmbedderSpec.appends_eos).

    ``masked_query_tokens``: the model leaves that many leading query tokens (the recipe's instruction) out of the
    pooling (NV-Embed's mask_instruction); an example ``prompt`` of another token count is refused, since the
    pooling would cut it at the recipe instruction's length."""
    if not config.train_data:
        raise UserError("train_data is not set: give a training JSONL file or directory, or a BEIR directory")
    path = Path(config.train_data)
    settings = tokenize_settings(config, append_eos)
    subsample = {"max_examples": config.max_example_num_per_dataset, "seed": config.seed}
    check = None
    if masked_query_tokens is not None:
        subsample["masked_query_tokens"] = masked_query_tokens  # a checked tokenisation is cached on its own

        def check(prompt: str, where: Path) -> None:
            from embedkit.modeling.tokenize import instruction_tokens

            found = instruction_tokens(tokenizer, prompt)
            if found != masked_query_tokens:
                raise UserError(f"an example's prompt takes {found} tokens where the recipe's query instruction "
                                f"takes {masked_query_tokens}: this model leaves the instruction out of its pooling "
                                f"(mask_instruction) by the recipe instruction's length. Prompt: {prompt!r}", where)
    parts, sources = [], []
    if detect_format(path) == "train-jsonl":
        for file in train_jsonl_files(path):
            hashes = {str(file): sha256_file(file)}

            def build(file=file) -> TokenizedExamples:
                examples = list(iter_train_jsonl(file, max_example_num_per_dataset=config.max_example_num_per_dataset,
                                                 seed=config.seed))
                _check_prompts(examples, check, file)
                return tokenize_examples(examples, tokenizer, settings, on_progress=on_progress)

            tokens, hit = cached(cache_key(hashes, tokenizer, settings, subsample), build, {"sources": hashes},
                                 len(tokenizer))
            parts.append(tokens)
            sources.append(DataSource("jsonl", hashes, len(tokens), hit))
    else:
        files = open_retrieval(path)
        split = config.train_split
        named = [files.corpus_path, files.queries_path(split), files.qrels_path(split)]
        hashes = {str(f): sha256_file(f) for f in named}
        fill_from_corpus = config.fill_negatives_from == "corpus"

        def build() -> TokenizedExamples:
            data = load_retrieval_files(files, split)
            examples = retrieval_to_train_examples(data)
            keep = chosen_indices(len(examples), config.max_example_num_per_dataset, config.seed, path.resolve().name)
            if keep is not None:
                examples = [ex for i, ex in enumerate(examples) if i in keep]
            corpus = [passage_text(doc) for doc in data.corpus.values()]
            _check_prompts(examples, check, path)
            return tokenize_examples(examples, tokenizer, settings, corpus=corpus, fill_from_corpus=fill_from_corpus,
                                     on_progress=on_progress)

        extra = {**subsample, "split": split, "fill_from_corpus": fill_from_corpus}
        tokens, hit = cached(cache_key(hashes, tokenizer, settings, extra), build, {"sources": hashes, "split": split},
                             len(tokenizer))
        parts.append(tokens)
        sources.append(DataSource(files.format, hashes, len(tokens), hit))
    tokens = TokenizedExamples.concat(parts)
    if len(tokens) == 0:
        raise UserError("no training examples", path)
    return TrainingData(tokens, sources)


def _check_prompts(examples, check, where: Path) -> None:
    if check is not None:
        for prompt in {ex.prompt for ex in examples if ex.prompt is not None}:
            check(prompt, where)


class TrainDataset:
    """Map-style dataset over :class:`TokenizedExamples`; ``dataset[(epoch, i)]`` is example i's epoch group."""

    def __init__(self, tokens: TokenizedExamples, group_size: int, seed: int):
        if group_size < 1:
            raise UserError(f"train_group_size must be at least 1, got {group_size}")
        self.tokens = tokens
        self.group_size = group_size
        self.seed = seed
        self._positive_hashes: list[frozenset[int]] | None = None
        self._epoch_groups: tuple[int, np.ndarray, np.ndarray] | None = None
        # epoch -> how many negatives were drawn from the fill pool / repeated for lack of distinct ones
        self.sampling_stats: dict[int, dict[str, int]] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def epoch_groups(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Passage rows [E, G] (positive first) and teacher scores [E, G] (NaN without) for ``epoch``."""
        if self._epoch_groups is None or self._epoch_groups[0] != epoch:
            from embedkit.training.sampling import PassagePool, example_rng, sample_group

            t = self.tokens
            fill_pool = PassagePool(t.fill_pool)
            groups = np.empty((len(t), self.group_size), dtype=np.int32)
            scores = np.full((len(t), self.group_size), np.nan, dtype=np.float32)
            filled = repeated = 0
            for i in range(len(t)):
                scored = t.has_scores(i)
                group = sample_group(t.example_pos[i].tolist(), t.example_neg[i].tolist(), self.group_size,
                                     example_rng(self.seed, epoch, i), fill_pool,
                                     t.pos_scores[i].tolist() if scored else None,
                                     t.neg_scores[i].tolist() if scored else None)
                groups[i] = group.passages
                if group.teacher_scores is not None:
                    scores[i] = group.teacher_scores
                filled += group.filled
                repeated += group.repeated
            self._epoch_groups = (epoch, groups, scores)
            self.sampling_stats[epoch] = {"filled_negatives": filled, "repeated_negatives": repeated}
        return self._epoch_groups[1], self._epoch_groups[2]

    def group_lengths(self, epoch: int) -> np.ndarray:
        """Token length of the longest passage in each example's group, plus its query's: what padding costs."""
        groups, _ = self.epoch_groups(epoch)
        passage_lengths = self.tokens.passage_tokens.lengths()[groups].max(axis=1)
        return passage_lengths + self.tokens.query_tokens.lengths()[self.tokens.example_query]

    def positive_hashes(self, i: int) -> frozenset[int]:
        if self._positive_hashes is None:
            hashes = self.tokens.passage_hashes
            self._positive_hashes = [frozenset(hashes[self.tokens.example_pos[j]].tolist()) for j in range(len(self))]
        return self._positive_hashes[i]

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        # The DataLoader may hand the sampler's (epoch, index) pairs over as lists.
        epoch, i = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (0, int(key))
        groups, scores = self.epoch_groups(epoch)
        rows = groups[i]
        t = self.tokens
        texts = {}
        if t.has_texts:  # for in-context examples (embedkit.training.icl): the query and its sampled positive
            query_row = t.example_query[i]
            texts = {"query_text": t.query_texts.text(query_row),
                     "query_instruction": t.instructions.text(t.query_instruction[query_row]),
                     "positive_text": t.passage_texts.text(rows[0])}
        return {
            "key": (epoch, i),
            **texts,
            "query": self.tokens.query_tokens[self.tokens.example_query[i]],
            "passages": [self.tokens.passage_tokens[r] for r in rows],
            "passage_hashes": self.tokens.passage_hashes[rows],
            "positive_hashes": self.positive_hashes(i),
            "teacher_scores": None if np.isnan(scores[i]).all() else scores[i],
        }


def describe_sources(sources: Sequence[DataSource]) -> list[dict]:
    return [{"kind": s.kind, "files": s.files, "examples": s.examples, "cache_hit": s.cache_hit} for s in sources]
