"""The report's plots, drawn with matplotlib (Agg) into PNG data URIs: the page needs no
network and no file beside it."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .copying import Pairs  # noqa: E402
from .items import Trend  # noqa: E402

BLUE, ORANGE, GREY = "#3b6ea8", "#d9822b", "#8a8a8a"


def data_uri(figure: Figure) -> str:
    """The figure as a PNG data URI (and closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def score_histograms(scores: dict[str, list[float]]) -> str:
    """One histogram per exercise of the students' fraction of its points."""
    names = list(scores)
    columns = min(len(names), 4) or 1
    rows = math.ceil(len(names) / columns) or 1
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows),
                                squeeze=False)
    bins = np.linspace(0, 1, 11)
    for ax, name in zip(axes.flat, names, strict=False):
        ax.hist(scores[name], bins=bins, color=BLUE, edgecolor="white")
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction of the points", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].set_ylabel("students", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    figure.tight_layout()
    return data_uri(figure)


def heatmap(counts: np.ndarray, kinds: list[str], exercises: list[str]) -> str:
    """Kinds of mistake (rows) x exercises (columns): students, annotated."""
    height = max(2.0, 0.32 * len(kinds) + 1.6)
    width = max(4.0, 0.75 * len(exercises) + 2.5)
    figure, ax = plt.subplots(figsize=(width, height))
    ax.imshow(counts, cmap="Oranges", aspect="auto", vmin=0,
              vmax=max(float(counts.max()) if counts.size else 1.0, 1.0))
    ax.set_xticks(range(len(exercises)), exercises, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(kinds)), kinds, fontsize=8)
    top = counts.max() if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        if value:
            ax.text(j, i, str(int(value)), ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 * top else "black")
    ax.set_title("students per kind of mistake and exercise", fontsize=9)
    figure.tight_layout()
    return data_uri(figure)


def trend_lines(trends: list[Trend], kinds: list[str]) -> str:
    """Mean score per assignment, and the share of students with each of ``kinds``."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    x = np.arange(len(trends))
    labels = [t.assignment for t in trends]
    left.plot(x, [100 * t.mean for t in trends], "o-", color=BLUE, label="mean")
    left.plot(x, [100 * t.median for t in trends], "s--", color=GREY, label="median")
    left.set_ylim(0, 100)
    left.set_ylabel("score (% of the points)", fontsize=8)
    left.set_title("scores after late penalties", fontsize=9)
    left.legend(fontsize=7)
    for kind in kinds:
        right.plot(x, [100 * t.kinds.get(kind, 0.0) for t in trends], "o-", label=kind)
    right.set_ylim(0, 100)
    right.set_ylabel("% of the students", fontsize=8)
    right.set_title("the most common kinds of mistake", fontsize=9)
    if kinds:
        right.legend(fontsize=7)
    for ax in (left, right):
        ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
        ax.tick_params(labelsize=7)
    figure.tight_layout()
    return data_uri(figure)


def pair_scores(pairs: Pairs) -> str:
    """How the pairs' scores are spread, with the flagging threshold."""
    figure, ax = plt.subplots(figsize=(6, 2.6))
    scores = [p.score for p in pairs.pairs]
    if scores:
        top = max(max(scores), pairs.threshold) + 0.5
        ax.hist(scores, bins=np.linspace(min(min(scores), 0.0), top, 40), color=BLUE,
                log=True)
    ax.axvline(pairs.threshold, color=ORANGE, linestyle="--", label="flag threshold")
    ax.set_xlabel("score (orders of magnitude of evidence)", fontsize=8)
    ax.set_ylabel("pairs", fontsize=8)
    ax.set_title("pairs of students who share a wrong output", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    figure.tight_layout()
    return data_uri(figure)
