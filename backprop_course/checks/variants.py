"""Each student's own numbers.

The cases a student sees (the ``given`` and ``shape`` checks, and the numbers of a
by-hand exercise) are drawn from a seed made of the course's *salt*, the student's id
and the exercise, so the student's in-notebook ``check``, ``backprop-course check`` and
the grader all use the same numbers, and a friend's numbers are not yours. The salt is
public: the grader derives it from the course secret and writes it into the release as
``course.json`` (a new secret, e.g. next year, gives new numbers); a notebook without one
(self-study) uses :data:`SELF_STUDY`. Hidden checks use seeds only the grader can make
(the course secret, see :mod:`backprop_course.grader.secret`).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from pathlib import Path

import numpy as np

#: The file next to a released notebook that holds the course's salt.
COURSE_FILE = "course.json"
SELF_STUDY = "self-study"
STUDENT_ENV = "BACKPROP_COURSE_STUDENT"


def student_id() -> str:
    """Who is working: ``$BACKPROP_COURSE_STUDENT``, else JupyterHub's user (as nbgrader's
    ``submit`` finds it), else the login name."""
    for name in (STUDENT_ENV, "JUPYTERHUB_USER"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "student"


def course_salt(folder: str | Path = ".") -> str:
    """The salt in ``folder/course.json`` (the released assignment's folder), else
    :data:`SELF_STUDY`."""
    try:
        salt = json.loads((Path(folder) / COURSE_FILE).read_text(encoding="utf-8"))["salt"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return SELF_STUDY
    return salt if isinstance(salt, str) and salt else SELF_STUDY


def visible_seed(salt: str, student: str, exercise: str, label: str) -> int:
    """The seed of a student's visible cases of one exercise (``label``: "given" or
    "provides"; the practice copies of hidden checks use the part's name)."""
    text = f"{salt}/{student}/{exercise}/{label}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def rng_for(salt: str, student: str, exercise: str, label: str) -> np.random.Generator:
    """A generator seeded by :func:`visible_seed`."""
    return np.random.default_rng(visible_seed(salt, student, exercise, label))
