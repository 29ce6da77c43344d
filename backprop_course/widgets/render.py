"""Pure drawing: a state goes in, a picture (SVG text or PNG bytes) comes out.

Every picture is first built as a :class:`Scene`, a flat list of four primitives
(:class:`Rect`, :class:`Circle`, :class:`Line`, :class:`Text`) in pixel coordinates,
y pointing down. Two back ends draw a scene: :func:`to_svg` (hand-built SVG, used
live by the widgets and cheap enough to redraw on every slider move) and
:func:`to_png` (matplotlib Agg, used only for the static fallback). Both show the
same scene, so the picture a kernel-less reader sees is the one a student saw.

The builders on top of the primitives:

- :func:`heatmap` draws a labelled matrix with a diverging, colour-blind-safe colour
  map (``RdBu_r``: blue negative, white zero, red positive) centred on zero.
- :func:`jacobian_memory` and :func:`format_bytes` do the arithmetic of the explicit
  Jacobian versus the vector-Jacobian product.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from html import escape

import numpy as np
from matplotlib import colormaps

CMAP = colormaps["RdBu_r"]
FONT = "DejaVu Sans, Arial, sans-serif"
INK = "#222222"
MUTED = "#666666"


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle; ``attrs`` become extra SVG attributes (for tests, tooltips)."""

    x: float
    y: float
    w: float
    h: float
    fill: str = "none"
    stroke: str = "none"
    stroke_width: float = 1.0
    rx: float = 0.0
    dashed: bool = False
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Circle:
    """A circle centred on (cx, cy)."""

    cx: float
    cy: float
    r: float
    fill: str = "white"
    stroke: str = INK
    stroke_width: float = 1.0
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Line:
    """A straight line, with an arrow head at (x2, y2) if ``arrow``."""

    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = INK
    width: float = 1.0
    arrow: bool = False


@dataclass(frozen=True)
class Text:
    """One line of text, vertically centred on y; ``anchor`` is start, middle or end."""

    x: float
    y: float
    text: str
    size: float = 12.0
    anchor: str = "middle"
    fill: str = INK
    bold: bool = False
    attrs: tuple[tuple[str, str], ...] = ()


Item = Rect | Circle | Line | Text


@dataclass
class Scene:
    """A picture: its size in pixels and the primitives to draw, in order."""

    width: float
    height: float
    items: list[Item] = field(default_factory=list)
    grid: tuple[float, float] = (0.0, 0.0)  # heatmaps: top-left corner of the cells

    def add(self, other: Scene, dx: float, dy: float) -> None:
        """Draw ``other`` into this scene with its top-left corner at (dx, dy)."""
        self.items.extend(_shift(item, dx, dy) for item in other.items)


def _shift(item: Item, dx: float, dy: float) -> Item:
    if isinstance(item, Rect):
        return Rect(item.x + dx, item.y + dy, item.w, item.h, item.fill, item.stroke,
                    item.stroke_width, item.rx, item.dashed, item.attrs)
    if isinstance(item, Circle):
        return Circle(item.cx + dx, item.cy + dy, item.r, item.fill, item.stroke,
                      item.stroke_width, item.attrs)
    if isinstance(item, Line):
        return Line(item.x1 + dx, item.y1 + dy, item.x2 + dx, item.y2 + dy, item.stroke,
                    item.width, item.arrow)
    return Text(item.x + dx, item.y + dy, item.text, item.size, item.anchor, item.fill,
                item.bold, item.attrs)


# ---------------------------------------------------------------------------- SVG
def _attrs(pairs: tuple[tuple[str, str], ...]) -> str:
    return "".join(f' {k}="{escape(v)}"' for k, v in pairs)


def _svg_item(item: Item) -> str:
    if isinstance(item, Rect):
        dash = ' stroke-dasharray="5,3"' if item.dashed else ""
        return (f'<rect x="{item.x:.1f}" y="{item.y:.1f}" width="{item.w:.1f}" '
                f'height="{item.h:.1f}" rx="{item.rx:g}" fill="{item.fill}" '
                f'stroke="{item.stroke}" stroke-width="{item.stroke_width:g}"{dash}'
                f'{_attrs(item.attrs)}/>')
    if isinstance(item, Circle):
        return (f'<circle cx="{item.cx:.1f}" cy="{item.cy:.1f}" r="{item.r:g}" '
                f'fill="{item.fill}" stroke="{item.stroke}" '
                f'stroke-width="{item.stroke_width:g}"{_attrs(item.attrs)}/>')
    if isinstance(item, Line):
        head = ' marker-end="url(#bc-arrow)"' if item.arrow else ""
        return (f'<line x1="{item.x1:.1f}" y1="{item.y1:.1f}" x2="{item.x2:.1f}" '
                f'y2="{item.y2:.1f}" stroke="{item.stroke}" '
                f'stroke-width="{item.width:g}"{head}/>')
    weight = ' font-weight="bold"' if item.bold else ""
    return (f'<text x="{item.x:.1f}" y="{item.y:.1f}" font-size="{item.size:g}" '
            f'text-anchor="{item.anchor}" dominant-baseline="central" '
            f'fill="{item.fill}"{weight}{_attrs(item.attrs)}>{escape(item.text)}</text>')


