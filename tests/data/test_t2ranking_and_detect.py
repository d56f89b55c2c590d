"""T2Ranking TSV directories load into the same structures as BEIR; format detection."""

from __future__ import annotations

import pytest
from fixture_files import DEMO_DATA, write_jsonl, write_tsv

from embedkit.data import Document, detect_format, load_retrieval, retrieval_to_train_examples
from embedkit.errors import UserError


@pytest.fixture
def t2_dir(tmp_path):
    root = tmp_path / "t2"
    write_tsv(root / "collection.tsv", [("pid", "para"), ("p1", "first passage"), ("p2", "second\twith a tab")])
    # dev: its own queries file, TREC-style 4-column qrels without a header
    write_tsv(root / "queries.dev.tsv", [("q1", "query one"), ("q2", "query two")])
    write_tsv(root / "qrels.dev.tsv", [("q1", 0, "p1", 1), ("q2", 0, "p2", 2), ("q2", 0, "p1", 0)])
    # train: the shared queries.tsv, 3-column qrels with a header
    write_tsv(root / "queries.tsv", [("qid", "text"), ("q7", "query seven")])
    write_tsv(root / "qrels.train.tsv", [("qid", "pid", "rel"), ("q7", "p2", 3)])
    return root


def test_loads_dev_split_with_four_column_qrels(t2_dir):
    data = load_retrieval(t2_dir, "dev")
    assert (data.format, data.split, data.source) == ("t2ranking", "dev", t2_dir)
    assert data.corpus == {"p1": Document("", "first passage"), "p2": Document("", "second\twith a tab")}
    assert data.queries == {"q1": "query one", "q2": "query two"}
    assert data.qrels == {"q1": {"p1": 1}, "q2": {"p2": 2, "p1": 0}}
    assert [(e.query, e.pos) for e in retrieval_to_train_examples(data)] == [
        ("query one", ["first passage"]),
        ("query two", ["second\twith a tab"]),
    ]


def test_split_without_its_own_queries_file_uses_queries_tsv(t2_dir):
    data = load_retrieval(t2_dir, "train")
    assert data.queries == {"q7": "query seven"}
    assert data.qrels == {"q7": {"p2": 3}}


def test_errors_name_file_and_line(t2_dir):
    write_tsv(t2_dir / "qrels.dev.tsv", [("q1", 0, "p1", 1), ("q1", "p2", 1)])
    with pytest.raises(UserError) as exc:
        load_retrieval(t2_dir, "dev")
    assert (
        str(exc.value) == f"{t2_dir / 'qrels.dev.tsv'}:2: expected 4 tab-separated columns, as on the first row, got 3"
    )

    write_tsv(t2_dir / "collection.tsv", [("p1", "a"), ("p1", "b")])
    with pytest.raises(UserError, match="duplicate document id 'p1': on lines 1 and 2"):
        load_retrieval(t2_dir, "dev")

    write_tsv(t2_dir / "collection.tsv", [("p1", "a"), ("p2",)])
    with pytest.raises(UserError, match=r"collection.tsv:2: expected 2 tab-separated columns \(pid, text\), got 1"):
        load_retrieval(t2_dir, "dev")


def test_missing_files_are_named(t2_dir):
    (t2_dir / "queries.tsv").unlink()
    with pytest.raises(UserError, match=r"missing queries.train.tsv \(or queries.tsv\) for split 'train'"):
        load_retrieval(t2_dir, "train")
    (t2_dir / "collection.tsv").unlink()
    with pytest.raises(UserError, match="missing collection.tsv: a T2Ranking directory holds"):
        load_retrieval(t2_dir, "dev")


def test_detect_format(tmp_path, t2_dir):
    assert detect_format(DEMO_DATA) == "beir"
    assert detect_format(t2_dir) == "t2ranking"
    write_jsonl(tmp_path / "train" / "a.jsonl", [])
    assert detect_format(tmp_path / "train") == "train-jsonl"
    assert detect_format(tmp_path / "train" / "a.jsonl") == "train-jsonl"
    # one BEIR file is enough to call it BEIR, so the loader can name what else is missing
    write_jsonl(tmp_path / "partial" / "queries.jsonl", [])
    assert detect_format(tmp_path / "partial") == "beir"
    with pytest.raises(UserError, match="missing corpus.jsonl and qrels/"):
        load_retrieval(tmp_path / "partial")

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("a,b\n")
    for path, message in [
        (tmp_path / "other", "cannot tell the dataset format: expected a training .jsonl file"),
        (tmp_path / "other" / "data.csv", "not a dataset: expected"),
        (tmp_path / "absent", "no such file or directory"),
    ]:
        with pytest.raises(UserError) as exc:
            detect_format(path)
        assert exc.value.path == str(path) and exc.value.message.startswith(message)


def test_training_jsonl_is_not_a_retrieval_dataset(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"query": "q", "pos": ["p"], "neg": []}])
    with pytest.raises(UserError, match="this is training JSONL: expected a BEIR or T2Ranking directory"):
        load_retrieval(path)
