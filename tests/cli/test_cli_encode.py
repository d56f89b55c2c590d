"""`embedkit encode`: a .txt or .jsonl file in, an .npy array out, equal to what `Encoder` gives for the same texts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_support import TEXTS

from embedkit.inference import Encoder


def write_txt(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(f"{t}\n" for t in texts), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def encode_json(run_cli, model: Path, texts_file: Path, output: Path, *args: str) -> dict:
    result = run_cli("encode", model, "--input", texts_file, "--output", output, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_txt_file_rows_equal_the_encoder_s_passages_in_input_order(run_cli, tiny_bert, tmp_path):
    output = tmp_path / "out" / "passages.npy"
    payload = encode_json(run_cli, tiny_bert, write_txt(tmp_path / "texts.txt", TEXTS), output, "--side", "passage")

    vectors = np.load(output)
    encoder = Encoder.from_model_dir(tiny_bert)  # the defaults, as the command's
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(vectors, encoder.encode_passages(TEXTS), atol=1e-6, rtol=0)
    assert payload["shape"] == [len(TEXTS), 32] and payload["engine"] == encoder.engine
    assert payload["output"] == str(output) and payload["seconds"] > 0 and payload["texts_per_s"] > 0
    assert [p.name for p in output.parent.iterdir()] == ["passages.npy"]  # no temporary file left beside it


def test_jsonl_file_as_queries_with_flags_for_a_plain_checkpoint(run_cli, tiny_bert, tmp_path):
    records = [{"text": t, "id": i} for i, t in enumerate(TEXTS)]
    output = tmp_path / "queries.npy"
    flags = ("--side", "query", "--engine", "paddle", "--query-instruction", "query: ", "--pooling", "cls", "--no-normalize",
             "--max-length", "16", "--batch-size", "3")
    encode_json(run_cli, tiny_bert, write_jsonl(tmp_path / "texts.jsonl", records), output, *flags)

    encoder = Encoder.from_model_dir(tiny_bert, engine="paddle", batch_size=3, overrides={
        "query_instruction": "query: ", "pooling": "cls", "normalized": False, "query_max_len": 16})
    np.testing.assert_allclose(np.load(output), encoder.encode_queries(TEXTS), atol=1e-6, rtol=0)
    # The flags changed something: the model's own settings (mean pooling, normalised) give other vectors.
    assert not np.allclose(np.load(output), Encoder.from_model_dir(tiny_bert, engine="paddle").encode_queries(TEXTS))


def test_human_output_names_the_shape_and_the_file(run_cli, tiny_bert, tmp_path):
    output = tmp_path / "v.npy"
    result = run_cli("encode", tiny_bert, "--input", write_txt(tmp_path / "t.txt", TEXTS[:3]), "--side", "passage",
                     "--output", output, "--engine", "paddle")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "[3, 32]" in result.stderr and str(output) in result.stderr


BAD_FILES = {
    "jsonl-missing-text": ("t.jsonl", ['{"text": "a"}', '{"text": "b"}', '{"body": "c"}'], 3, "missing field 'text'"),
    "jsonl-text-not-a-string": ("t.jsonl", ['{"text": "a"}', '{"text": 7}'], 2, "text must be a string, got a number"),
    "jsonl-empty-text": ("t.jsonl", ['{"text": "a"}', '{"text": "  "}'], 2, "text is empty"),
    "jsonl-invalid-json": ("t.jsonl", ['{"text": "a"}', '{"text": '], 2, "invalid JSON"),
    "txt-blank-line": ("t.txt", ["first", "", "third"], 2, "blank line"),
    "txt-empty-file": ("t.txt", [], 1, "file is empty"),
}


@pytest.mark.parametrize(("name", "lines", "line", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_input_is_file_line_and_exit_2_before_the_model_loads(run_cli, tmp_path, no_model_loads, name, lines,
                                                                  line, message):
    bad = tmp_path / name
    bad.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    output = tmp_path / "out.npy"
    result = run_cli("encode", tmp_path / "model", "--input", bad, "--side", "passage", "--output", output)
    assert result.exit_code == 2, result.stderr
    assert f"{bad}:{line}: {message}" in result.stderr and "Traceback" not in result.stderr
    assert not output.exists()


def test_blank_lines_after_the_last_text_shift_nothing_and_are_ignored(tmp_path):
    from embedkit.data.texts import read_texts

    path = tmp_path / "t.txt"
    path.write_text("one\ntwo\n\n\n", encoding="utf-8")
    assert read_texts(path) == ["one", "two"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: (root / "in.csv").write_text("a\n") and root / "in.csv", "expected a .txt file"),
    (lambda root: root / "missing.txt", "missing.txt: no such file or directory"),
])
def test_input_that_is_not_a_text_file_is_refused(run_cli, tmp_path, no_model_loads, make, message):
    result = run_cli("encode", tmp_path / "model", "--input", make(tmp_path), "--side", "query",
                     "--output", tmp_path / "o.npy")
    assert result.exit_code == 2 and message in result.stderr


def test_output_that_is_a_directory_is_refused_before_any_work(run_cli, tmp_path, no_model_loads):
    texts = write_txt(tmp_path / "t.txt", ["a"])
    result = run_cli("encode", tmp_path / "model", "--input", texts, "--side", "query", "--output", tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path}: is a directory" in result.stderr


def test_a_failed_encode_leaves_no_output(run_cli, tiny_bert, tmp_path):
    (tiny_bert / "model.safetensors").unlink()
    output = tmp_path / "out" / "v.npy"
    result = run_cli("encode", tiny_bert, "--input", write_txt(tmp_path / "t.txt", ["a"]), "--side", "passage",
                     "--output", output, "--engine", "paddle")
    assert result.exit_code == 2 and "no weights found" in result.stderr
    assert not output.parent.exists()
