"""Pre-flight checks of submitted notebook files: one clear message per bad file."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from backprop_course.grader.validate import validate_submission


def good(path: Path, outputs: str = "") -> Path:
    cell = nbformat.v4.new_code_cell("1", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text=outputs)] if outputs else [])
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def test_good_notebook_passes(tmp_path: Path) -> None:
    assert validate_submission(good(tmp_path / "ps1.ipynb")) is None


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"cells": [', "corrupt notebook (invalid JSON at line 1"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not a notebook (binary data"),
    (b"\xff\xfe not utf-8", "not a notebook (not UTF-8"),
    (b'["a list"]', "not a notebook (JSON without an nbformat field)"),
    (b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}', "wrong notebook version"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "cells": "oops"}', "invalid notebook"),
])
def test_bad_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "ps1.ipynb"
    path.write_bytes(content)
    assert expected in validate_submission(path)


def test_missing_notebook(tmp_path: Path) -> None:
    assert "notebook missing" in validate_submission(tmp_path / "ps1.ipynb")


def test_huge_file_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "ps1.ipynb"
    with open(path, "wb") as f:
        f.truncate(60 << 20)  # sparse: 60 MB on paper, nothing on disk
    assert "file too large (60 MB" in validate_submission(path)


def test_huge_stored_outputs(tmp_path: Path) -> None:
    path = good(tmp_path / "ps1.ipynb", outputs="x" * (3 << 20))
    assert validate_submission(path) is None
    assert "stored outputs too large" in validate_submission(path, max_output_chars=1 << 20)
