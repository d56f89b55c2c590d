"""Training JSONL reader: typed records, directories, subsampling, and one clear message per malformed line."""

from __future__ import annotations

import json

import pytest
from fixture_files import write_jsonl

from embedkit.data import TrainExample, iter_train_jsonl, load_train_examples
from embedkit.data.issues import IssueLog
from embedkit.errors import UserError


def test_reads_typed_examples_with_optional_fields(tmp_path):
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {
                "query": "q1",
                "pos": ["p1"],
                "neg": ["n1", "n2"],
                "pos_scores": [1],
                "neg_scores": [0.5, 0.25],
                "prompt": "Represent this:",
                "type": "retrieval",
            },
            {"query": "q2", "pos": ["p2", "p3"], "neg": []},
        ],
    )
    examples = list(iter_train_jsonl(path))
    assert examples == [
        TrainExample("q1", ["p1"], ["n1", "n2"], [1.0], [0.5, 0.25], "Represent this:", str(path), 1),
        TrainExample("q2", ["p2", "p3"], [], None, None, None, str(path), 2),
    ]
    assert isinstance(examples[0].pos_scores[0], float)


def test_blank_lines_crlf_and_byte_order_mark_are_tolerated(tmp_path):
    path = tmp_path / "train.jsonl"
    line = json.dumps({"query": "q", "pos": ["p"], "neg": []})
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\r\n\r\n   \n" + line.encode())
    assert [e.line for e in iter_train_jsonl(path)] == [1, 4]


def test_directory_reads_every_jsonl_file_in_name_order(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [{"query": "b", "pos": ["p"], "neg": []}])
    write_jsonl(tmp_path / "a.jsonl", [{"query": "a", "pos": ["p"], "neg": []}])
    (tmp_path / "notes.txt").write_text("not data")
    assert [e.query for e in iter_train_jsonl(tmp_path)] == ["a", "b"]


def test_max_example_num_per_dataset_draws_a_seeded_subset_of_each_file(tmp_path):
    write_jsonl(tmp_path / "big.jsonl", [{"query": f"big{i}", "pos": ["p"], "neg": []} for i in range(20)])
    write_jsonl(tmp_path / "small.jsonl", [{"query": f"small{i}", "pos": ["p"], "neg": []} for i in range(3)])

    def draw(seed):
        return [e.query for e in iter_train_jsonl(tmp_path, max_example_num_per_dataset=5, seed=seed)]

    first = draw(seed=1)
    assert len([q for q in first if q.startswith("big")]) == 5
    assert [q for q in first if q.startswith("small")] == ["small0", "small1", "small2"]
    assert draw(seed=1) == first
    assert draw(seed=2) != first
    big = [q for q in first if q.startswith("big")]
    assert big == sorted(big, key=lambda q: int(q[3:]))  # file order is kept


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"pos": ["p"], "neg": []}, "missing field 'query'"),
        ({"query": "q", "pos": ["p"]}, "missing field 'neg' (use [] to let the trainer draw negatives)"),
        ({"query": 3, "pos": ["p"], "neg": []}, "query must be a string, got a number"),
        ({"query": "q", "pos": "p", "neg": []}, "pos must be a list of strings, got a string"),
        ({"query": "q", "pos": [], "neg": []}, "pos is empty: each query needs at least one positive passage"),
        ({"query": "q", "pos": ["p", None], "neg": []}, "pos[1] must be a string, got null"),
        ({"query": "q", "pos": ["p"], "neg": {"n": 1}}, "neg must be a list of strings, got an object"),
        (
            {"query": "q", "pos": ["p"], "neg": [], "pos_scores": [1, 2]},
            "pos_scores has 2 scores but pos has 1 passages",
        ),
        (
            {"query": "q", "pos": ["p"], "neg": ["n"], "neg_scores": ["high"]},
            "neg_scores[0] must be a number, got a string",
        ),
        (
            {"query": "q", "pos": ["p"], "neg": [], "pos_scores": [True]},
            "pos_scores[0] must be a number, got a boolean",
        ),
        ({"query": "q", "pos": ["p"], "neg": [], "prompt": ["x"]}, "prompt must be a string, got a list"),
    ],
)
def test_malformed_record_raises_with_file_and_line(tmp_path, record, message):
    path = write_jsonl(tmp_path / "train.jsonl", [{"query": "ok", "pos": ["p"], "neg": []}, record])
    with pytest.raises(UserError) as exc:
        list(iter_train_jsonl(path))
    assert (exc.value.path, exc.value.line, exc.value.message) == (str(path), 2, message)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b'{"query": "q", "pos": ["p"], "neg": []}\n{"query": "q",\n', 2, "invalid JSON: Expecting property name"),
        (b'["q", ["p"]]\n', 1, "expected a JSON object, got a list"),
        (b'{"query": "caf\xe9", "pos": ["p"], "neg": []}\n', 1, "not valid UTF-8: byte 0xe9 at byte 15 of the line"),
        (b"", 1, "file is empty: expected one JSON object per line"),
        (b"\n  \n", 1, "file is empty"),
    ],
)
def test_unreadable_lines_raise_with_line(tmp_path, content, line, message):
    path = tmp_path / "train.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError) as exc:
        list(iter_train_jsonl(path))
    assert (exc.value.path, exc.value.line) == (str(path), line)
    assert exc.value.message.startswith(message)


def test_collecting_mode_skips_bad_lines_and_reports_each(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(
        b'{"query": "a", "pos": ["p"], "neg": []}\nnot json\n{"query": "b", "pos": "p", "neg": []}\n\xff\n'
    )
    issues = IssueLog(strict=False)
    assert [e.query for e in iter_train_jsonl(path, issues=issues)] == ["a"]
    assert [(i.line, i.message.split(":")[0]) for i in issues.errors] == [
        (2, "invalid JSON"),
        (3, "pos must be a list of strings, got a string"),
        (4, "not valid UTF-8"),
    ]


def test_missing_path_and_directory_without_jsonl(tmp_path):
    with pytest.raises(UserError, match="no such file or directory"):
        list(iter_train_jsonl(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match=r"no \*\.jsonl files"):
        list(iter_train_jsonl(tmp_path))


def test_load_train_examples_reads_jsonl_and_subsamples(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", [{"query": f"q{i}", "pos": ["p"], "neg": ["n"]} for i in range(10)])
    assert len(load_train_examples(tmp_path)) == 10
    assert len(load_train_examples(tmp_path / "t.jsonl", max_example_num_per_dataset=4)) == 4
