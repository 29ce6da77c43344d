"""Pre-flight checks of a submitted notebook file, before anything of it is read by
nbgrader."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat

MAX_FILE_BYTES = 50 << 20
MAX_OUTPUT_CHARS = 20 << 20


def text_size(obj: object) -> int:
    """Number of characters in all the strings inside ``obj`` (dicts, lists, strings)."""
    if isinstance(obj, str):
        return len(obj)
    if isinstance(obj, dict):
        return sum(text_size(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(text_size(v) for v in obj)
    return 0


def _output_chars(nb: dict) -> int:
    return sum(text_size(c.get("outputs", [])) for c in nb.get("cells", []) if isinstance(c, dict))


def validate_submission(path: str | Path, max_file_bytes: int = MAX_FILE_BYTES,
                        max_output_chars: int = MAX_OUTPUT_CHARS) -> str | None:
    """Return a one-line message saying what is wrong with a submitted notebook, or None.

    Parameters
    ----------
    path : str or Path
        The submitted ``.ipynb`` file.
    max_file_bytes : int
        Larger files are refused without being read.
    max_output_chars : int
        Refuse notebooks whose stored outputs hold more characters than this.

    Returns
    -------
    str or None
        ``None`` if the notebook can be graded, else a message for the student.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob("*.ipynb") if p != path)
        found = f"; found {', '.join(others)}: rename it to {name}" if others else ""
        return f"{name}: notebook missing (nothing was submitted under this name{found})"
    size = path.stat().st_size
    if size > max_file_bytes:
        return (f"{name}: file too large ({size / 2**20:.0f} MB; the limit is "
                f"{max_file_bytes >> 20} MB): clear the outputs and submit again")
    raw = path.read_bytes()
    if b"\0" in raw[:65536]:
        return f"{name}: not a notebook (binary data in a file named .ipynb)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"{name}: not a notebook (not UTF-8 text: byte {e.start})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return f"{name}: corrupt notebook (invalid JSON at line {e.lineno}, column {e.colno})"
    if not isinstance(data, dict) or "nbformat" not in data:
        return f"{name}: not a notebook (JSON without an nbformat field)"
    if data["nbformat"] != 4:
        return (f"{name}: wrong notebook version (nbformat {data['nbformat']}; version 4 "
                "is needed): open and save it in a current Jupyter")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing cell ids: nbgrader copes
            nbformat.validate(data, version=4)
    except Exception as e:  # noqa: BLE001 - nbformat crashes on some malformed input
        first = (str(e).splitlines() or [type(e).__name__])[0]
        return f"{name}: invalid notebook ({first[:120]})"
    chars = _output_chars(data)
    if chars > max_output_chars:
        return (f"{name}: stored outputs too large ({chars / 2**20:.0f} MB; the limit is "
                f"{max_output_chars >> 20} MB): clear the outputs and submit again")
    return None
