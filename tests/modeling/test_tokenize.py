import numpy as np

from embedkit.modeling.tokenize import pad_batch


def test_dynamic_padding_pads_to_the_longest_in_the_batch_rounded_to_multiple():
    batch = pad_batch([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}], pad_id=0, multiple_of=4)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]


def test_left_padding_puts_tokens_at_the_end():
    features = [{"input_ids": [5, 6], "token_type_ids": [0, 1]}, {"input_ids": [8], "token_type_ids": [0]}]
    batch = pad_batch(features, pad_id=9, padding_side="left", multiple_of=1)
    assert batch["input_ids"].tolist() == [[5, 6], [9, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1], [0, 1]]
    assert np.array_equal(batch["token_type_ids"], [[0, 1], [0, 0]])


class _EosTokenizer:
    """Whitespace tokens numbered by length; EOS is 99 and, like Qwen3-Embedding's, optionally added by itself."""

    eos_token_id = 99
    model_input_names = ("input_ids",)

    def __init__(self, adds_eos: bool = False):
        self.adds_eos = adds_eos

    def __call__(self, texts, max_length, truncation, padding, return_attention_mask, return_token_type_ids):
        ids = [[len(w) for w in t.split()] for t in texts]
        if self.adds_eos:
            ids = [row + [self.eos_token_id] for row in ids]
        return {"input_ids": [row[:max_length] for row in ids]}


def test_eos_is_appended_once_and_survives_truncation():
    from embedkit.modeling.tokenize import tokenize

    texts = ["one two", "a bb ccc dddd eeeee"]
    plain = tokenize(_EosTokenizer(), texts, max_len=4)
    assert [f["input_ids"] for f in plain] == [[3, 3], [1, 2, 3, 4]]
    appended = tokenize(_EosTokenizer(), texts, max_len=4, append_eos=True)
    assert [f["input_ids"] for f in appended] == [[3, 3, 99], [1, 2, 3, 99]]
    own = tokenize(_EosTokenizer(adds_eos=True), texts, max_len=8, append_eos=True)
    assert [f["input_ids"] for f in own] == [[3, 3, 99], [1, 2, 3, 4, 5, 99]]


def test_last_token_pooling_appends_eos_unless_told_otherwise():
    from embedkit.modeling.spec import EmbedderSpec

    assert EmbedderSpec(pooling="last").appends_eos()
    assert not EmbedderSpec(pooling="last", append_eos=False).appends_eos()
    assert not EmbedderSpec(pooling="mean").appends_eos()
    assert EmbedderSpec(pooling="cls", append_eos=True).appends_eos()
