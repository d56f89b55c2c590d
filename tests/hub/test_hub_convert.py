"""Conversions on small fixtures written in the upstream layouts (TSV, JSONL, parquet)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedkit.errors import UserError
from embedkit.hub.convert import group_triples, mmarco_to_training_jsonl, mteb_to_beir, t2ranking_to_beir


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_qrels(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# --- mMARCO ----------------------------------------------------------------------------------


def test_group_triples_gives_each_query_all_its_negatives_once():
    triples = [(7, 1, 10), (3, 2, 20), (7, 1, 11), (7, 1, 10), (7, 5, 12), (3, 2, 2), (7, 1, 5)]
    qids, pos, neg = zip(*triples, strict=True)

    grouped = list(group_triples(qids, pos, neg))

    # qid ascending; file order kept inside a query; duplicates and positives-as-negatives dropped
    assert grouped == [(3, [2], [20]), (7, [1, 5], [10, 11, 12])]


def test_group_triples_of_nothing_is_nothing():
    assert list(group_triples([], [], [])) == []


def mmarco_snapshot(root: Path) -> Path:
    write(root / "data" / "triples.train.ids.small.tsv", "100\t1\t2\n100\t1\t3\n200\t4\t1\n100\t1\t2\n300\t9\t3\n")
    write(root / "data/google/collections/chinese_collection.tsv", "1\t段落一\n2\t段落二\n3\t段落\t带制表符\n4\t段落四\n")
    write(root / "data/google/queries/train/chinese_queries.train.tsv", "100\t问题一\n200\t问题二\n300\t问题三\n999\t无关\n")
    return root


def test_mmarco_triples_become_one_training_record_per_query(tmp_path):
    source = mmarco_snapshot(tmp_path / "source")

    converted = mmarco_to_training_jsonl(source, tmp_path / "out", language="chinese")

    assert converted.outputs == [tmp_path / "out" / "train.jsonl"]
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == [
        {"query": "问题一", "pos": ["段落一"], "neg": ["段落二", "段落\t带制表符"]},
        {"query": "问题二", "pos": ["段落四"], "neg": ["段落一"]},
        # passage 9 is not in the collection: a query left with no positive text is skipped
    ]
    assert converted.counts == {"queries": 2, "queries_without_text": 0, "passages_without_text": 1}


def test_mmarco_missing_file_names_the_path(tmp_path):
    source = mmarco_snapshot(tmp_path / "source")
    (source / "data" / "triples.train.ids.small.tsv").unlink()

    with pytest.raises(UserError, match="triples.train.ids.small.tsv: expected file is missing"):
        mmarco_to_training_jsonl(source, tmp_path / "out")


# --- T2Ranking -------------------------------------------------------------------------------


def t2ranking_snapshot(root: Path) -> Path:
    data = root / "data"
    write(data / "collection.tsv", "pid\ttext\n0\t第一段\n1\t第二段\n2\t第三段\n3\t第四段\n")
    write(data / "queries.dev.tsv", "qid\ttext\n10\t问题甲\n11\t问题乙\n12\t问题丙\n")
    # qid 12 is judged, but nothing is relevant (all 0): it has nothing to retrieve
    write(data / "qrels.dev.tsv", "qid\t-\tpid\trel\n10\t0\t0\t3\n10\t0\t1\t0\n11\t0\t2\t1\n11\t0\t3\t2\n12\t0\t0\t0\n")
    return root


def test_t2ranking_becomes_a_beir_dir_with_graded_qrels_and_the_full_collection(tmp_path):
    source = t2ranking_snapshot(tmp_path / "source")
    out = tmp_path / "out"

    converted = t2ranking_to_beir(source, out, split="dev")

    assert read_jsonl(out / "corpus.jsonl") == [
        {"_id": "0", "title": "", "text": "第一段"},
        {"_id": "1", "title": "", "text": "第二段"},
        {"_id": "2", "title": "", "text": "第三段"},
        {"_id": "3", "title": "", "text": "第四段"},
    ]
    assert read_jsonl(out / "queries.jsonl") == [{"_id": "10", "text": "问题甲"}, {"_id": "11", "text": "问题乙"}]
    assert (out / "qrels" / "dev.tsv").read_text().splitlines()[0] == "query-id\tcorpus-id\tscore"
    assert [(r["query-id"], r["corpus-id"], r["score"]) for r in read_qrels(out / "qrels" / "dev.tsv")] == [
        ("10", "0", "3"),
        ("10", "1", "0"),
        ("11", "2", "1"),
        ("11", "3", "2"),
    ]
    assert converted.counts == {"queries": 2, "qrels": 4, "passages": 4, "queries_dropped_no_relevant": 1}


def test_t2ranking_bad_grade_is_reported_with_its_line(tmp_path):
    source = t2ranking_snapshot(tmp_path / "source")
    write(source / "data" / "qrels.dev.tsv", "qid\t-\tpid\trel\n10\t0\t0\thigh\n")

    with pytest.raises(UserError, match=r"qrels.dev.tsv:2: expected an integer, got 'high'"):
        t2ranking_to_beir(source, tmp_path / "out")


# --- MTEB ------------------------------------------------------------------------------------


def write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


CORPUS = [{"_id": "d1", "title": "T1", "text": "one"}, {"_id": "d2", "title": "", "text": "two"}]
QUERIES = [{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "second?"}]
QRELS = [{"query-id": "q1", "corpus-id": "d1", "score": 1}, {"query-id": "q2", "corpus-id": "d2", "score": 2}]


def expect_beir(out: Path) -> None:
    assert read_jsonl(out / "corpus.jsonl") == CORPUS
    assert read_jsonl(out / "queries.jsonl") == QUERIES
    assert [(r["query-id"], r["corpus-id"], r["score"]) for r in read_qrels(out / "qrels" / "test.tsv")] == [
        ("q1", "d1", "1"),
        ("q2", "d2", "2"),
    ]


def test_mteb_parquet_configs_become_a_beir_dir(tmp_path):
    source = tmp_path / "source"
    # the parquet layout names ids "id" rather than "_id"
    write_parquet(source / "corpus" / "test-00000-of-00001.parquet", [{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in CORPUS])
    write_parquet(source / "queries" / "test-00000-of-00001.parquet", [{"id": q["_id"], "text": q["text"]} for q in QUERIES])
    write_parquet(source / "default" / "test-00000-of-00001.parquet", QRELS)
    write_parquet(source / "default" / "train-00000-of-00001.parquet", [{"query-id": "q9", "corpus-id": "d9", "score": 1}])
    write(source / ".cache" / "huggingface" / "download" / "x.jsonl", "not data\n")  # hub bookkeeping: ignored

    converted = mteb_to_beir(source, tmp_path / "out", split="test")

    expect_beir(tmp_path / "out")
    assert converted.counts == {"passages": 2, "queries": 2, "qrels": 2}


def test_mteb_jsonl_layout_with_tsv_qrels_becomes_a_beir_dir(tmp_path):
    source = tmp_path / "source"
    write(source / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in CORPUS))
    write(source / "queries.jsonl", "".join(json.dumps(q) + "\n" for q in QUERIES))
    write(source / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n")
    write(source / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\nq9\td9\t1\n")

    mteb_to_beir(source, tmp_path / "out", split="test")

    expect_beir(tmp_path / "out")


def test_mteb_jsonl_qrels_are_read_too(tmp_path):
    source = tmp_path / "source"
    write(source / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in CORPUS))
    write(source / "queries.jsonl", "".join(json.dumps(q) + "\n" for q in QUERIES))
    write(source / "qrels" / "test.jsonl", "".join(json.dumps(r) + "\n" for r in QRELS))

    mteb_to_beir(source, tmp_path / "out", split="test")

    expect_beir(tmp_path / "out")


def test_mteb_without_the_split_says_which_part_is_missing(tmp_path):
    source = tmp_path / "source"
    write(source / "corpus.jsonl", json.dumps(CORPUS[0]) + "\n")
    write(source / "queries.jsonl", json.dumps(QUERIES[0]) + "\n")
    write(source / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")

    with pytest.raises(UserError, match="no 'dev' qrels file found"):
        mteb_to_beir(source, tmp_path / "out", split="dev")
