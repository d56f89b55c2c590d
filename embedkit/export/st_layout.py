"""The sentence-transformers directory layout for a one-encoder embedkit model.

    config.json, model.safetensors (torch layout), tokenizer files   the Transformer module (path "")
    modules.json                                                     Transformer -> Pooling [-> Normalize]
    1_Pooling/config.json, 2_Normalize/                              pooling mode; L2 normalisation
    sentence_bert_config.json                                        max_seq_length
    config_sentence_transformers.json                                the instructions as prompts
"""

from __future__ import annotations

import json
from pathlib import Path

from embedkit.choices import Pooling, Side
from embedkit.errors import UserError
from embedkit.filenames import (
    MODEL_CONFIG_FILE,
    SAFETENSORS_FILE,
    ST_CONFIG_FILE,
    ST_MODULES_FILE,
    ST_NORMALIZE_DIR,
    ST_POOLING_CONFIG,
    ST_PROMPTS_FILE,
)
from embedkit.fsutil import write_json
from embedkit.modeling.spec import EmbedderSpec
from embedkit.modeling.tokenizer_files import save_tokenizer

# embedkit pooling -> the 1_Pooling/config.json flag that does the same (ST pools over its attention mask,
# so the first/last real token under either padding side, as embedkit.modeling.pooling does).
POOLING_MODES = {Pooling.CLS: "pooling_mode_cls_token", Pooling.MEAN: "pooling_mode_mean_tokens",
                 Pooling.LAST: "pooling_mode_lasttoken"}
_ALL_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
              "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


def check_expressible(spec: EmbedderSpec) -> None:
    """Refuse what a sentence-transformers model cannot reproduce, before anything is loaded or written."""
    if spec.two_tower:
        raise UserError("a two-tower model (separate query and passage encoders) has no sentence-transformers "
                        "equivalent: a SentenceTransformer runs one encoder for both sides; export --format onnx "
                        "instead")
    if spec.pooling not in POOLING_MODES:
        raise UserError(f"pooling {spec.pooling!r} has no sentence-transformers Pooling mode (it has "
                        f"{', '.join(str(p) for p in POOLING_MODES)})")
    if spec.mask_instruction:
        raise UserError("mask_instruction (the instruction left out of the pooling, NV-Embed's way of counting it) "
                        "has no exact sentence-transformers equivalent; export --format onnx instead")


def max_seq_length(spec: EmbedderSpec) -> int:
    """One limit for both sides: sentence-transformers has no per-prompt max length."""
    return max(spec.query_max_len, spec.passage_max_len)


def write_modules(out: Path, spec: EmbedderSpec, hidden_size: int) -> None:
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": Path(ST_POOLING_CONFIG).parent.as_posix(),
                "type": "sentence_transformers.models.Pooling"}]
    if spec.normalized:
        modules.append({"idx": 2, "name": "2", "path": ST_NORMALIZE_DIR,
                        "type": "sentence_transformers.models.Normalize"})
        (out / ST_NORMALIZE_DIR).mkdir()
    write_json(out / ST_MODULES_FILE, modules)
    pooling = {"word_embedding_dimension": hidden_size, **{mode: False for mode in _ALL_MODES},
               POOLING_MODES[spec.pooling]: True, "include_prompt": True}
    write_json(out / ST_POOLING_CONFIG, pooling)
    write_json(out / ST_CONFIG_FILE, {"max_seq_length": max_seq_length(spec), "do_lower_case": False})
    write_json(out / ST_PROMPTS_FILE, {
        "prompts": {Side.QUERY.value: spec.query_instruction, Side.PASSAGE.value: spec.passage_instruction},
        # encode() without prompt_name embeds passages, as embedkit serve does by default.
        "default_prompt_name": Side.PASSAGE.value,
        "similarity_fn_name": "cosine" if spec.normalized else "dot",
    })


def write_weights(out: Path, torch_state: dict, config: dict) -> None:
    from safetensors.numpy import save_file

    # "pt": transformers reads a safetensors file as torch weights only when its metadata says so.
    weights = out / SAFETENSORS_FILE
    save_file(torch_state, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)  # safetensors creates it owner-only; a published model is readable by all
    write_json(out / MODEL_CONFIG_FILE, config)


def write_tokenizer(out: Path, tokenizer, spec: EmbedderSpec, appends_eos: bool) -> None:
    """The fast tokenizer's files, with the padding side and, when embedkit appends EOS, a post-processor that
    appends it too (within the max length, as embedkit does)."""
    save_tokenizer(out, tokenizer, padding_side=str(spec.padding_side), model_max_length=max_seq_length(spec))
    if appends_eos:
        _append_eos(out / "tokenizer.json", tokenizer.eos_token, tokenizer.eos_token_id)


def _append_eos(tokenizer_json: Path, eos: str, eos_id: int) -> None:
    if not tokenizer_json.is_file():
        raise UserError("this model appends EOS to every text, which needs a fast tokenizer (tokenizer.json) to "
                        "express in sentence-transformers", tokenizer_json.parent)
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    append = {
        "type": "TemplateProcessing",
        "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": eos, "type_id": 1}}],
        "special_tokens": {eos: {"id": eos, "ids": [eos_id], "tokens": [eos]}},
    }
    # After the tokenizer's own post-processing (a BOS token, byte-level offsets), not instead of it.
    existing = data.get("post_processor")
    data["post_processor"] = append if existing is None else {"type": "Sequence", "processors": [existing, append]}
    write_json(tokenizer_json, data)
