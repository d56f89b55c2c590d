"""Matryoshka evaluation: embeddings cut to their first ``d`` dims (re-normalised) and the quality curve over ``d``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from embedkit.errors import UserError
from embedkit.fsutil import atomic_path

PLOT_FILE = "matryoshka.png"


def check_dims(dims: Sequence[int], model_dim: int) -> list[int]:
    """The requested dims, sorted and de-duplicated; a UserError for any the model cannot provide."""
    for dim in dims:
        if dim < 1:
            raise UserError(f"--dims: {dim} is not a positive dimension")
        if dim > model_dim:
            raise UserError(f"--dims: {dim} is larger than the model's embedding dimension {model_dim}")
    return sorted(set(dims))


def truncation(dim: int, normalized: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Keep the first ``dim`` values; L2-normalise again when the model's embeddings are normalised.

    Re-normalising makes the inner product a cosine again, as the Matryoshka loss (PaddleNLP, sentence-transformers)
    scores truncated embeddings during training.
    """

    def apply(block: np.ndarray) -> np.ndarray:
        cut = np.asarray(block[:, :dim], dtype=np.float32)
        if not normalized:
            return cut
        norms = np.linalg.norm(cut, axis=1, keepdims=True)
        return cut / np.maximum(norms, 1e-12)

    return apply


def plot_curve(path: str | Path, curves: dict[str, dict[int, float]], metric_label: str = "NDCG@10") -> Path:
    """A PNG with one line per dataset: ``metric_label`` against embedding dim (log2 x axis)."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font-cache notices at INFO
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, points in curves.items():
        dims = sorted(points)
        ax.plot(dims, [100 * points[d] for d in dims], marker="o", label=name)
    ax.set_xscale("log", base=2)
    all_dims = sorted({d for points in curves.values() for d in points})
    ax.set_xticks(all_dims, [str(d) for d in all_dims])
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel(f"{metric_label} (x100)")
    ax.set_title("Matryoshka: quality by truncated dimension")
    ax.grid(True, alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as staged:
        fig.savefig(staged, format="png")
    plt.close(fig)
    return path
