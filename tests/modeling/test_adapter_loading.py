"""A LoRA adapter dir loads as its base model with the adapter merged; a base that is not there is the user's to fix."""

from __future__ import annotations

import json

import pytest

from embedkit.errors import UserError
from embedkit.modeling.loading import load_backbone


def test_an_adapter_whose_base_model_is_missing_is_a_user_error(tmp_path):
    (tmp_path / "lora_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone"), "r": 4}))
    with pytest.raises(UserError, match="base_model_name_or_path in lora_config.json") as err:
        load_backbone(tmp_path)
    assert str(tmp_path / "gone") in err.value.message and err.value.path == str(tmp_path)
