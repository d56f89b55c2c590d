"""Tokenised-data cache, per-epoch groups, length-grouped batches and the dynamic-padding collator."""

from __future__ import annotations

import numpy as np
import pytest

from embedkit import paths
from embedkit.config import TrainConfig
from embedkit.losses import text_hash
from embedkit.modeling.loading import load_tokenizer
from embedkit.modeling.tiny import build_tiny_bert
from embedkit.training.batching import LengthGroupedBatchSampler
from embedkit.training.collator import EmbedCollator
from embedkit.training.dataset import TrainDataset, load_training_data
from tests.conftest import DEMO_DATA
from tests.training.conftest import TOPICS, write_toy_jsonl


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    model_dir = build_tiny_bert(tmp_path_factory.mktemp("tiny"), [f"what do {t} do" for t in TOPICS] + ["studied because matter research"])
    return load_tokenizer(model_dir)


def _config(data, **changes) -> TrainConfig:
    return TrainConfig(**{"train_data": str(data), "query_max_len": 16, "passage_max_len": 24, **changes})


def test_tokenised_once_then_read_from_the_cache(tmp_path, tokenizer):
    data = write_toy_jsonl(tmp_path / "toy.jsonl")
    first = load_training_data(_config(data), tokenizer)
    second = load_training_data(_config(data), tokenizer)
    assert [s.cache_hit for s in first.sources] == [False]
    assert [s.cache_hit for s in second.sources] == [True]
    np.testing.assert_array_equal(first.tokens.passage_tokens.values, second.tokens.passage_tokens.values)
    stored = {p.suffix for entry in paths.cache_dir("tokenized").iterdir() for p in entry.iterdir()}
    assert stored == {".npy", ".json"}  # arrays and metadata, never pickle
    # Anything the token ids depend on gives a new entry: lengths, instructions, the file's bytes.
    assert not load_training_data(_config(data, passage_max_len=8), tokenizer).sources[0].cache_hit
    assert not load_training_data(_config(data, query_instruction_for_retrieval="q: "), tokenizer).sources[0].cache_hit
    write_toy_jsonl(data, with_negatives=False)
    assert not load_training_data(_config(data), tokenizer).sources[0].cache_hit


def test_tokens_respect_max_lengths_and_instructions(tmp_path, tokenizer):
    data = write_toy_jsonl(tmp_path / "toy.jsonl")
    plain = load_training_data(_config(data), tokenizer).tokens
    prefixed = load_training_data(_config(data, query_instruction_for_retrieval="cells cells "), tokenizer).tokens
    assert plain.passage_tokens.lengths().max() <= 24
    assert (prefixed.query_tokens.lengths() == plain.query_tokens.lengths() + 2).all()
    # Identical passage texts are stored once; each passage keeps the hash of its raw text.
    assert len(plain.passage_tokens) == 2 * len(TOPICS)  # each topic's positive and one negative text
    assert plain.passage_hashes[plain.example_pos[0][0]] == text_hash(f"{TOPICS[0]} are studied because {TOPICS[0]} matter in {TOPICS[0]} research")


def test_beir_data_fills_negatives_from_the_corpus(tokenizer):
    corpus = load_training_data(_config(DEMO_DATA), tokenizer).tokens
    examples_only = load_training_data(_config(DEMO_DATA, fill_negatives_from="examples"), tokenizer).tokens
    assert len(corpus) == 300 and len(corpus.passage_tokens) == 800
    assert len(corpus.fill_pool) == 800  # every corpus document
    positives = np.unique(np.concatenate([examples_only.example_pos[i] for i in range(len(examples_only))]))
    np.testing.assert_array_equal(np.sort(examples_only.fill_pool), positives)


def test_groups_are_resampled_each_epoch_and_reproducible(tmp_path, tokenizer):
    data = write_toy_jsonl(tmp_path / "toy.jsonl", with_negatives=False)
    tokens = load_training_data(_config(data), tokenizer).tokens
    dataset = TrainDataset(tokens, group_size=4, seed=3)
    groups0, _ = dataset.epoch_groups(0)
    groups1, _ = dataset.epoch_groups(1)
    again, _ = TrainDataset(tokens, group_size=4, seed=3).epoch_groups(0)
    np.testing.assert_array_equal(groups0, again)
    assert not np.array_equal(groups0, groups1)
    for i in range(len(tokens)):  # positive first, negatives distinct and never the example's positive
        assert groups0[i, 0] == tokens.example_pos[i][0]
        assert len(set(groups0[i])) == 4
    assert dataset.sampling_stats[0]["filled_negatives"] == 3 * len(tokens)
    item = dataset[[1, 5]]  # the DataLoader hands (epoch, index) over as a list
    assert item["positive_hashes"] == frozenset({int(tokens.passage_hashes[tokens.example_pos[5][0]])})
    np.testing.assert_array_equal(item["passages"][0], tokens.passage_tokens[groups1[5, 0]])


