"""The course secret, and the seeds it makes for each student.

The secret is 32 random bytes in ``<course>/.backprop-course-secret`` (mode 0600), made
the first time the course is configured. It never leaves the grader: not in the release,
the feedback or the sandbox. From it come

- the course's *salt* (:func:`salt`), public, written next to each released notebook as
  ``course.json``: the student's visible cases are drawn from (salt, student, exercise),
  so the notebook, ``backprop-course check`` and the grader agree (see
  :mod:`backprop_course.checks.variants`);
- the seeds of the hidden checks (:func:`hidden_rng`), an HMAC of (student, exercise,
  part) that no student can compute, for their own or anybody else's cases.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

import numpy as np

from ..checks.variants import COURSE_FILE

SECRET_FILE = ".backprop-course-secret"


def load_or_create(root: str | Path) -> bytes:
    """The secret of the course in ``root`` (created on first use)."""
    path = Path(root) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def _mac(secret: bytes, message: str) -> bytes:
    return hmac.new(secret, message.encode(), hashlib.sha256).digest()


def salt(secret: bytes) -> str:
    """The course's public salt."""
    return _mac(secret, "salt").hex()[:16]


def hidden_rng(secret: bytes, student: str, exercise: str, part: str) -> np.random.Generator:
    """The generator of a hidden check's cases for one student."""
    seed = int.from_bytes(_mac(secret, f"hidden/{student}/{exercise}/{part}")[:8], "big")
    return np.random.default_rng(seed)


def write_course_file(folder: str | Path, secret: bytes) -> None:
    """``folder/course.json`` with the salt (released with the assignment)."""
    path = Path(folder) / COURSE_FILE
    text = json.dumps({"salt": salt(secret)}) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
