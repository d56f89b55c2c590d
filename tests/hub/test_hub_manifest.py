"""The download manifest: written and read back through its schema; a damaged one names its path and line."""

from __future__ import annotations

import json

import pytest

from embedkit.errors import UserError
from embedkit.hub.manifest import MANIFEST_NAME, FileRecord, Manifest, load_manifest


def test_a_saved_manifest_reads_back_the_same(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"12345")
    manifest = Manifest(directory=tmp_path, origin={"hf": "org/x"})
    manifest.files["b.bin"] = FileRecord(path="b.bin", size=5, sha256="0" * 64, source="u", verified=False)
    manifest.save()

    again = load_manifest(tmp_path)

    assert again == manifest and again.intact()
    assert "directory" not in json.loads((tmp_path / MANIFEST_NAME).read_text())


@pytest.mark.parametrize("text, line, message", [
    ('{\n  "files": {\n    "a.bin": {\n      "path": "a.bin",\n      "size": "5",\n      "sha256": "",\n'
     '      "source": "u",\n      "verified": true\n    }\n  }\n}', 5, "files.a.bin.size: expected int, got '5'"),
    ('{\n  "files": {\n    "a.bin": {\n      "path": "a.bin"\n    }\n  }\n}', 3, "'files.a.bin.size' is required"),
    ('{\n  "format": 1,\n  "extractd": {}\n}', 3, "unknown key 'extractd' (did you mean 'extracted'?)"),
    ('{\n  "format": 2\n}', 2, "format: expected one of 1, got 2"),
    ('{"files": ', 1, "invalid JSON"),
])
def test_a_damaged_manifest_names_its_path_and_line(tmp_path, text, line, message):
    (tmp_path / MANIFEST_NAME).write_text(text)

    with pytest.raises(UserError) as caught:
        load_manifest(tmp_path)

    assert str(caught.value).startswith(f"{tmp_path / MANIFEST_NAME}:{line}: unreadable download manifest: {message}")
    assert str(caught.value).endswith("delete it to start over")