def test_teacher_scores_follow_their_passages(tmp_path, tokenizer):
    data = write_toy_jsonl(tmp_path / "toy.jsonl", with_scores=True)
    tokens = load_training_data(_config(data), tokenizer).tokens
    item = TrainDataset(tokens, group_size=2, seed=0)[(0, 3)]
    np.testing.assert_allclose(item["teacher_scores"], [0.9, 0.1])


def _lengths_dataset(lengths):
    class Fake:
        def __len__(self):
            return len(lengths)

        def group_lengths(self, epoch):
            return np.asarray(lengths)

    return Fake()


def test_length_grouped_batches_cover_every_example_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 200, size=400)
    sampler = LengthGroupedBatchSampler(_lengths_dataset(lengths), batch_size=8, seed=1, mega_batch_factor=50)
    batches = list(sampler)
    seen = [i for batch in batches for _, i in batch]
    assert sorted(seen) == list(range(400)) and len(batches) == len(sampler) == 50
    spread = np.mean([np.ptp(lengths[[i for _, i in b]]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[rng.permutation(400)[:8]]) for _ in range(50)])
    assert spread < random_spread / 4
    again = list(LengthGroupedBatchSampler(_lengths_dataset(lengths), batch_size=8, seed=1))
    assert again == batches
    sampler.set_epoch(1)
    assert [b for b in sampler] != batches and all(e == 1 for b in sampler for e, _ in b)


def test_ranks_get_equal_full_batches():
    lengths = np.arange(21)
    per_rank = [list(LengthGroupedBatchSampler(_lengths_dataset(lengths), batch_size=4, seed=0, num_replicas=2, rank=r))
                for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1]) == 3
    assert all(len(b) == 4 for rank in per_rank for b in rank)
    covered = {i for rank in per_rank for b in rank for _, i in b}
    assert covered == set(range(21))


def test_collator_pads_each_batch_to_its_own_longest_sequence():
    collate = EmbedCollator(pad_id=0, group_size=2, with_token_type_ids=True)
    shared = text_hash("shared positive")
    items = [
        {"query": np.array([5, 6, 7]), "passages": [np.arange(1, 10), np.arange(1, 4)],
         "passage_hashes": np.array([shared, 11]), "positive_hashes": frozenset({shared}), "teacher_scores": None},
        {"query": np.array([5]), "passages": [np.arange(1, 3), np.arange(1, 12)],
         "passage_hashes": np.array([22, shared]), "positive_hashes": frozenset({22, shared}),
         "teacher_scores": np.array([0.8, 0.2], dtype=np.float32)},
    ]
    batch = collate(items)
    assert batch["passage"]["input_ids"].shape == (4, 16)  # longest passage 11 → next multiple of 8, not max_len
    assert batch["query"]["input_ids"].shape == (2, 8)
    assert batch["passage"]["attention_mask"][1].sum() == 3 and batch["passage"]["token_type_ids"].sum() == 0
    # Query 1's second positive is query 0's sampled positive, and sits in its own group as a "negative".
    np.testing.assert_array_equal(batch["false_negatives"], [[False, False, False, True],
                                                             [True, False, False, True]])
    assert np.isnan(batch["teacher_scores"][0]).all()
    np.testing.assert_allclose(batch["teacher_scores"][1], [0.8, 0.2])


def test_last_token_models_train_on_eos_ended_sequences(tmp_path, tokenizer):
    import copy

    eos_tokenizer = copy.deepcopy(tokenizer)
    eos_tokenizer.eos_token = "[MASK]"  # BERT has no EOS; any token the texts never contain shows the rule
    data = write_toy_jsonl(tmp_path / "toy.jsonl")
    plain = load_training_data(_config(data), eos_tokenizer)
    ended = load_training_data(_config(data), eos_tokenizer, append_eos=True)
    assert not ended.sources[0].cache_hit  # a tokenisation of its own, not the plain one from the cache
    mask = eos_tokenizer.eos_token_id
    for tokens, max_len in ((ended.tokens.query_tokens, 16), (ended.tokens.passage_tokens, 24)):
        rows = [tokens[i] for i in range(len(tokens))]
        assert all(row[-1] == mask and len(row) <= max_len for row in rows)
    assert all(plain.tokens.passage_tokens[i][-1] != mask for i in range(len(plain.tokens.passage_tokens)))
