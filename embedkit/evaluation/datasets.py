"""The evaluation view of a retrieval dataset: its name, the texts the model reads, and MTEB's conventions for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embedkit.data import RetrievalData, load_retrieval, passage_text

# MTEB 2.26 drops a query's own id from its results (``ignore_identical_ids = True``) for these tasks, where
# queries and documents share an id space. Keys are the dataset directory names BEIR and T2Ranking use; a test
# checks each entry against the installed mteb.
MTEB_IGNORE_IDENTICAL_IDS: dict[str, str] = {
    "arguana": "ArguAna",
    "fever": "FEVER",
    "fiqa": "FiQA2018",
    "msmarco": "MSMARCO",
    "quora": "QuoraRetrieval",
    "t2ranking": "T2Retrieval",
}


@dataclass
class EvalDataset:
    name: str
    data: RetrievalData

    @property
    def query_ids(self) -> list[str]:
        return list(self.data.queries)

    @property
    def doc_ids(self) -> list[str]:
        return list(self.data.corpus)

    def query_texts(self) -> list[str]:
        return list(self.data.queries.values())

    def doc_texts(self) -> list[str]:
        return [passage_text(doc) for doc in self.data.corpus.values()]

    def mteb_ignores_identical_ids(self) -> bool:
        key = "t2ranking" if self.data.format == "t2ranking" else self.name.lower()
        return key in MTEB_IGNORE_IDENTICAL_IDS


def dataset_name(path: Path) -> str:
    return Path(path).resolve().name


def load_dataset(path: str | Path, split: str) -> EvalDataset:
    """Load one split of a BEIR or T2Ranking directory (validation problems raise UserError)."""
    return EvalDataset(dataset_name(Path(path)), load_retrieval(path, split))


def unique_names(datasets: list[EvalDataset]) -> list[EvalDataset]:
    """Give datasets that share a directory name distinct names (``name``, ``name-2``...)."""
    seen: dict[str, int] = {}
    for dataset in datasets:
        count = seen.get(dataset.name, 0) + 1
        seen[dataset.name] = count
        if count > 1:
            dataset.name = f"{dataset.name}-{count}"
    return datasets
