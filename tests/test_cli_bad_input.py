"""Every kind of malformed input, through the real CLI: exit code 2, `path:LINE:` on stderr, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOOD = json.dumps({"query": "q", "pos": ["p"], "neg": ["n"]})


def _train(name: str, lines: list[bytes | str]):
    """A training JSONL file made of raw lines."""

    def build(root):
        path = root / name
        path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
        return ["data", "check", path], path

    return build


def _beir(corpus_ids=("d1", "d2"), query_ids=("q1", "q2"), qrels=(("q1", "d1", "1"),)):
    def build(root):
        (root / "qrels").mkdir()
        (root / "corpus.jsonl").write_text(
            "".join(json.dumps({"_id": i, "text": f"doc {i}"}) + "\n" for i in corpus_ids)
        )
        (root / "queries.jsonl").write_text(
            "".join(json.dumps({"_id": i, "text": f"query {i}"}) + "\n" for i in query_ids)
        )
        (root / "qrels" / "test.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in qrels)
        )
        return ["data", "check", root], root

    return build


def _at(build, relative: str):
    """Report the error in ``relative`` (a file inside the dataset directory) rather than the argument itself."""

    def wrapped(root):
        args, base = build(root)
        return args, base / relative

    return wrapped


def _recipe(text: str):
    def build(root):
        path = root / "recipe.yaml"
        path.write_text(text)
        return ["recipe", "validate", path], path

    return build


CASES = {
    "invalid-json-line": (_train("t.jsonl", [GOOD, GOOD, '{"query": "q", "pos": ["p"']), 3, "invalid JSON"),
    "missing-field": (_train("t.jsonl", [GOOD, json.dumps({"query": "q", "neg": []})]), 2, "missing field 'pos'"),
    "pos-as-string": (
        _train("t.jsonl", [json.dumps({"query": "q", "pos": "p", "neg": []})]),
        1,
        "pos must be a list of strings, got a string",
    ),
    "empty-pos": (
        _train("t.jsonl", [GOOD, GOOD, GOOD, json.dumps({"query": "q", "pos": [], "neg": []})]),
        4,
        "pos is empty",
    ),
    "non-utf8-bytes": (
        _train("t.jsonl", [GOOD, b'{"query": "\xff\xfe", "pos": ["p"], "neg": []}']),
        2,
        "not valid UTF-8",
    ),
    "empty-file": (_train("t.jsonl", []), 1, "file is empty"),
    "unknown-qrels-query-id": (
        _at(_beir(qrels=[("q1", "d1", "1"), ("q1", "d2", "0"), ("q7", "d1", "1")]), "qrels/test.tsv"),
        4,
        "query id 'q7' is not in queries.jsonl",
    ),
    "unknown-qrels-document-id": (
        _at(_beir(qrels=[("q2", "d9", "1")]), "qrels/test.tsv"),
        2,
        "document id 'd9' is not in corpus.jsonl",
    ),
    "bad-qrels-score": (_at(_beir(qrels=[("q1", "d1", "high")]), "qrels/test.tsv"), 2, "score must be an integer"),
    "duplicate-document-ids": (
        _at(_beir(corpus_ids=("d1", "d2", "d3", "d2")), "corpus.jsonl"),
        4,
        "duplicate document id 'd2': on lines 2 and 4",
    ),
    "duplicate-query-ids": (
        _at(_beir(query_ids=("q1", "q1")), "queries.jsonl"),
        2,
        "duplicate query id 'q1': on lines 1 and 2",
    ),
    "unknown-recipe-key": (
        _recipe("learning_rate: 3e-5\nlora:\n  r: 8\n  alpah: 16\n"),
        4,
        "unknown key 'lora.alpah' (did you mean 'lora.alpha'?)",
    ),
    "duplicate-recipe-key": (
        _recipe("learning_rate: 3e-5\nseed: 1\nlearning_rate: 1e-5\n"),
        3,
        "duplicate key 'learning_rate' (first on line 1)",
    ),
    "recipe-value": (_recipe("seed: 1\nlora:\n  r: 8\n  dropout: 1.5\n"), 4, "lora.dropout: must be less than 1"),
    "recipe-cross-field": (_recipe("fp16: true\nseed: 1\nbf16: true\n"), 3, "bf16: fp16 and bf16 are exclusive"),
}


@pytest.mark.parametrize(("build", "line", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_exits_2_with_path_and_line(tmp_path, monkeypatch, run_cli, build, line, message):
    # Relative paths, as users type them, keep the expected output independent of where tmp_path is.
    monkeypatch.chdir(tmp_path)
    args, bad_file = build(Path("."))
    result = run_cli(*args)
    assert result.exit_code == 2
    assert f"{bad_file}:{line}: {message}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_damaged_model_dir_is_a_path_error_on_one_line(run_cli, tmp_path):
    import json as json_module

    from embedkit.modeling.tiny import build_tiny_bert

    demo = Path(__file__).resolve().parents[1] / "demo" / "scifact-mini"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{\n  "hidden_size": 32,\n  oops\n}\n')
    result = run_cli("eval", broken, "--data", demo, "--engine", "paddle")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {broken / 'config.json'}:3: invalid JSON: Expecting property name enclosed in double quotes"

    resized = build_tiny_bert(tmp_path / "resized", ["cells divide", "tides follow the moon"])
    config = json_module.loads((resized / "config.json").read_text())
    (resized / "config.json").write_text(json_module.dumps({**config, "intermediate_size": 64}))
    result = run_cli("eval", resized, "--data", demo, "--engine", "paddle")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "the weights do not fit config.json: encoder.layers.0.linear1.weight has shape [32, 128] in the weights, " \
           "[32, 64] by the config (and 5 more tensors)" in result.stderr.replace("\n", "")


def test_a_bom_before_a_blank_first_line_is_accepted(run_cli, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf\n" + GOOD.encode() + b"\n")
    result = run_cli("data", "check", path)
    assert result.exit_code == 0, result.stderr


def test_weights_that_leave_model_tensors_random_are_refused(run_cli, tmp_path):
    import json as json_module

    from safetensors.numpy import load_file, save_file

    from embedkit.modeling.tiny import build_tiny_bert

    demo = Path(__file__).resolve().parents[1] / "demo" / "scifact-mini"
    model = build_tiny_bert(tmp_path / "model", ["cells divide", "tides follow the moon"])
    weights = load_file(model / "model.safetensors")
    dropped = sorted(k for k in weights if "encoder.layers.1." in k)
    save_file({k: v for k, v in weights.items() if k not in dropped}, model / "model.safetensors",
              metadata={"format": "np"})
    json_module.loads((model / "config.json").read_text())
    result = run_cli("eval", model, "--data", demo, "--engine", "paddle")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "the weights lack tensors this config.json needs, so the model would be partly random" in \
        result.stderr.replace("\n", "")
