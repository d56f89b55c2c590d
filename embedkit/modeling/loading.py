"""Load backbones and tokenizers from local model directories.

Hugging Face (torch-layout) safetensors are converted by PaddleNLP (``convert_from_torch=True``). PaddleNLP
writes the converted weights next to the source, so conversion runs in a staging copy (symlinks) under
the embedkit cache: the user's model directory — possibly read-only, possibly site-packages — stays as it was.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Literal

from embedkit import paths
from embedkit.config.validation import read_json
from embedkit.errors import UserError
from embedkit.filenames import (
    ADAPTER_FILES,
    MODEL_CONFIG_FILE,
    PEFT_CONFIG_FILE,
    TOKENIZER_FILES,
    WEIGHT_FILES,
    WEIGHT_SHARD_PATTERNS,
)
from embedkit.fsutil import update_digest
from embedkit.modeling.hf_peft import is_peft_dir, merge_peft_lora, peft_base_dir, read_peft_lora
from embedkit.modeling.hf_weights import read_weights
from embedkit.modeling.lora import adapter_config, is_adapter_dir, merged_backbone
from embedkit.modeling.model_config import read_model_config

WeightsFormat = Literal["paddle", "torch"]
# Besides the weights, these decide what a model dir embeds a text as: the architecture and the tokenisation.
_DEFINING_FILES = (MODEL_CONFIG_FILE, *TOKENIZER_FILES)


def weight_files(model_dir: Path) -> list[Path]:
    found = [model_dir / name for name in WEIGHT_FILES if (model_dir / name).is_file()]
    for pattern in WEIGHT_SHARD_PATTERNS:
        found += sorted(model_dir.glob(pattern))
    return found


def weights_format(model_dir: str | Path) -> WeightsFormat:
    """Which layout the weights in ``model_dir`` use; a UserError when there are none."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError("model directory not found", model_dir)
    read_model_config(model_dir)  # an invalid config.json is the user's to fix, named with its line
    files = weight_files(model_dir)
    if not files:
        raise UserError(
            "no weights found (expected model.safetensors, model_state.pdparams or pytorch_model.bin)", model_dir
        )
    if any(f.suffix == ".pdparams" for f in files):
        return "paddle"
    if any(f.name == "pytorch_model.bin" for f in files):
        return "torch"
    from safetensors import safe_open

    shards = [f for f in files if f.suffix == ".safetensors"]
    if shards:
        first = shards[0]
    else:  # an index file alone: its shards carry the format
        index = json.loads((model_dir / "model.safetensors.index.json").read_text(encoding="utf-8"))
        first = model_dir / sorted(set(index["weight_map"].values()))[0]
    try:
        with safe_open(str(first), "np") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"unreadable safetensors file: {exc}", first) from None
    return "torch" if metadata.get("format") == "pt" else "paddle"


def _staging_dir(model_dir: Path) -> Path:
    """A cache dir mirroring ``model_dir`` through symlinks, keyed by path, sizes and mtimes."""
    stat_key = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in sorted(model_dir.iterdir()) if f.is_file()]
    digest = hashlib.sha256(json.dumps([str(model_dir.resolve()), stat_key]).encode()).hexdigest()[:16]
    stage = paths.cache_dir("converted", f"{model_dir.name}-{digest}")
    for entry in model_dir.iterdir():
        link = stage / entry.name
        if not link.exists() and not link.is_symlink():
            os.symlink(entry.resolve(), link)
    return stage


def quiet_paddlenlp() -> None:
    """PaddleNLP logs every file it opens at INFO; embedkit reports what matters itself. Its import (with Paddle's
    and datasets') installs log handlers of their own: from here on their records go through embedkit's console."""
    from paddlenlp.utils.log import logger

    from embedkit import console

    logger.set_level("INFO" if console.get().verbosity >= console.LIBRARY_INFO_VERBOSITY else "WARNING")
    console.route_library_logs()


