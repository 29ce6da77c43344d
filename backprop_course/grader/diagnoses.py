"""Every diagnosis, recorded in the gradebook next to nbgrader's grades.

Two tables of our own in the course's gradebook database (SQLite or PostgreSQL,
nbgrader's ``db_url``), made with SQLAlchemy as nbgrader makes its own:

``backprop_diagnoses``: one row per graded check and kind of mistake (a passed check: one
row, ``kind`` NULL)::

    assignment, notebook, student, cell (the test cell's grade_id), exercise, part,
    position (0, 1, ... over the check's kinds)   -- the primary key
    hidden, passed, kind, gradient, element, rel_error, graded_at

``gradient``, ``element`` (e.g. ``"[1, 0]"``; NULL when the shape is wrong) and
``rel_error`` locate the worst element of a failed visible check; a hidden check records
its kinds only. ``backprop_probes``: one row per answer probed (:mod:`.evidence`)::

    assignment, notebook, student, exercise   -- the primary key
    status, kinds, output, residual, pattern, graded_at

:func:`record` replaces one (assignment, notebook, student)'s rows with those of an
autograded notebook's ``metadata.backprop_course.diagnoses``, in the caller's
transaction: regrading replaces, never duplicates. It is called by
:class:`.RecordDiagnoses` after ``SaveAutoGrades`` (stock ``nbgrader autograde``) and by
the one writer of ``backprop-course autograde`` (:mod:`.scale.gradebook`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from .exporter import KEY

METADATA = MetaData()
DIAGNOSES = Table(
    "backprop_diagnoses", METADATA,
    Column("assignment", String(128), primary_key=True),
    Column("notebook", String(128), primary_key=True),
    Column("student", String(128), primary_key=True),
    Column("cell", String(128), primary_key=True),
    Column("exercise", String(128), primary_key=True),
    Column("part", String(64), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("hidden", Boolean, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("kind", String(64), nullable=True),
    Column("gradient", String(128), nullable=True),
    Column("element", String(128), nullable=True),
    Column("rel_error", Float, nullable=True),
    Column("graded_at", DateTime, nullable=False),
)
PROBES = Table(
    "backprop_probes", METADATA,
    Column("assignment", String(128), primary_key=True),
    Column("notebook", String(128), primary_key=True),
    Column("student", String(128), primary_key=True),
    Column("exercise", String(128), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("kinds", String(512), nullable=False, default=""),
    Column("output", String(64), nullable=False, default=""),
    Column("residual", String(64), nullable=False, default=""),
    Column("pattern", Text, nullable=False, default=""),
    Column("graded_at", DateTime, nullable=False),
)


def create_tables(engine: Any) -> None:
    """Create the two tables if the database does not have them."""
    METADATA.create_all(engine)


def from_notebook(nb: dict) -> dict | None:
    """The diagnoses an autograded notebook carries (None if it has none)."""
    ours = nb.get("metadata", {}).get(KEY)
    found = ours.get("diagnoses") if isinstance(ours, dict) else None
    return found if isinstance(found, dict) else None


def from_bytes(data: bytes) -> dict | None:
    """:func:`from_notebook` of a notebook file's bytes."""
    try:
        return from_notebook(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None


def _rows(assignment: str, notebook: str, student: str, diagnoses: dict
          ) -> tuple[list[dict], list[dict]]:
    graded_at = datetime.fromisoformat(diagnoses["graded_at"])
    ids = {"assignment": assignment, "notebook": notebook, "student": student}
    checks = []
    for check in diagnoses["checks"]:
        worst = check.get("worst") or {}
        element = worst.get("element")
        common = {**ids, "cell": check["cell"], "exercise": check["exercise"],
                  "part": check["part"], "hidden": bool(check["hidden"]),
                  "passed": bool(check["passed"]), "graded_at": graded_at,
                  "gradient": worst.get("gradient"), "rel_error": worst.get("rel_error"),
                  "element": None if element is None else json.dumps(element)}
        kinds = check["kinds"] or [None]
        checks += [{**common, "position": i, "kind": kind} for i, kind in enumerate(kinds)]
    probes = [{**ids, "exercise": p["exercise"], "status": p["status"],
               "kinds": ",".join(p["kinds"]), "output": p["output"],
               "residual": p["residual"], "pattern": p["pattern"], "graded_at": graded_at}
              for p in diagnoses["probes"]]
    return checks, probes


def record(connection: Any, assignment: str, notebook: str, student: str,
           diagnoses: dict | None) -> None:
    """Replace the rows of (``assignment``, ``notebook``, ``student``) with ``diagnoses``
    (None: remove them), in the transaction of ``connection`` (a SQLAlchemy connection
    or session; the caller commits)."""
    for table in (DIAGNOSES, PROBES):
        connection.execute(table.delete().where(
            table.c.assignment == assignment, table.c.notebook == notebook,
            table.c.student == student))
    if diagnoses is None:
        return
    checks, probes = _rows(assignment, notebook, student, diagnoses)
    if checks:
        connection.execute(DIAGNOSES.insert(), checks)
    if probes:
        connection.execute(PROBES.insert(), probes)


@dataclass(frozen=True)
class Tables:
    """The recorded rows of some assignments, as dicts (column -> value)."""

    diagnoses: list[dict]
    probes: list[dict]


def read(engine: Any, assignments: list[str] | None = None) -> Tables:
    """The rows of ``assignments`` (default: all), in a stable order."""
    out = []
    with engine.connect() as connection:
        for table in (DIAGNOSES, PROBES):
            query = select(table).order_by(*table.primary_key.columns)
            if assignments is not None:
                query = query.where(table.c.assignment.in_(assignments))
            out.append([dict(row._mapping) for row in connection.execute(query)])
    return Tables(*out)
