"""Retrieval evaluation: encode (cached) -> faiss search -> MTEB-exact metrics -> report, plus MTEB task runs."""

from embedkit.evaluation.options import EvalOptions
from embedkit.evaluation.pipeline import evaluate, evaluate_checkpoints, evaluate_encoder
from embedkit.evaluation.report import CheckpointsReport, DatasetResult, EvalReport
from embedkit.retrieval.search import SearchSettings

__all__ = ["EvalOptions", "SearchSettings", "evaluate", "evaluate_encoder", "evaluate_checkpoints", "EvalReport",
           "DatasetResult", "CheckpointsReport"]
