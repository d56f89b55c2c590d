"""Encode a file of texts into a ``.npy`` array: the service behind `embedkit encode`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedkit.data.texts import read_texts
from embedkit.errors import UserError
from embedkit.fsutil import atomic_path
from embedkit.inference.encoder import Encoder


@dataclass(frozen=True)
class EncodedFile:
    output: Path
    shape: tuple[int, int]
    seconds: float  # encoding alone: loading the model (and a first-use export) is not counted
    engine: str
    precision: str

    @property
    def texts_per_s(self) -> float:
        return self.shape[0] / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "seconds": self.seconds,
                "texts_per_s": round(self.texts_per_s, 1), "engine": self.engine, "precision": self.precision, "output": str(self.output)}


def encode_file(model_dir: str | Path, texts_file: str | Path, side: str, output: str | Path,
                **encoder_options: Any) -> EncodedFile:
    """Embed every text of ``texts_file`` (see `embedkit.data.texts`) as ``side`` and save them, float32 rows in
    input order, to ``output``.

    ``encoder_options`` go to `Encoder.from_model_dir` (engine, precision, batch_size, device, threads, overrides).
    The output and the whole input are checked before the model is loaded; the array appears only complete.
    """
    output = Path(output)
    if output.is_dir():
        raise UserError("is a directory: give the .npy file to write", output)
    texts = read_texts(texts_file)
    encoder = Encoder.from_model_dir(model_dir, **encoder_options)
    start = time.perf_counter()
    vectors = encoder.encode(texts, side).astype(np.float32, copy=False)
    seconds = time.perf_counter() - start
    with atomic_path(output) as staged, staged.open("wb") as handle:
        np.save(handle, vectors)  # through a handle: np.save would add ".npy" to a path without it
    return EncodedFile(output, vectors.shape, seconds, encoder.engine, encoder.precision)
