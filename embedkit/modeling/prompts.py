"""The prompts each LLM embedder family was trained with, and the ``{text}`` templates they are written in.

An instruction (``query_instruction`` / ``passage_instruction`` in ``embedkit.json``, ``*_instruction_for_retrieval``
in a recipe) is a prefix, or a template with one ``{text}``: what comes before it is prefixed to the text,
what comes after is a suffix that truncation never cuts (LLARA's eight ``<sN>`` tokens must survive, since they
are what it pools). Tokenisation (`embedkit.modeling.tokenize`) applies them the same way for training,
evaluation, encoding and the export check, and the embedding identity includes them.

`PRESETS` holds each family's spec: pooling, padding side, prompts, EOS. A ``{task}`` in a preset's prompt is
filled with the task description (`preset_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from embedkit.choices import PaddingSide, Pooling

TEXT = "{text}"
TASK = "{task}"
# Qwen3-Embedding's and NV-Embed's retrieval task, as their model cards word it.
DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"


def split_template(instruction: str) -> tuple[str, str]:
    """(prefix, suffix) of an instruction: a plain prefix, or the two sides of its ``{text}``."""
    if TEXT not in instruction:
        return instruction, ""
    prefix, _, suffix = instruction.partition(TEXT)
    if TEXT in suffix:
        raise ValueError(f"an instruction holds at most one {TEXT}: {instruction!r}")
    return prefix, suffix


@dataclass(frozen=True)
class Preset:
    family: str
    pooling: Pooling
    padding_side: PaddingSide
    query_instruction: str
    passage_instruction: str = ""
    append_eos: Optional[bool] = None  # None: the spec's rule (EOS exactly for last-token pooling)
    mask_instruction: Optional[bool] = None  # True: the instruction prefix is left out of the pooling


def _llara_template(task: str, tokens: range) -> str:
    return f'"{TEXT}", {task} within eight words: ' + "".join(f"<s{i}>" for i in tokens)


PRESETS: dict[str, Preset] = {
    # castorini/repllama-v1-7b-lora-passage (Tevatron): EOS-terminated, last token, right padding.
    "repllama": Preset("RepLLaMA", Pooling.LAST, PaddingSide.RIGHT, "query: ", "passage: "),
    # Qwen/Qwen3-Embedding-*: instruction on queries only, no space after "Query:", left padding.
    "qwen3-embedding": Preset("Qwen3-Embedding", Pooling.LAST, PaddingSide.LEFT, f"Instruct: {TASK}\nQuery:"),
    # BAAI/bge-en-icl, zero-shot: the query in its instruct/query/response frame, the state after "<response>"
    # pooled (no EOS); passages bare. `icl_instruction` adds in-context examples.
    "bge-en-icl": Preset("bge-en-icl", Pooling.LAST, PaddingSide.LEFT, f"<instruct>{TASK}\n<query>{TEXT}\n<response>",
                         append_eos=False),
    # BAAI/LLARA-passage: each side ends in eight special tokens whose states are averaged. One padding side
    # for training and evaluation alike (the original trained left-padded and pooled as if right-padded).
    "llara": Preset("LLARA", Pooling.LAST_8, PaddingSide.LEFT,
                    _llara_template("predict the following passage", range(9, 17)),
                    _llara_template("summarize the above passage", range(1, 9)), append_eos=False),
    # nvidia/NV-Embed-v1: instruction on queries only (a space after "Query:"), passages bare; EOS appended,
    # right padding; latent-attention pooling over every token but the instruction's.
    "nv-embed": Preset("NV-Embed", Pooling.LATENT_ATTENTION, PaddingSide.RIGHT, f"Instruct: {TASK}\nQuery: ",
                       append_eos=True, mask_instruction=True),
}
LLARA_SPECIAL_TOKENS = tuple(f"<s{i}>" for i in range(1, 17))


def icl_example(template: str, query: str, passage: str) -> str:
    """One in-context example for a query ``template`` (an instruction, see `split_template`): the example's
    query framed as the template frames a query, its positive passage as the response, a blank line after."""
    prefix, suffix = split_template(template)
    return f"{prefix}{query}{suffix}{passage}\n\n"


def icl_template(template: str, examples: list[str]) -> str:
    """The query ``template`` with formatted `icl_example` strings before it: the instruction a query with
    those examples is tokenised with (fixed examples at eval, in-batch ones in training alike)."""
    return "".join(examples) + template


def icl_instruction(task: str, examples: list[tuple[str, str]]) -> str:
    """bge-en-icl's query template with k (query, positive passage) examples before the query, as its model
    card builds it: each example framed like the query with the passage as the response, blank lines between."""
    frame = PRESETS["bge-en-icl"].query_instruction.replace(TASK, task)
    return icl_template(frame, [icl_example(frame, query, passage) for query, passage in examples])


def preset_fields(name: str, task: str = DEFAULT_TASK) -> dict[str, Any]:
    """The EmbedderSpec fields of preset ``name``, ``{task}`` filled in."""
    preset = PRESETS[name]
    fields = {"pooling": preset.pooling, "padding_side": preset.padding_side, "append_eos": preset.append_eos,
              "mask_instruction": preset.mask_instruction,
              "query_instruction": preset.query_instruction.replace(TASK, task),
              "passage_instruction": preset.passage_instruction.replace(TASK, task)}
    return {key: value for key, value in fields.items() if value is not None}