def to_svg(scene: Scene, css_class: str = "bc-scene") -> str:
    """The scene as a standalone SVG document (a string); it shrinks to fit narrow pages."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" '
            'style="max-width:100%;height:auto" xml:space="preserve" '
            f'width="{scene.width:.0f}" height="{scene.height:.0f}" '
            f'viewBox="0 0 {scene.width:.0f} {scene.height:.0f}" font-family="{FONT}">'
            '<defs><marker id="bc-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
            'markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" '
            'orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker></defs>'
            f'<rect width="100%" height="100%" fill="white"/>')
    return head + "".join(_svg_item(item) for item in scene.items) + "</svg>"


# ---------------------------------------------------------------------------- PNG
def to_png(scene: Scene, dpi: int = 100) -> bytes:
    """The scene as PNG bytes, drawn by matplotlib (no pyplot, no display side effects).

    One scene pixel is one PNG pixel at ``dpi=100``; larger ``dpi`` scales up.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle as MplCircle
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    pt = 72 / 100  # scene pixels -> points
    fig = Figure(figsize=(scene.width / 100, scene.height / 100), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, scene.width)
    ax.set_ylim(scene.height, 0)
    ax.axis("off")
    for z, item in enumerate(scene.items):
        if isinstance(item, Rect):
            ax.add_patch(FancyBboxPatch(
                (item.x, item.y), item.w, item.h, boxstyle=f"round,pad=0,rounding_size={item.rx}",
                facecolor=item.fill, edgecolor=item.stroke,
                linewidth=item.stroke_width * pt if item.stroke != "none" else 0,
                linestyle="--" if item.dashed else "-", zorder=z))
        elif isinstance(item, Circle):
            ax.add_patch(MplCircle((item.cx, item.cy), item.r, facecolor=item.fill,
                                   edgecolor=item.stroke, linewidth=item.stroke_width * pt,
                                   zorder=z))
        elif isinstance(item, Line):
            ax.add_patch(FancyArrowPatch(
                (item.x1, item.y1), (item.x2, item.y2), color=item.stroke,
                linewidth=item.width * pt, shrinkA=0, shrinkB=0, zorder=z,
                arrowstyle="-|>,head_length=5,head_width=2.5" if item.arrow else "-"))
        else:
            ax.text(item.x, item.y, item.text, fontsize=item.size * pt, color=item.fill,
                    ha={"start": "left", "middle": "center", "end": "right"}[item.anchor],
                    va="center", fontweight="bold" if item.bold else "normal", zorder=z)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


# ------------------------------------------------------------------------ heatmap
def colours(values: np.ndarray, vmax: float) -> list[str]:
    """Hex colours of ``values`` on the diverging map, symmetric in [-vmax, vmax]."""
    rgba = CMAP(np.clip(0.5 + 0.5 * np.asarray(values, float).ravel() / vmax, 0, 1))
    return ["#" + "".join(f"{round(255 * c):02x}" for c in rgb[:3]) for rgb in rgba]


