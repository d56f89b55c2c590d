"""Libraries' log lines (PaddleNLP, datasets, Paddle) go through embedkit's console: plain text when stderr is not
a terminal, nothing at -q. Run as a real process with stderr a pipe, since PaddleNLP's handler binds the stream it
found at import time (an in-process capture would not see what it prints)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Logs from PaddleNLP (before and after embedkit loads the model, which is when it takes over the handlers Paddle,
# PaddleNLP and datasets install on import) and from datasets and Paddle loggers, during a real `encode`.
PROBE = """
import logging, sys
from embedkit.cli.entrypoint import _quiet_paddle, main
_quiet_paddle()  # what main() does first, before the next import brings Paddle in
import embedkit.inference.encode_file as encode_file_module

real = encode_file_module.encode_file

def encode_file(*args, **kwargs):
    from paddlenlp.utils.log import logger
    logger.warning("probe: PaddleNLP before the model loads")
    result = real(*args, **kwargs)
    logger.warning("probe: PaddleNLP after")
    logging.getLogger("datasets.probe").warning("probe: datasets")
    logging.getLogger("paddle.framework.io_utils").warning("probe: paddle")
    logging.getLogger("datasets.probe").info("probe: datasets info")
    return result

encode_file_module.encode_file = encode_file
sys.argv = ["embedkit", *sys.argv[1:]]
main()
"""
PROBE_LINES = ["PaddleNLP: probe: PaddleNLP before the model loads", "PaddleNLP: probe: PaddleNLP after",
               "datasets.probe: probe: datasets", "paddle.framework.io_utils: probe: paddle"]


def _encode(model: Path, tmp_path: Path, *flags: str, probe: bool = False,
            engine: str = "paddle") -> subprocess.CompletedProcess:
    texts = tmp_path / "texts.txt"
    texts.write_text("cells divide\nproteins fold\n", encoding="utf-8")
    args = ["encode", str(model), "--input", str(texts), "--side", "query", "--output", str(tmp_path / "v.npy"),
            "--engine", engine, *flags]
    command = [sys.executable, "-c", PROBE, *args] if probe else [sys.executable, "-m", "embedkit.cli", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def hf_bert_with_position_ids(tiny_hf_bert, tmp_path) -> Path:
    """The tiny Hugging Face BERT with an ``embeddings.position_ids`` tensor in its weights, as older checkpoints
    (all-MiniLM-L6-v2) have: PaddleNLP warns that it was not used."""
    from safetensors.numpy import load_file, save_file

    model = Path(shutil.copytree(tiny_hf_bert, tmp_path / "hf-bert"))
    weights = load_file(model / "model.safetensors")
    weights["embeddings.position_ids"] = np.arange(512, dtype=np.int64)[None]
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    return model


def test_library_warnings_are_plain_console_lines_and_info_stays_out(tiny_hf_bert, tmp_path):
    done = _encode(tiny_hf_bert, tmp_path, probe=True)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stderr
    lines = done.stderr.splitlines()
    for line in PROBE_LINES:
        assert lines.count(line) == 1, (line, done.stderr)  # once: a logger and the root would print it twice
    assert "datasets info" not in done.stderr  # INFO from libraries: -vv only
    assert "2 texts ->" in done.stderr


def test_quiet_prints_no_library_lines(tiny_hf_bert, tmp_path):
    done = _encode(tiny_hf_bert, tmp_path, "-q", probe=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (tmp_path / "v.npy").is_file()


def test_unused_position_ids_are_explained_at_v_and_silent_otherwise(hf_bert_with_position_ids, tmp_path):
    plain = _encode(hf_bert_with_position_ids, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "\x1b[" not in plain.stderr
    assert "were not used" not in plain.stderr and "embeddings.position_ids" not in plain.stderr
    verbose = _encode(hf_bert_with_position_ids, tmp_path, "-v")
    assert verbose.returncode == 0, verbose.stderr
    explained = " ".join(verbose.stderr.split())
    assert "checkpoint tensors the model does not use, not loaded: embeddings.position_ids (a buffer" in explained
    assert "\x1b[" not in verbose.stderr
    quiet = _encode(hf_bert_with_position_ids, tmp_path, "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_openvino_is_imported_without_its_telemetry():
    """`import openvino` starts ovc's telemetry, sent from a forked process (whose fork made tokenizers warn on
    stderr at -q); embedkit's import of it forks nothing and leaves ovc on its no-op stub."""
    probe = ("import os, sys\nforks = []\nos.register_at_fork(before=lambda: forks.append(1))\n"
             "from embedkit.inference import openvino\nopenvino.toolchain()\n"
             "import openvino.tools.ovc.telemetry_utils as telemetry\n"
             "print(len(forks), telemetry.tm.__name__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "openvino.tools.ovc.telemetry_stub"]


def test_quiet_encode_on_openvino_prints_nothing(tiny_hf_bert, tmp_path):
    model = Path(shutil.copytree(tiny_hf_bert, tmp_path / "model"))  # exports and checks beside it on first use
    done = _encode(model, tmp_path, "-q", engine="openvino")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
