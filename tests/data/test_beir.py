"""BEIR loader on the shipped demo slice and on small fixtures; conversion to training examples."""

from __future__ import annotations

import json

import pytest
from fixture_files import DEMO_DATA, write_beir, write_jsonl, write_tsv

from embedkit.data import Document, load_retrieval, load_train_examples, retrieval_to_train_examples
from embedkit.errors import UserError


def test_demo_test_split():
    data = load_retrieval(DEMO_DATA, "test")
    assert (data.format, data.split, data.source) == ("beir", "test", DEMO_DATA)
    assert len(data.corpus) == 800
    assert len(data.queries) == 100
    assert sum(len(docs) for docs in data.qrels.values()) == 114
    assert data.queries["1"] == "0-dimensional biomaterials show inductive properties."
    assert data.qrels["1"] == {"31715818": 1}
    first = json.loads((DEMO_DATA / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert data.corpus[first["_id"]] == Document(first["title"], first["text"])


def test_demo_train_split_and_conversion():
    data = load_retrieval(DEMO_DATA, "train")
    assert len(data.queries) == 300
    examples = retrieval_to_train_examples(data)
    assert len(examples) == 300
    assert sum(len(e.pos) for e in examples) == 341
    first = examples[0]
    assert first.query == data.queries["2"] and first.neg == [] and first.source == str(DEMO_DATA)
    doc = data.corpus["13734012"]
    assert first.pos == [f"{doc.title} {doc.text}"]


def test_conversion_keeps_relevant_documents_only(tmp_path):
    root = write_beir(
        tmp_path,
        corpus=[("d1", "Title", "body one"), ("d2", "", "body two"), ("d3", "T", "body three")],
        queries=[("q1", "first"), ("q2", "second"), ("q3", "unjudged")],
        qrels={"train": [("q1", "d1", 2), ("q1", "d2", 0), ("q1", "d3", 1), ("q2", "d2", 0)]},
    )
    data = load_retrieval(root, "train")
    assert data.queries == {"q1": "first", "q2": "second"}  # restricted to the split's qrels
    assert data.qrels == {"q1": {"d1": 2, "d2": 0, "d3": 1}, "q2": {"d2": 0}}
    examples = load_train_examples(root, split="train")
    assert [(e.query, e.pos, e.neg) for e in examples] == [("first", ["Title body one", "T body three"], [])]


def test_numeric_ids_missing_title_and_headerless_qrels(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": 7, "text": "seven"}, {"_id": "8", "title": None, "text": "eight"}])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": 1, "text": "one", "metadata": {}}])
    write_tsv(tmp_path / "qrels" / "test.tsv", [(1, 7, 1), (1, 8, 0)])
    data = load_retrieval(tmp_path)
    assert data.corpus == {"7": Document("", "seven"), "8": Document("", "eight")}
    assert data.qrels == {"1": {"7": 1, "8": 0}}


@pytest.mark.parametrize(
    ("qrels_rows", "line", "message"),
    [
        ([("q1", "d1", 1), ("q9", "d1", 1)], 3, "query id 'q9' is not in queries.jsonl"),
        ([("q1", "d9", 1)], 2, "document id 'd9' is not in corpus.jsonl"),
        ([("q1", "d1", "1.5")], 2, "score must be an integer, got '1.5'"),
        ([("q1", "d1")], 2, "expected 3 tab-separated columns (query id, document id, score), got 2"),
        (
            [("q1", "d1", 1), ("q1", "d1", 2)],
            3,
            "query 'q1' and document 'd1' judged twice with different scores (1 on line 2, 2 here)",
        ),
        ([], 1, "no rows below the header"),
    ],
)
def test_bad_qrels_name_file_and_line(tmp_path, qrels_rows, line, message):
    root = write_beir(tmp_path, [("d1", "", "x")], [("q1", "y")], {"test": qrels_rows})
    with pytest.raises(UserError) as exc:
        load_retrieval(root, "test")
    assert (exc.value.path, exc.value.line, exc.value.message) == (str(root / "qrels" / "test.tsv"), line, message)


def test_duplicate_ids_name_both_lines(tmp_path):
    root = write_beir(
        tmp_path, [("d1", "", "x"), ("d2", "", "y"), ("d1", "", "z")], [("q1", "q")], {"test": [("q1", "d1", 1)]}
    )
    with pytest.raises(UserError) as exc:
        load_retrieval(root)
    assert str(exc.value) == f"{root / 'corpus.jsonl'}:3: duplicate document id 'd1': on lines 1 and 3"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"title": "t", "text": "x"}, "missing field '_id'"),
        ({"_id": "d1", "text": 5}, "text must be a string, got a number"),
        ({"_id": " ", "text": "x"}, "_id is empty"),
    ],
)
def test_bad_corpus_record(tmp_path, record, message):
    root = write_beir(tmp_path, [], [("q1", "q")], {"test": []})
    write_jsonl(root / "corpus.jsonl", [record])
    with pytest.raises(UserError) as exc:
        load_retrieval(root)
    assert (exc.value.line, exc.value.message) == (1, message)


def test_missing_files_and_split_are_named(tmp_path):
    root = write_beir(tmp_path, [("d1", "", "x")], [("q1", "q")], {"test": [("q1", "d1", 1)]})
    with pytest.raises(UserError, match=r"no qrels for split 'dev': expected qrels/dev.tsv \(found: test\)"):
        load_retrieval(root, "dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(UserError) as exc:
        load_retrieval(root)
    assert exc.value.path == str(root)
    assert exc.value.message.startswith("missing queries.jsonl: a BEIR directory holds corpus.jsonl, queries.jsonl")