def _text_colour(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else INK


def format_number(v: float) -> str:
    """A matrix entry as printed on its cell: 2 decimals, or 2 significant digits if tiny."""
    if v == 0:
        return "0"
    if abs(v) < 0.005 or abs(v) >= 1000:
        return f"{v:.1e}"
    return f"{v:.2f}"


def heatmap(
    matrix: np.ndarray,
    title: str,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    cell: float = 40.0,
    annotate: bool = True,
    outline: np.ndarray | None = None,
    dashed: np.ndarray | None = None,
    name: str = "matrix",
) -> Scene:
    """A labelled heatmap of a 2-D array.

    Parameters
    ----------
    matrix : np.ndarray, shape (R, C)
        The values. Colour scale: symmetric around 0, ``vmax = max |matrix|`` (1 if all 0).
    title : str
        Drawn above the matrix (state the shape here).
    row_labels, col_labels : list of str, optional
        R and C labels drawn left of the rows and above the columns.
    cell : float
        Side of one cell in pixels.
    annotate : bool
        Print each value on its cell (do it for small matrices only).
    outline, dashed : np.ndarray of bool, shape (R, C), optional
        Cells to mark with a thick solid (``outline``) or dashed (``dashed``) border.
    name : str
        Written into the cells' ``data-matrix`` attribute, so tests can read the values
        back from the SVG (each cell also carries ``data-i``, ``data-j``, ``data-value``).

    Returns
    -------
    Scene
        Origin at the top-left of the title.
    """
    m = np.atleast_2d(np.asarray(matrix, float))
    rows, cols = m.shape
    vmax = float(np.max(np.abs(m))) if m.size and np.any(m) else 1.0
    if not np.isfinite(vmax):
        vmax = 1.0
    left = 8 + 7 * max((len(s) for s in row_labels), default=0) if row_labels else 4
    top = 24 + (18 if col_labels else 0)
    scene = Scene(left + cols * cell + 4, top + rows * cell + 4, grid=(left, top))
    scene.items.append(Text(0, 9, title, 13, "start", bold=True))
    for j, label in enumerate(col_labels or []):
        scene.items.append(Text(left + (j + 0.5) * cell, top - 9, label, 11, fill=MUTED))
    for i, label in enumerate(row_labels or []):
        scene.items.append(Text(left - 5, top + (i + 0.5) * cell, label, 11, "end", MUTED))
    fills = colours(np.nan_to_num(m), vmax)
    font = min(12.0, cell * 0.3)
    for i in range(rows):
        for j in range(cols):
            v = m[i, j]
            fill = fills[i * cols + j]
            x, y = left + j * cell, top + i * cell
            scene.items.append(Rect(x, y, cell, cell, fill, "#ffffff", 1, attrs=(
                ("class", "cell"), ("data-matrix", name), ("data-i", str(i)),
                ("data-j", str(j)), ("data-value", repr(float(v))))))
            if annotate:
                scene.items.append(Text(x + cell / 2, y + cell / 2, format_number(v), font,
                                        fill=_text_colour(fill)))
    for mask, is_dashed in ((outline, False), (dashed, True)):
        if mask is None:
            continue
        for i, j in zip(*np.nonzero(np.atleast_2d(mask)), strict=True):
            box = (left + j * cell + 3, top + i * cell + 3, cell - 6, cell - 6)
            scene.items.append(Rect(*box, stroke="white", stroke_width=5))  # visible on dark
            scene.items.append(Rect(*box, stroke=INK, stroke_width=2.5, dashed=is_dashed,
                                    attrs=(("class", "mark"), ("data-i", str(i)),
                                           ("data-j", str(j)))))
    scene.items.append(Rect(left, top, cols * cell, rows * cell, stroke="#999999"))
    return scene


def text_block(lines: list[str], width: float, size: float = 12.0) -> Scene:
    """Lines of plain text, one under the other; at least ``width`` wide, wider if a
    line needs it (estimated at 0.6 em per character)."""
    step = size * 1.5
    needed = max((len(line) for line in lines), default=0) * size * 0.6
    scene = Scene(max(width, needed), step * len(lines) + 4)
    scene.items.extend(Text(0, step * (k + 0.5), line, size, "start")
                       for k, line in enumerate(lines))
    return scene


# ------------------------------------------------------------------------- memory
def format_bytes(n: float) -> str:
    """Bytes in binary units, e.g. ``format_bytes(2**38) == '256 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def jacobian_memory(batch: int, d_in: int, d_out: int, itemsize: int = 4) -> dict[str, int]:
    """Memory of one layer's explicit Jacobian for a batch versus what its VJP needs.

    Parameters
    ----------
    batch, d_in, d_out : int
        N, D and M: the layer maps an (N, D) input to an (N, M) output.
    itemsize : int
        Bytes per number (4 for float32, 8 for float64).

    Returns
    -------
    dict
        ``jacobian_entries`` = (N*M) * (N*D), ``jacobian_bytes``, ``vjp_entries`` =
        N*M (upstream gradient) + N*D (downstream gradient), ``vjp_bytes``.
    """
    jac = (batch * d_out) * (batch * d_in)
    vjp = batch * d_out + batch * d_in
    return {"jacobian_entries": jac, "jacobian_bytes": jac * itemsize,
            "vjp_entries": vjp, "vjp_bytes": vjp * itemsize}


def memory_lines(batch: int, d_in: int, d_out: int, dtype: str = "float32") -> list[str]:
    """Two sentences comparing the explicit Jacobian with the VJP (see :func:`jacobian_memory`)."""
    mem = jacobian_memory(batch, d_in, d_out, np.dtype(dtype).itemsize)
    return [
        f"Explicit Jacobian, N={batch}, D={d_in}, M={d_out}, {dtype}: "
        f"(N·M) × (N·D) = {batch * d_out:,} × {batch * d_in:,} numbers "
        f"= {format_bytes(mem['jacobian_bytes'])}",
        f"VJP: g (N×M) in, ∂L/∂x (N×D) out = {mem['vjp_entries']:,} numbers "
        f"= {format_bytes(mem['vjp_bytes'])}",
    ]
