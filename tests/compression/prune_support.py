"""Tiny models with exact pass-through layers, and texts, for the prune tests (a uniquely named module)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"
LAYERS = 4
PASS_THROUGH = (1, 2)  # not the last layer: a decoder's last state includes the final norm


def demo_texts(n: int = 80) -> list[str]:
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


def _pass_through(backbone, layers_path: str, zeroed: tuple[str, ...]) -> None:
    """Zero the output projections (weights and biases) of attention and MLP in the PASS_THROUGH layers, and
    give the other layers weights large enough to change their input clearly (random init is near identity)."""
    import paddle

    rng = np.random.default_rng(0)
    for name, param in backbone.named_parameters():
        if not name.startswith(layers_path + "."):
            continue
        index = int(name[len(layers_path) + 1:].split(".")[0])
        if index in PASS_THROUGH and any(f".{part}." in name for part in zeroed):
            param.set_value(paddle.zeros_like(param))
        elif index not in PASS_THROUGH and name.endswith("weight") and len(param.shape) == 2:
            param.set_value(paddle.to_tensor(rng.normal(0, 0.3, param.shape).astype("float32")))


def build_bert(out_dir: Path) -> Path:
    """A 4-layer post-norm BERT (unit LayerNorms) whose layers 1 and 2 are pass-throughs."""
    from embedkit.modeling.loading import load_backbone
    from embedkit.modeling.tiny import build_tiny_bert

    build_tiny_bert(out_dir, demo_texts(), layers=LAYERS)
    backbone = load_backbone(out_dir)
    _pass_through(backbone, "encoder.layers", ("self_attn.out_proj", "linear2"))
    backbone.save_pretrained(str(out_dir), safe_serialization=True)
    return out_dir


def build_llama(out_dir: Path) -> Path:
    """A 4-layer LLaMA (pre-norm, grouped KV heads) with a byte-level BPE tokenizer, last-token pooling and left
    padding, whose layers 1 and 2 are pass-throughs."""
    import paddle
    from paddlenlp.transformers import LlamaConfig, LlamaModel

    from embedkit.modeling.tiny import build_byte_bpe_tokenizer

    out_dir.mkdir(parents=True)
    vocab_size = build_byte_bpe_tokenizer(out_dir, demo_texts(), "Qwen2Tokenizer", eos="<|endoftext|>",
                                          pad="<|endoftext|>", vocab_size=400)
    paddle.seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, eos_token_id=0, pad_token_id=0, bos_token_id=0)
    model = LlamaModel(config)
    _pass_through(model, "layers", ("self_attn.o_proj", "mlp.down_proj"))
    model.save_pretrained(str(out_dir), safe_serialization=True)
    (out_dir / "embedkit.json").write_text(json.dumps({
        "pooling": "last", "normalized": True, "padding_side": "left", "query_max_len": 32, "passage_max_len": 64,
        "query_instruction": "Query: "}))
    return out_dir


def write_texts(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8")
    return path


def write_beir(root: Path, n_docs: int = 40, splits: tuple[str, ...] = ("test", "train")) -> Path:
    """Demo abstracts as a corpus; each split's queries are the titles of its own documents."""
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(n_docs), handle, strict=False)]
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    queries, qrels = [], {split: [] for split in splits}
    for i, doc in enumerate(docs):
        split = splits[i % len(splits)]
        queries.append({"_id": f"q{i}", "text": doc["title"]})
        qrels[split].append(f"q{i}\t{doc['_id']}\t1\n")
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (root / "qrels").mkdir()
    for split, rows in qrels.items():
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    return root
