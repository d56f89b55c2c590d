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
