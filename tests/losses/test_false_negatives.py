from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from embedkit.losses import false_negative_mask, text_hash


def test_text_hash_is_int64_and_the_same_in_another_process():
    texts = ["a passage", "another passage", "日本語のテキスト"]
    here = [text_hash(t) for t in texts]
    assert all(-(2**63) <= h < 2**63 for h in here)
    assert len(set(here)) == 3
    code = "import sys, json; from embedkit.losses import text_hash; print(json.dumps([text_hash(t) for t in json.loads(sys.argv[1])]))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert json.loads(out) == here


def test_text_hash_ignores_whitespace_differences_only():
    assert text_hash("a  passage\n") == text_hash("a passage")
    assert text_hash("A passage") != text_hash("a passage")


def test_mask_flags_other_positives_but_never_the_own_positive():
    a, b, c = (text_hash(t) for t in "abc")
    # G = 2. Query 0's example has positives {a, c}; query 1's has {c}, and its mined "negative" is c again.
    passages = [a, b, c, c]
    mask = false_negative_mask([{a, c}, {c}], passages, group_size=2)
    assert mask.dtype == bool and mask.shape == (2, 4)
    # Query 0: passages 2 and 3 are its positive c (in query 1's group) → masked; its own column 0 is not.
    assert mask[0].tolist() == [False, False, True, True]
    # Query 1: its own positive (column 2) stays, the duplicate c in its hard-negative slot is masked.
    assert mask[1].tolist() == [False, False, False, True]


def test_empty_positive_sets_mask_nothing():
    mask = false_negative_mask([set(), set()], [1, 2, 3, 4], group_size=2)
    assert not mask.any()


def test_wrong_passage_count_raises():
    with pytest.raises(ValueError, match="3 passage hashes for 2 queries"):
        false_negative_mask([set(), set()], [1, 2, 3], group_size=2)
