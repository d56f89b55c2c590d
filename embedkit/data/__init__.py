"""Datasets: training JSONL, BEIR and T2Ranking directories, read line by line with ``path:line`` errors."""

from embedkit.data.detect import detect_format
from embedkit.data.load import load_retrieval, load_train_examples, open_retrieval
from embedkit.data.retrieval import Document, RetrievalData, passage_text, retrieval_to_train_examples
from embedkit.data.train_jsonl import TrainExample, iter_train_jsonl

__all__ = [
    "Document",
    "RetrievalData",
    "TrainExample",
    "detect_format",
    "iter_train_jsonl",
    "load_retrieval",
    "load_train_examples",
    "open_retrieval",
    "passage_text",
    "retrieval_to_train_examples",
]
