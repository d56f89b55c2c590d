"""What an evaluation produces: metrics per dataset (MTEB's keys), their mean, timings and cache use."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from embedkit.evaluation.metrics import MAIN_SCORE, mean_over_datasets
from embedkit.retrieval.runs import Run


@dataclass
class Timings:
    encode_queries_s: float = 0.0
    encode_corpus_s: float = 0.0
    search_s: float = 0.0
    scoring_s: float = 0.0
    # Corpus documents encoded per second; None when the corpus embeddings came from the cache.
    docs_per_s: Optional[float] = None


@dataclass
class DatasetResult:
    name: str
    path: str
    split: str
    format: str
    num_docs: int
    num_queries: int
    metrics: dict[str, float]
    timings: Timings
    cached: dict[str, bool]  # side ("queries", "corpus") -> embeddings came from the cache
    index: str
    top_k: int
    ignore_identical_ids: bool
    # The index (`embedkit.retrieval.search.IndexStats`) of the full-dim search: how it stored the documents, its
    # bytes, and with --rescore the candidates re-ranked per query and the int8 store's bytes.
    index_dtype: str = "float32"
    index_bytes: int = 0
    rescore: Optional[int] = None
    rescore_bytes: Optional[int] = None
    # Documents per query in the run: top_k, capped by the corpus size and by rescore.
    depth: Optional[int] = None
    # Matryoshka: embedding dim -> metrics with embeddings truncated to that dim and re-normalised.
    by_dim: dict[int, dict[str, float]] = field(default_factory=dict)
    run: Optional[Run] = field(default=None, repr=False)

    @property
    def main_score(self) -> float:
        return self.metrics[MAIN_SCORE]

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload.pop("run")
        payload["main_score"] = self.main_score
        payload["by_dim"] = {str(dim): scores for dim, scores in self.by_dim.items()}
        return payload


@dataclass
class EvalReport:
    model: str
    engine: str
    precision: str
    fingerprint: str
    dim: int
    spec: dict[str, Any]
    datasets: list[DatasetResult]

    @property
    def mean(self) -> dict[str, float]:
        return mean_over_datasets([d.metrics for d in self.datasets])

    @property
    def main_score(self) -> float:
        return self.mean[MAIN_SCORE]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "engine": self.engine,
            "precision": self.precision,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "spec": self.spec,
            "main_score_name": MAIN_SCORE,
            "datasets": [d.to_dict() for d in self.datasets],
            "mean": self.mean,
        }


@dataclass
class CheckpointResult:
    name: str
    path: str
    report: Optional[EvalReport] = None
    skipped: Optional[str] = None  # why it could not be evaluated


@dataclass
class CheckpointsReport:
    run_dir: str
    checkpoints: list[CheckpointResult]

    @property
    def best(self) -> Optional[CheckpointResult]:
        """The evaluated checkpoint with the highest mean NDCG@10 (the earliest one on a tie)."""
        scored = [c for c in self.checkpoints if c.report is not None]
        return max(scored, key=lambda c: c.report.main_score) if scored else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "run_dir": self.run_dir,
            "best": best.name if best else None,
            "main_score_name": MAIN_SCORE,
            "checkpoints": [
                {"name": c.name, "path": c.path, "skipped": c.skipped, "best": c is best,
                 **({"results": c.report.to_dict()} if c.report else {})}
                for c in self.checkpoints
            ],
        }
