"""bge-en-icl's in-context examples in training: each query prefixed with (query, positive) pairs from the other
pairs of its batch (FlagEmbedding's ICL dataset), formatted as the eval-time fixed examples are, seeded."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from embedkit.config import TrainConfig, load_recipe
from embedkit.config.schema import IclConfig
from embedkit.modeling.loading import load_tokenizer
from embedkit.modeling.prompts import DEFAULT_TASK, icl_instruction, preset_fields, split_template
from embedkit.modeling.tiny import build_tiny_bge_en_icl
from embedkit.modeling.tokenize import tokenize
from embedkit.training import icl as icl_module
from embedkit.training.collator import EmbedCollator
from embedkit.training.dataset import TrainDataset, load_training_data
from embedkit.training.icl import InBatchExamples, choose_examples, example_rng
from tests.conftest import REPO
from tests.training.conftest import TOPICS, write_toy_jsonl

INSTRUCTION = preset_fields("bge-en-icl")["query_instruction"]
QUERY_MAX_LEN = 600


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = [f"what do {t} do" for t in TOPICS] + ["studied because matter research"]
    model_dir = build_tiny_bge_en_icl(tmp_path_factory.mktemp("icl") / "model", texts)
    return load_tokenizer(model_dir, padding_side="left")


@pytest.fixture
def dataset(tmp_path, tokenizer) -> TrainDataset:
    config = TrainConfig(train_data=str(write_toy_jsonl(tmp_path / "toy.jsonl")), query_max_len=QUERY_MAX_LEN,
                         passage_max_len=64, query_instruction_for_retrieval=INSTRUCTION,
                         icl=IclConfig(examples_per_query=3))
    return TrainDataset(load_training_data(config, tokenizer).tokens, 2, seed=5)


def _examples(tokenizer, **settings) -> InBatchExamples:
    fields = {"examples_per_query": 3, "random_count": False, "example_query_max_len": 200,
              "example_passage_max_len": 200, **settings}
    return InBatchExamples(tokenizer, IclConfig(**fields), QUERY_MAX_LEN, append_eos=False, seed=11)


def _items(dataset, indices, epoch=0):
    return [dataset[(epoch, i)] for i in indices]


def test_items_carry_the_raw_query_instruction_and_sampled_positive(dataset):
    item = dataset[(0, 3)]
    assert item["key"] == (0, 3)
    assert item["query_text"] == f"what do {TOPICS[3]} do"
    assert item["query_instruction"] == INSTRUCTION
    assert item["positive_text"].startswith(f"{TOPICS[3]} are studied")


def test_each_query_gets_k_examples_from_the_other_pairs_formatted_as_at_eval(dataset, tokenizer):
    items = _items(dataset, [0, 4, 9, 13, 17])
    queries = _examples(tokenizer)(items)
    for i, item in enumerate(items):
        chosen = choose_examples(i, len(items), IclConfig(examples_per_query=3, random_count=False),
                                 example_rng(11, *item["key"]))
        assert len(chosen) == 3 and i not in chosen and len(set(chosen)) == 3
        pairs = [(items[j]["query_text"], items[j]["positive_text"]) for j in chosen]
        # the eval-time formatter of fixed examples, tokenised as eval tokenises a query
        expected = tokenize(tokenizer, [item["query_text"]], QUERY_MAX_LEN, icl_instruction(DEFAULT_TASK, pairs))
        assert queries[i].tolist() == expected[0]["input_ids"]
        text = tokenizer.decode(queries[i].tolist())
        assert text.count(item["query_text"]) == 1  # its own pair is never an example
        assert text.count("<instruct>") == 4 and text.endswith(f"<query>{item['query_text']}\n<response>")


def test_fewer_examples_when_the_batch_is_small(dataset, tokenizer):
    config = IclConfig(examples_per_query=3, random_count=False)
    assert choose_examples(0, 2, config, random.Random(0)) == [1]
    assert choose_examples(0, 1, config, random.Random(0)) == []
    single = _items(dataset, [6])
    assert _examples(tokenizer)(single)[0].tolist() == single[0]["query"].tolist()
    pair = _items(dataset, [6, 7])
    assert tokenizer.decode(_examples(tokenizer)(pair)[0].tolist()).count("<instruct>") == 2


def test_draws_are_seeded_per_example_and_epoch(dataset, tokenizer):
    items = _items(dataset, range(8))
    first, again = _examples(tokenizer)(items), _examples(tokenizer)(items)
    assert [q.tolist() for q in first] == [q.tolist() for q in again]
    config = IclConfig(examples_per_query=3)
    draws = {seed: [choose_examples(i, 8, config, example_rng(seed, 0, i)) for i in range(8)] for seed in (1, 2)}
    assert draws[1] != draws[2]
    assert [choose_examples(i, 8, config, example_rng(1, 0, i)) for i in range(8)] == draws[1]
    assert [choose_examples(i, 8, config, example_rng(1, 1, i)) for i in range(8)] != draws[1]


def test_counts_are_uniform_over_0_to_k_as_flagembedding_draws_them():
    config = IclConfig(examples_per_query=5)
    counts = [len(choose_examples(0, 16, config, example_rng(0, 0, i))) for i in range(3000)]
    shares = np.bincount(counts, minlength=6) / len(counts)
    assert len(shares) == 6 and np.abs(shares - 1 / 6).max() < 0.03
    never = IclConfig(examples_per_query=5, use_probability=0.0)
    assert all(choose_examples(0, 16, never, example_rng(0, 0, i)) == [] for i in range(50))
    half = IclConfig(examples_per_query=2, random_count=False, use_probability=0.5)
    used = np.mean([bool(choose_examples(0, 16, half, example_rng(0, 0, i))) for i in range(2000)])
    assert abs(used - 0.5) < 0.04


def test_examples_are_cut_to_the_example_lengths(dataset, tokenizer):
    prefix, suffix = split_template(INSTRUCTION)
    frame = len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
    # the framed query counts, as in FlagEmbedding: 3 tokens are left for the query text
    examples = _examples(tokenizer, example_query_max_len=frame + 3, example_passage_max_len=4)
    item = dataset[(0, 2)]
    text = examples.example(item)
    assert text.startswith(prefix) and text.endswith("\n\n")
    query, passage = text[len(prefix):-2].split(suffix)
    assert query and item["query_text"].startswith(query) and query != item["query_text"]
    assert len(tokenizer(query, add_special_tokens=False)["input_ids"]) <= 3
    assert item["positive_text"].startswith(passage) and passage != item["positive_text"]
    assert len(tokenizer(passage, add_special_tokens=False)["input_ids"]) <= 4
    # the frame is never cut: with no room left for the query, the example's query is empty
    assert examples.__class__(tokenizer, IclConfig(examples_per_query=1, example_query_max_len=1), QUERY_MAX_LEN,
                              False, 0).example(item).startswith(f"{prefix}{suffix}")


def test_examples_that_do_not_fit_are_left_out_and_the_query_is_not_cut(dataset, tokenizer):
    items = _items(dataset, range(4))
    own = max(len(item["query"]) for item in items)
    tight = InBatchExamples(tokenizer, IclConfig(examples_per_query=3, random_count=False), own + 5, False, 11)
    queries = tight(items)
    assert [q.tolist() for q in queries] == [item["query"].tolist() for item in items]
    assert tight.placed == 0 and tight.dropped == 12


def test_the_collator_pads_the_queries_with_their_examples(dataset, tokenizer):
    items = _items(dataset, range(4))
    plain = EmbedCollator(0, 2, padding_side="left")(items)
    with_examples = EmbedCollator(0, 2, padding_side="left", icl=_examples(tokenizer))(items)
    assert with_examples["query"]["input_ids"].shape[1] > plain["query"]["input_ids"].shape[1]
    assert (with_examples["passage"]["input_ids"] == plain["passage"]["input_ids"]).all()
    assert with_examples["query"]["attention_mask"][:, -1].all()  # left padded: every row ends in a real token


def test_texts_are_kept_only_for_in_context_examples(tmp_path, tokenizer):
    data = write_toy_jsonl(tmp_path / "toy.jsonl")
    plain = TrainConfig(train_data=str(data), query_instruction_for_retrieval=INSTRUCTION)
    tokens = load_training_data(plain, tokenizer).tokens
    assert not tokens.has_texts and "query_text" not in TrainDataset(tokens, 2, 0)[(0, 0)]
    kept = load_training_data(plain.model_copy(update={"icl": IclConfig(examples_per_query=2)}), tokenizer)
    assert not kept.sources[0].cache_hit and kept.tokens.has_texts
    again = load_training_data(plain.model_copy(update={"icl": IclConfig(examples_per_query=2)}), tokenizer)
    assert again.sources[0].cache_hit and again.tokens.query_texts.text(0) == "what do cells do"


def test_tiny_bge_en_icl_trains_with_in_batch_examples(tmp_path, quiet_out, monkeypatch):
    from embedkit.training.run import train

    instances = []
    original = icl_module.InBatchExamples.__call__

    def spy(self, items):
        instances.append(self)
        return original(self, items)

    monkeypatch.setattr(icl_module.InBatchExamples, "__call__", spy)
    config = load_recipe(REPO / "recipes" / "tiny-bge-en-icl.yaml", TrainConfig)
    config = config.model_copy(update={
        "output_dir": str(tmp_path / "run"), "train_data": str(write_toy_jsonl(tmp_path / "toy.jsonl")),
        "query_max_len": 512, "max_steps": 2, "save_steps": 2, "logging_steps": 1, "merge_lora": False,
        "icl": IclConfig(examples_per_query=3, example_query_max_len=96, example_passage_max_len=24),
        "eval": config.eval.model_copy(update={"data": None})})
    result = train(config, out=quiet_out)
    assert result.global_step == 2
    assert instances and instances[0].placed > 0
    losses = [row["loss"] for row in json.loads((tmp_path / "run" / "checkpoint-2" / "loss_history.json").read_text())]
    assert len(losses) == 2 and all(np.isfinite(losses))
