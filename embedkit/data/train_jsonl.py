"""Training JSONL in FlagEmbedding's format: one ``{"query", "pos", "neg"}`` object per line.

Optional keys: ``pos_scores`` / ``neg_scores`` (teacher scores, one per passage, for distillation) and
``prompt`` (a per-example query instruction). Any other key (FlagEmbedding writes ``type``) is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedkit.data.issues import IssueLog
from embedkit.data.lines import iter_json_objects, json_type
from embedkit.data.sampling import chosen_indices
from embedkit.errors import UserError


@dataclass
class TrainExample:
    query: str
    pos: list[str]
    neg: list[str]
    pos_scores: list[float] | None = None
    neg_scores: list[float] | None = None
    prompt: str | None = None
    source: str = ""  # the file or dataset directory it came from, for messages
    line: int = 0  # its line in `source`; 0 when built from a retrieval dataset's judgments


def train_jsonl_files(path: str | Path) -> list[Path]:
    """The files a training path stands for: the file itself, or a directory's ``*.jsonl`` (not recursive)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError("no such file or directory", path)
    files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
    if not files:
        raise UserError("no *.jsonl files in this directory: expected training JSONL files", path)
    return files


def iter_train_jsonl(
    path: str | Path,
    *,
    max_example_num_per_dataset: int | None = None,
    seed: int = 42,
    issues: IssueLog | None = None,
) -> Iterator[TrainExample]:
    """Stream validated examples from a JSONL file or a directory of them, in file order.

    Every line is validated; with ``max_example_num_per_dataset`` each file then yields a seeded random
    subset of at most that many examples. Problems raise `UserError` unless ``issues`` collects them,
    in which case invalid lines are skipped.
    """
    issues = issues if issues is not None else IssueLog()
    for file in train_jsonl_files(path):
        keep = chosen_indices(_count_records(file), max_example_num_per_dataset, seed, file.name)
        ordinal = -1
        for number, record in iter_json_objects(file, issues):
            example = parse_train_example(record, file, number, issues)
            if example is None:
                continue
            ordinal += 1
            if keep is None or ordinal in keep:
                yield example


def _count_records(file: Path) -> int:
    with file.open("rb") as f:
        return sum(1 for raw in f if raw.strip())


def parse_train_example(record: dict[str, Any], source: Path, line: int, issues: IssueLog) -> TrainExample | None:
    """Validate one parsed JSON object; report its first problem and return None if it has one."""
    problem = _first_problem(record)
    if problem:
        issues.error(problem, source, line)
        return None
    return TrainExample(
        query=record["query"],
        pos=record["pos"],
        neg=record["neg"],
        pos_scores=_floats(record.get("pos_scores")),
        neg_scores=_floats(record.get("neg_scores")),
        prompt=record.get("prompt"),
        source=str(source),
        line=line,
    )


def _first_problem(record: dict[str, Any]) -> str | None:
    for key in ("query", "pos", "neg"):
        if key not in record:
            hint = " (use [] to let the trainer draw negatives)" if key == "neg" else ""
            return f"missing field '{key}'{hint}"
    if not isinstance(record["query"], str):
        return f"query must be a string, got {json_type(record['query'])}"
    for key in ("pos", "neg"):
        problem = _string_list_problem(key, record[key])
        if problem:
            return problem
    if not record["pos"]:
        return "pos is empty: each query needs at least one positive passage"
    for key, passages in (("pos_scores", "pos"), ("neg_scores", "neg")):
        scores = record.get(key)
        if scores is None:
            continue
        if not isinstance(scores, list):
            return f"{key} must be a list of numbers, got {json_type(scores)}"
        for i, score in enumerate(scores):
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                return f"{key}[{i}] must be a number, got {json_type(score)}"
        if len(scores) != len(record[passages]):
            return f"{key} has {len(scores)} scores but {passages} has {len(record[passages])} passages"
    prompt = record.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return f"prompt must be a string, got {json_type(prompt)}"
    return None


def _string_list_problem(key: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{key} must be a list of strings, got {json_type(value)}"
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return f"{key}[{i}] must be a string, got {json_type(item)}"
    return None


def _floats(scores: list[int | float] | None) -> list[float] | None:
    return None if scores is None else [float(s) for s in scores]