def load_backbone(model_dir: str | Path, dtype: str = "float32", base_dir: str | Path | None = None):
    """A PaddleNLP ``AutoModel`` for the encoder in ``model_dir`` (weights converted from torch if needed).

    A LoRA adapter directory (``lora_config.json``) loads its base model and merges the adapter in; so does a
    Hugging Face PEFT adapter directory (``adapter_config.json``), on ``base_dir`` when given (see hf_peft). A
    family embedkit implements itself (the registry entry's ``implementation``) loads through that module.
    """
    from paddlenlp.transformers import AutoModel

    quiet_paddlenlp()
    model_dir = Path(model_dir)
    if is_adapter_dir(model_dir):  # a LoRA run's output or checkpoint: base + adapter, merged
        return load_adapter_backbone(model_dir, dtype=dtype)
    if is_peft_dir(model_dir):
        lora = read_peft_lora(model_dir, base_dir)
        return merge_peft_lora(load_backbone(lora.base, dtype=dtype), lora)
    implementation = _implementation(model_dir)
    if implementation is not None:
        torch_layout = weights_format(model_dir) == "torch"
        return implementation.from_state(model_dir, read_weights(weight_files(model_dir)), dtype, torch_layout)
    try:
        with _newly_initialized_weights(model_dir) as missing:
            if weights_format(model_dir) == "torch":
                backbone = AutoModel.from_pretrained(str(_staging_dir(model_dir)), convert_from_torch=True, dtype=dtype)
            else:
                backbone = AutoModel.from_pretrained(str(model_dir), dtype=dtype)
    except AttributeError as exc:
        if "Unable to parse" not in str(exc):
            raise
        raise _unknown_architecture(model_dir) from None
    except RuntimeError as exc:
        mismatches = _SHAPE_MISMATCH.findall(str(exc))
        if not mismatches:
            raise
        name, found, expected = mismatches[0]
        others = f" (and {len(mismatches) - 1} more tensors)" if len(mismatches) > 1 else ""
        raise UserError(f"the weights do not fit {MODEL_CONFIG_FILE}: {name} has shape {found} in the weights, "
                        f"{expected} by the config{others}", model_dir) from None
    if missing:
        others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"the weights lack tensors this {MODEL_CONFIG_FILE} needs, so the model would be partly "
                        f"random: {missing[0]}{others}", model_dir)
    return backbone


