"""Format-independent entry points: what evaluation and training call with a user's data path."""

from __future__ import annotations

from pathlib import Path

from embedkit.data.beir import BeirFiles
from embedkit.data.detect import detect_format
from embedkit.data.retrieval import RetrievalData, RetrievalFiles, load_retrieval_files, retrieval_to_train_examples
from embedkit.data.sampling import chosen_indices
from embedkit.data.t2ranking import T2RankingFiles
from embedkit.data.train_jsonl import TrainExample, iter_train_jsonl
from embedkit.errors import UserError


def open_retrieval(path: str | Path) -> RetrievalFiles:
    """The files of a BEIR or T2Ranking directory, checked to exist."""
    fmt = detect_format(path)
    if fmt == "beir":
        return BeirFiles.open(path)
    if fmt == "t2ranking":
        return T2RankingFiles.open(path)
    raise UserError("this is training JSONL: expected a BEIR or T2Ranking directory with a corpus and qrels", path)


def load_retrieval(path: str | Path, split: str = "test") -> RetrievalData:
    """Load one split of a BEIR or T2Ranking directory (the format is detected)."""
    return load_retrieval_files(open_retrieval(path), split)


def load_train_examples(
    path: str | Path, *, split: str = "train", max_example_num_per_dataset: int | None = None, seed: int = 42
) -> list[TrainExample]:
    """Training examples from JSONL (a file or a directory), or from a BEIR/T2Ranking directory's ``split``.

    A retrieval dataset counts as one dataset for ``max_example_num_per_dataset``; its examples have no
    negatives, for the trainer to draw.
    """
    if detect_format(path) == "train-jsonl":
        return list(iter_train_jsonl(path, max_example_num_per_dataset=max_example_num_per_dataset, seed=seed))
    examples = retrieval_to_train_examples(load_retrieval(path, split))
    keep = chosen_indices(len(examples), max_example_num_per_dataset, seed, Path(path).resolve().name)
    return examples if keep is None else [example for i, example in enumerate(examples) if i in keep]
