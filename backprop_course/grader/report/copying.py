"""Copying found by behaviour: students whose answers go wrong in the same way.

Graded cases differ per student, so the grader also calls every answer on one *probe*
case per exercise that is the same for everyone (:mod:`..evidence`). Answers that are
right there agree, as expected, and count for nothing. Two answers that return the same
*wrong* values there (the same digest of the output, the same kinds of mistake, the same
residual pattern) behave alike; that is evidence of copying as strong as that wrong
output is rare, and stronger when their answer cells are also alike as token sequences
(copydetect's tokenizer: names, strings and layout do not count, so renaming variables
and reformatting change nothing).

A pair's **score** (in decimal orders of magnitude, like a -log10 probability) adds up,
over the exercises where both went wrong the same way,

- ``-log10(f)``: ``f`` the share of the students who answered that exercise and gave
  that wrong output (two independent students agree on it about that often), and
- ``-log10(q)``: ``q`` the share of all pairs with that wrong output whose answer cells
  are at least as similar as this pair's (1 when only these two gave it),

and takes off ``log10(1 / EPSILON)`` for each exercise where they disagree and one of
them is wrong (copied work rarely differs). A pair is **flagged** when it went wrong the
same way in at least :data:`MIN_SHARED` exercises and its score exceeds
``log10(number of pairs compared / ALPHA)``: if every student worked alone, a cohort
this size would show a pair this alike less than once in ``1 / ALPHA`` times.
A flag is evidence for a person to look at, never a penalty.
"""

from __future__ import annotations

import io
import math
import warnings
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .data import CourseData

#: How often a copier is assumed to change an answer that was copied.
EPSILON = 0.1
#: The chance of one flagged pair in a cohort of students who all worked alone.
ALPHA = 0.05
#: Flag only pairs that went wrong the same way in this many exercises or more.
MIN_SHARED = 2
#: copydetect's k-gram length and winnowing window (answer cells are a few lines).
K, WINDOW = 12, 1


@dataclass(frozen=True)
class Shared:
    """One exercise in which two students went wrong the same way."""

    assignment: str
    notebook: str
    exercise: str
    kinds: str
    pattern: str
    count: int
    answered: int
    similarity: float
    as_similar: float

    @property
    def evidence(self) -> float:
        return -math.log10(self.count / self.answered) - math.log10(self.as_similar)


@dataclass(frozen=True)
class Pair:
    """Two students, what they share, and how strongly it points to copying."""

    first: str
    second: str
    shared: tuple[Shared, ...]
    disagreements: int
    score: float
    flagged: bool

    @property
    def similarity(self) -> float:
        """The mean token similarity of their answer cells where they share a mistake."""
        return sum(s.similarity for s in self.shared) / len(self.shared)


@dataclass(frozen=True)
class Pairs:
    """Every pair that shares a wrong output, best evidence first, with the threshold."""

    pairs: list[Pair]
    students: int
    compared: int
    threshold: float

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    def clusters(self) -> list[list[str]]:
        """Groups of three or more students linked by flagged pairs."""
        links: dict[str, set[str]] = defaultdict(set)
        for pair in self.flagged:
            links[pair.first].add(pair.second)
            links[pair.second].add(pair.first)
        groups, seen = [], set()
        for start in sorted(links):
            if start in seen:
                continue
            group, todo = set(), [start]
            while todo:
                student = todo.pop()
                if student not in group:
                    group.add(student)
                    todo.extend(links[student] - group)
            seen |= group
            if len(group) >= 3:
                groups.append(sorted(group))
        return groups


def _fingerprints(data: CourseData, members: list[str], assignment: str, notebook: str,
                  exercise: str) -> dict[str, object]:
    from copydetect import CodeFingerprint

    stub = data.released(assignment, notebook, exercise) or ""
    boilerplate = np.array(sorted(CodeFingerprint("stub.py", K, WINDOW,
                                                  fp=io.StringIO(stub)).hashes), dtype=np.int64)
    out = {}
    for student in members:
        source = data.source(assignment, notebook, student, exercise) or ""
        out[student] = CodeFingerprint("answer.py", K, WINDOW, boilerplate=boilerplate,
                                       fp=io.StringIO(source))
    return out


def _similarities(data: CourseData, members: list[str], key: tuple
                  ) -> dict[tuple[str, str], float]:
    """Token similarity (0..1) of each pair of ``members``' answer cells."""
    from copydetect import compare_files

    assignment, notebook, exercise = key[:3]
    prints = _fingerprints(data, members, assignment, notebook, exercise)
    out = {}
    with warnings.catch_warnings():  # copydetect warns about empty token lists
        warnings.simplefilter("ignore")
        for a, b in combinations(members, 2):
            _, (sa, sb), _ = compare_files(prints[a], prints[b])
            out[a, b] = float(sa + sb) / 2
    return out


def find_pairs(data: CourseData) -> Pairs:
    """Every pair of students who went wrong the same way in at least one exercise of
    the report's assignments, ranked by score (see the module docstring)."""
    answered: dict[tuple, int] = defaultdict(int)
    groups: dict[tuple, list[str]] = defaultdict(list)
    fingerprint: dict[tuple[str, tuple], tuple] = {}
    for probe in data.probes:
        exercise = (probe["assignment"], probe["notebook"], probe["exercise"])
        if probe["status"] not in ("right", "wrong"):
            continue
        answered[exercise] += 1
        mark = (probe["status"], probe["kinds"], probe["residual"], probe["output"])
        fingerprint[probe["student"], exercise] = mark
        if probe["status"] == "wrong":
            groups[(*exercise, *mark[1:])].append(probe["student"])
    shared: dict[tuple[str, str], list[Shared]] = defaultdict(list)
    patterns = {(p["assignment"], p["notebook"], p["exercise"], p["kinds"], p["residual"],
                 p["output"]): p["pattern"] for p in data.probes if p["status"] == "wrong"}
    for key, members in groups.items():
        if len(members) < 2:
            continue
        members = sorted(members)
        similar = _similarities(data, members, key)
        values = sorted(similar.values())
        for (a, b), similarity in similar.items():
            at_least = len(values) - bisect_left(values, similarity)
            shared[a, b].append(Shared(key[0], key[1], key[2], key[3], patterns[key],
                                       len(members), answered[key[:3]], similarity,
                                       at_least / len(values)))
    students = sorted({s for s, _ in fingerprint})
    compared = max(len(students) * (len(students) - 1) // 2, 1)
    threshold = math.log10(compared / ALPHA)
    pairs = []
    for (a, b), found in shared.items():
        disagreements = sum(
            1 for exercise in answered
            if (a, exercise) in fingerprint and (b, exercise) in fingerprint
            and fingerprint[a, exercise] != fingerprint[b, exercise]
            and "wrong" in (fingerprint[a, exercise][0], fingerprint[b, exercise][0]))
        score = sum(s.evidence for s in found) - disagreements * math.log10(1 / EPSILON)
        pairs.append(Pair(a, b, tuple(found), disagreements, score,
                          len(found) >= MIN_SHARED and score > threshold))
    pairs.sort(key=lambda p: (-p.score, -p.similarity, p.first, p.second))
    return Pairs(pairs, len(students), compared, threshold)

