"""The report as one self-contained HTML page: inline CSS, plots as data URIs, no script.

Every string that comes from the course (student ids and names, answer cells, exercise
and assignment names) is escaped with :func:`html.escape` on its way in: only fragments
built here from escaped parts are :class:`Markup`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from html import escape
from pathlib import Path
from urllib.parse import quote

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1180px; padding: 1.5em 2em 4em; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2.2em; border-bottom:
1px solid #d0d7de; padding-bottom: .2em; } h3 { margin-top: 1.6em; }
.lead { color: #57606a; margin-top: 0; }
nav { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
      padding: .5em 1em; margin: 1em 0; } nav a { margin-right: 1.2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13.5px; }
th, td { border: 1px solid #d0d7de; padding: .3em .6em; text-align: left;
         vertical-align: top; } th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fff4e5; }
.note { color: #57606a; font-size: 13px; } .warn { color: #9a3412; font-weight: 600; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px; padding: .5em;
      overflow-x: auto; font-size: 12.5px; margin: .3em 0; white-space: pre; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
code { background: #f6f8fa; padding: 0 .25em; border-radius: 3px; }
"""


class Markup(str):
    """HTML that is safe as it is (built here from escaped parts)."""


def h(value: object) -> Markup:
    """``value`` as HTML: escaped, unless it is :class:`Markup` already."""
    return value if isinstance(value, Markup) else Markup(escape(str(value), quote=True))


def join(parts: Iterable[object], separator: str = "") -> Markup:
    return Markup(escape(separator).join(h(p) for p in parts))


def tag(name: str, content: object = "", **attributes: str) -> Markup:
    """``<name attr="...">content</name>`` with every attribute value escaped."""
    attrs = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(str(v), quote=True)}"'
                    for k, v in attributes.items() if v != "")
    return Markup(f"<{name}{attrs}>{h(content)}</{name}>")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(headers: list[str], rows: list[list[object]], numeric: Iterable[int] = (),
          row_classes: list[str] | None = None, id_: str = "") -> Markup:
    """A table; columns ``numeric`` are right-aligned."""
    numeric = set(numeric)
    head = "".join(tag("th", t, class_="num" if i in numeric else "")
                   for i, t in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(tag("td", c, class_="num" if i in numeric else "")
                        for i, c in enumerate(row))
        body.append(tag("tr", Markup(cells), class_=(row_classes or [""] * len(rows))[r]))
    attributes = {"id": id_} if id_ else {}
    return tag("table", Markup(tag("thead", Markup(tag("tr", Markup(head))))
                               + tag("tbody", Markup("".join(body)))), **attributes)


def image(uri: str, alt: str) -> Markup:
    if not uri.startswith("data:image/png;base64,"):
        raise ValueError("the report embeds PNG data URIs only")
    return Markup(f'<img src="{uri}" alt="{escape(alt, quote=True)}">')


def pre(text: str) -> Markup:
    return tag("pre", text)


def page(title: str, lead: str, sections: list[tuple[str, str, Markup]]) -> str:
    """The whole document: ``sections`` are (anchor, heading, body)."""
    nav = tag("nav", join([tag("a", heading, href=f"#{anchor}")
                           for anchor, heading, _ in sections]))
    body = "".join(tag("section", Markup(tag("h2", heading) + content), id=anchor)
                   for anchor, heading, content in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{h(title)}</title><style>{CSS}</style></head><body>"
            f"{tag('h1', title)}{tag('p', lead, class_='lead')}{nav}{body}</body></html>\n")


SECTION = re.compile(r"\b(\d\d) section (\d+)")


def lesson_links(lesson: str, notebooks: dict[str, Path], here: Path) -> Markup:
    """A lesson reference of :data:`~backprop_course.checks.kinds.ABOUT` (``"03 section
    3 (...)"``) with each notebook it names linked (relative to ``here``) and the
    section's heading."""
    out, last = [], 0
    for match in SECTION.finditer(lesson):
        out.append(h(lesson[last:match.start()]))
        notebook = notebooks.get(match.group(1))
        label = match.group(0)
        if notebook is None:
            out.append(h(label))
        else:
            heading = section_heading(notebook, int(match.group(2)))
            href = quote(os.path.relpath(notebook, here).replace(os.sep, "/"))
            out.append(tag("a", label, href=href, title=heading or notebook.name))
            if heading:
                out.append(h(f" “{heading}”"))
        last = match.end()
    out.append(h(lesson[last:]))
    return join(out)


def section_heading(notebook: Path, number: int) -> str:
    """The title of section ``number`` (``## 3. Title``) of a lesson notebook ("" if none)."""
    import json

    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return ""
    pattern = re.compile(rf"^##\s+{number}\.\s+(.+)$", re.M)
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", ""))
            found = pattern.search(source)
            if found:
                return found.group(1).strip()
    return ""
