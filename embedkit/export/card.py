"""README.md of an export dir: what it was exported from, how to use it, how closely it matches the source."""

from __future__ import annotations

import json
from typing import Any

from embedkit.choices import ExportFormat
from embedkit.modeling.spec import EmbedderSpec


def export_card(name: str, source: str, fmt: str, spec: EmbedderSpec, check: dict[str, Any], version: str) -> str:
    """Paths in the snippets are the dir's own name: the card travels with the dir, wherever it is copied."""
    lines = [f"# {name}", "", f"Text-embedding model exported by embedkit {version} from `{source}` as {fmt}.", "",
             "| | |", "|---|---|", f"| pooling | {spec.pooling} |", f"| L2-normalised | {spec.normalized} |",
             f"| query instruction | `{json.dumps(spec.query_instruction)}` |",
             f"| passage instruction | `{json.dumps(spec.passage_instruction)}` |",
             f"| max tokens (query / passage) | {spec.query_max_len} / {spec.passage_max_len} |",
             f"| padding side | {spec.padding_side} |", "", "## Use", ""]
    if fmt == ExportFormat.SENTENCE_TRANSFORMERS:
        lines += ["```python", "from sentence_transformers import SentenceTransformer", "",
                  f'model = SentenceTransformer("{name}")', 'queries = model.encode(["what causes tides?"], '
                  'prompt_name="query")', 'passages = model.encode(["Tides are caused by the Moon."], '
                  'prompt_name="passage")', "```", "",
                  "The instructions are the prompts `query` and `passage` (`passage` is the default). "
                  "sentence-transformers has one max length for both sides, the larger of the two above; set "
                  f"`model.max_seq_length = {spec.query_max_len}` while encoding queries for embedkit's exact "
                  "query vectors."]
    lines += ["", "```python", "import embedkit", "", f'model = embedkit.load("{name}")',
              'queries = model.encode_queries(["what causes tides?"])', "```", "", "```bash",
              f"embedkit eval {name} --data YOUR_BEIR_DIR", f"embedkit serve {name}", "```", "", "## Check", ""]
    if check.get("checked"):
        lines.append(f"Checked against the source model in embedkit on its probe texts: `{json.dumps(check)}`.")
    else:
        lines.append(f"Not checked against the source model: {check.get('reason')}.")
    return "\n".join(lines) + "\n"