@contextlib.contextmanager
def _newly_initialized_weights(model_dir: Path):
    """The model tensors PaddleNLP found no weights for and initialised at random (it only logs them).

    The pooler and the position-id buffer are left out: embedkit pools token states itself, and the buffer is
    rebuilt, not learnt. PaddleNLP's other loading warnings say nothing a user should act on (what matters is
    raised from here): the checkpoint tensors the model does not use, such as a pretraining head or a Hugging
    Face BERT's ``embeddings.position_ids`` buffer, are named in a debug line (-v) instead.
    """
    found: list[str] = []
    unused: list[str] = []

    def collect(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        match = _NEWLY_INITIALIZED.search(message)
        if match:
            found.extend(k for k in ast.literal_eval(match.group(1)) if not _UNUSED_BY_EMBEDDERS.search(k))
        match = _NOT_USED.search(message)
        if match:
            unused.extend(ast.literal_eval(match.group(1)))
        return False  # nothing PaddleNLP logs while loading reaches the console

    paddlenlp_logger = logging.getLogger("PaddleNLP")
    level = paddlenlp_logger.level
    # Below INFO PaddleNLP names the unused tensors (at WARNING it only says some were not used); the filter goes
    # first, before the console's (logger filters run in order and stop at the first that drops a record).
    paddlenlp_logger.setLevel(logging.DEBUG)
    paddlenlp_logger.filters.insert(0, collect)
    try:
        yield found
    finally:
        paddlenlp_logger.removeFilter(collect)
        paddlenlp_logger.setLevel(level)
    if unused:
        from embedkit import console

        named = ", ".join(f"{key} ({_why_unused(key)})" if _why_unused(key) else key for key in sorted(unused))
        console.get().debug(f"{model_dir}: checkpoint tensors the model does not use, not loaded: {named}")


def _why_unused(key: str) -> str:
    if key.endswith("position_ids"):
        return "a buffer of position numbers the model builds itself: harmless"
    if _UNUSED_BY_EMBEDDERS.search(key):
        return "embedkit pools token states itself"
    return ""


_NEWLY_INITIALIZED = re.compile(r"and are newly initialized: (\[.*?\])", re.S)
_NOT_USED = re.compile(r"were not used when initializing \S+: (\[.*?\])", re.S)
_UNUSED_BY_EMBEDDERS = re.compile(r"(^|\.)(pooler\.|position_ids$)")


# How PaddleNLP's from_pretrained reports a tensor whose shape differs from what the config builds.
_SHAPE_MISMATCH = re.compile(r"Skip loading for (\S+)\. \S+ receives a shape (\[[^\]]*\]), "
                             r"but the expected shape is (\[[^\]]*\])")


def _implementation(model_dir: Path):
    """The module implementing the model's family when PaddleNLP has none, else None (AutoModel loads it)."""
    import importlib

    from embedkit.modeling.architectures import read_architecture

    try:
        architecture = read_architecture(model_dir)
    except UserError:  # no entry: AutoModel may still know the class, or says it does not
        return None
    return importlib.import_module(architecture.implementation) if architecture.implementation else None


def load_adapter_backbone(adapter_dir: str | Path, dtype: str = "float32"):
    """Base model (named in ``lora_config.json``) + adapter, merged into a plain backbone."""
    from paddlenlp.peft import LoRAModel

    config, base = adapter_config(adapter_dir)
    lora_model = LoRAModel.from_pretrained(load_backbone(base, dtype=dtype), str(adapter_dir), lora_config=config)
    return merged_backbone(lora_model)


def _unknown_architecture(model_dir: Path) -> UserError:
    import paddlenlp

    config = json.loads((model_dir / MODEL_CONFIG_FILE).read_text(encoding="utf-8"))
    from embedkit.modeling.architectures import ARCHITECTURES

    known = ", ".join(a.name for a in ARCHITECTURES)
    return UserError(f"PaddleNLP {paddlenlp.__version__} has no model class for model_type "
                     f"{config.get('model_type')!r} (architectures {config.get('architectures')}); embedkit runs "
                     f"{known}", model_dir / MODEL_CONFIG_FILE)


def load_tokenizer(model_dir: str | Path, padding_side: str = "right"):
    """The fast tokenizer in ``model_dir``; a PEFT adapter without one (RepLLaMA's) uses its base model's."""
    from paddlenlp.transformers import AutoTokenizer

    quiet_paddlenlp()
    model_dir = Path(model_dir)
    if is_peft_dir(model_dir) and not any((model_dir / name).is_file() for name in TOKENIZER_FILES):
        model_dir = peft_base_dir(model_dir, read_json(model_dir / PEFT_CONFIG_FILE)[0])
    if not model_dir.is_dir():
        raise UserError("tokenizer directory not found: expected a local model directory with tokenizer files",
                        model_dir)
    try:
        # The fast (Rust) tokenizer where one exists: PaddleNLP's Python BertTokenizer splits symbols such as
        # "±" differently from Hugging Face's (182 of 5,183 SciFact docs tokenise differently), and is ~5x slower.
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    except Exception as exc:  # noqa: BLE001  (a broken tokenizer dir fails in many ways, all the user's to fix)
        raise UserError(f"cannot load a tokenizer: {exc}", model_dir) from None
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        # Decoder-only tokenizers often lack a pad token; EOS as pad is what their embedders train with.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over the files that decide the embeddings: weights, config and tokenizer.

    Memoised per path, size and mtime, since large models take a while to hash.
    """
    model_dir = Path(model_dir)
    # A LoRA run's dir holds only the adapter and its config (which names the base): both define the weights.
    adapter = [model_dir / name for name in ADAPTER_FILES if (model_dir / name).is_file()]
    defining = [model_dir / name for name in _DEFINING_FILES if (model_dir / name).is_file()]
    files = weight_files(model_dir) + adapter + defining
    stat_key = json.dumps([(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files])
    memo_dir = paths.cache_dir("fingerprints")
    memo = memo_dir / (hashlib.sha256(stat_key.encode()).hexdigest()[:24] + ".txt")
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        update_digest(digest, f)
    memo.write_text(digest.hexdigest())
    return digest.hexdigest()
