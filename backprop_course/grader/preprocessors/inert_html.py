"""Make everything a student controls in a notebook inert for any HTML renderer.

nbconvert renders raw HTML in markdown, ``text/html`` and ``application/javascript``
outputs verbatim unless ``HTMLExporter.sanitize_html`` is on, and nbgrader's ``feedback``
and ``formgrade`` templates render markdown cells without sanitizing even when it is. A
script in the feedback page or in formgrader's submission page runs with the instructor's
Jupyter session: it can set any student's score through formgrader's API or open a
terminal. :class:`InertHTML` cleans the notebook itself, so that whatever renders it
later (nbgrader's feedback, formgrader, a plain ``jupyter nbconvert --to html``, JupyterLab)
shows student content as text or as sanitized markup:

* a markdown cell, ``text/markdown`` or ``text/latex`` output is kept as it is when it is
  plain markdown: no raw HTML, no mermaid block (nbconvert inserts those unescaped), no
  reference to a missing attachment, and nothing in its nbconvert rendering that the
  sanitizer would change (a ``javascript:`` link, say). Otherwise it becomes a fenced
  code block that shows the student's text verbatim under a note. Raw HTML is never kept:
  deciding whether it is harmless would need a parser that reads it exactly as a
  browser does;
* raw cells and ``text/html`` outputs go through the sanitizer (nh3, the binding of the
  Rust crate ammonia, with html5ever, a browser-grade parser);
* outputs of any other type but plain text, JSON and PNG/JPEG/GIF images (JavaScript,
  SVG, widget views, ``application/vnd.*``) are dropped, and a plain-text note says so
  where nothing but plain text is left to show;
* an output's metadata keeps only an image's whole-number ``width`` and ``height`` and its
  ``needs_background``: nbconvert prints the size unquoted into the ``<img>`` tag (a width
  of ``1 onerror=...`` is an event handler) and ``filenames`` as its ``src``;
* cell attachments keep only base64 PNG/JPEG/GIF images; cell metadata ``jupyter`` and
  notebook metadata ``widgets`` (widget state, rendered by the widget manager) are
  dropped, and so is ``nbgrader`` metadata whose ``grade_id`` nbgrader would refuse
  (formgrader prints it unescaped into attributes); fields templates read are coerced
  to the types they expect, and a cell of an unknown type becomes a sanitized raw cell.

The pass is idempotent and never raises: a cell it cannot clean is replaced by a note.
:func:`configure_inert_pages` turns sanitizing on in the exporters as well.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from html import escape
from html.parser import HTMLParser
from typing import Any

import nh3
from nbconvert.exporters.exporter import ResourcesDict
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbformat import NotebookNode, from_dict
from nbgrader.preprocessors import NbGraderPreprocessor
from pygments.token import STANDARD_TYPES
from traitlets.config import Config

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
KEPT_TYPES = IMAGE_TYPES | {"text/plain", "application/json"}
MARKDOWN_TYPES = frozenset({"text/markdown", "text/latex"})
OUTPUT_TYPES = frozenset({"stream", "error", "display_data", "execute_result"})
DROPPED_CELL_METADATA = ("jupyter",)
DROPPED_NOTEBOOK_METADATA = ("widgets",)
NOTE = ("*The grader shows this as text: it held HTML, a diagram or a link that a browser "
        "could run.*")
REMOVED = "[The grader removed an output of type {} here: a browser could run code in it.]"
UNCLEANABLE = "[The grader removed this cell: it could not be shown safely.]"
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
SURROGATE = re.compile(r"[\ud800-\udfff]")
CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # nbformat's schema: renderers refuse others
GRADE_ID = re.compile(r"[a-zA-Z0-9_-]+")  # nbgrader's rule; its templates print it unescaped
IMAGE_SIZE = re.compile(r"[0-9]{1,5}")


def _cleaner() -> nh3.Cleaner:
    """ammonia's default allow-list, plus what nbconvert's markdown rendering emits.

    Heading ids, table alignment, task-list checkboxes and the class names of pygments
    and nbconvert; no other class (formgrader's Bootstrap classes could overlay the page).
    """
    attributes = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
    attributes.update({f"h{level}": {"id"} for level in range(1, 7)})
    for cell in ("th", "td"):
        attributes[cell] = attributes[cell] | {"style"}
    attributes["input"] = {"disabled", "checked"}
    classes = {
        "span": {name for name in STANDARD_TYPES.values() if name},
        "div": {"highlight"}, "a": {"anchor-link"}, "table": {"dataframe"},
        "li": {"task-list-item"}, "input": {"task-list-item-checkbox"},
    }
    return nh3.Cleaner(
        tags=nh3.ALLOWED_TAGS | {"input"}, attributes=attributes, allowed_classes=classes,
        tag_attribute_values={"input": {"type": {"checkbox"}}},
        url_schemes={"http", "https", "mailto"}, link_rel=None,
        filter_style_properties={"text-align"})


CLEANER = _cleaner()


def _text(value: Any) -> str:
    """``value`` as the string a renderer expects (nbformat allows lists of lines)."""
    if isinstance(value, str):
        return SURROGATE.sub("\ufffd", value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return "".join(map(_text, value))
    return "" if value is None else _text(str(value))


def sanitize(html: str | bytes) -> str:
    """``html`` with everything that could run, load a frame or restyle the page removed.

    Cleaning again can still change a result (nested links, rebuilt by the HTML parser):
    this cleans until nothing changes, and shows markup that does not settle as text.
    """
    html = _text(html)
    for _ in range(3):
        clean = CLEANER.clean(html)
        if clean == html:
            return clean
        html = clean
    return CLEANER.clean(escape(html))


class _Markup(HTMLParser):
    """What a fragment of HTML consists of: tags, their attributes and the visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, ...]] = []
        self._text: list[str] = []
        self.feed(html)
        self.close()
        self._flush()

    def _flush(self) -> None:
        text = " ".join("".join(self._text).replace("\0", "").split())
        if text:
            self.items.append(("", text))
        self._text = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._flush()
        self.items.append((tag, *sorted(f"{name}={value or ''}" for name, value in attrs)))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        self._flush()
        self.items.append(("/" + tag,))

    def handle_data(self, data: str) -> None:
        self._text.append(data)


class _Inspector(IPythonRenderer):
    """nbconvert's markdown renderer that notes what it would pass through unescaped."""

    def __init__(self, attachments: Mapping[str, Any]) -> None:
        super().__init__(escape=False)
        self.attachments = attachments
        self.unsafe = False

    def block_html(self, html: str) -> str:
        self.unsafe = True
        return ""

    def inline_html(self, html: str) -> str:
        self.unsafe = True
        return ""

    def block_mermaidjs(self, code: str) -> str:
        self.unsafe = True
        return ""

    def _embed_image_or_attachment(self, src: str) -> str:
        name = src.removeprefix("attachment:")
        if name != src:
            self.unsafe |= name not in self.attachments
            return "attachment"
        return src


def _is_plain_markdown(text: str, attachments: Mapping[str, Any]) -> bool:
    """Whether nbconvert renders ``text`` without raw HTML, a mermaid block or a missing
    attachment, into markup that the sanitizer leaves as it is."""
    inspector = _Inspector(attachments)
    try:
        html = MarkdownWithMath(renderer=inspector).render(text)
        return not inspector.unsafe and _Markup(html).items == _Markup(sanitize(html)).items
    except Exception:  # an input the renderer cannot read is not shown as markdown
        return False


def inert_markdown(text: str, attachments: Mapping[str, Any] | None = None) -> str:
    """``text`` if it is plain markdown, else ``text`` in a fenced code block under a note.

    Parameters
    ----------
    text
        Markdown source (a cell's, or a ``text/markdown`` or ``text/latex`` output's).
    attachments
        The cell's attachments that :func:`inert_attachments` kept.
    """
    text = _text(text)
    if _is_plain_markdown(text, attachments or {}):
        return text
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{NOTE}\n\n{fence}\n{text}\n{fence}\n"


def inert_attachments(attachments: Any) -> dict[str, dict[str, str]]:
    """The base64 PNG, JPEG and GIF images of a cell's ``attachments``; nothing else."""
    if not isinstance(attachments, Mapping):
        return {}
    kept = {}
    for name, bundle in attachments.items():
        if not isinstance(bundle, Mapping):
            continue
        images = {kind: _text(data) for kind, data in bundle.items() if kind in IMAGE_TYPES}
        images = {kind: data for kind, data in images.items() if BASE64.fullmatch(data)}
        if images:
            kept[_text(name)] = images
    return kept


def _inert_data(data: Any) -> tuple[dict[str, Any], list[str]]:
    """A mime bundle's safe entries, and the types it had that were dropped."""
    kept: dict[str, Any] = {}
    dropped = []
    for kind, value in data.items() if isinstance(data, Mapping) else ():
        if kind == "text/html":
            kept[kind] = sanitize(_text(value))
        elif kind in MARKDOWN_TYPES:
            kept[kind] = inert_markdown(value)
        elif kind == "application/json":
            kept[kind] = value
        elif kind in KEPT_TYPES and (kind == "text/plain" or BASE64.fullmatch(_text(value))):
            kept[kind] = _text(value)
        else:
            dropped.append(_text(kind))
    return kept, dropped


def inert_outputs(outputs: Any) -> list[dict[str, Any]]:
    """A code cell's outputs with every field a renderer reads made safe.

    Streams and errors keep their text (templates escape it); rich outputs keep their
    safe mime types, and a note follows an output left with no more than its plain text
    (a widget view keeps its PNG picture, and then needs none).
    """
    kept = []
    for output in outputs if isinstance(outputs, list) else ():
        kind = output.get("output_type") if isinstance(output, Mapping) else None
        if kind not in OUTPUT_TYPES:
            continue
        if kind == "stream":
            name = output.get("name")
            kept.append({"output_type": kind, "name": name if name in ("stdout", "stderr")
                         else "stdout", "text": _text(output.get("text"))})
            continue
        if kind == "error":
            traceback = output.get("traceback")
            kept.append({"output_type": kind, "ename": _text(output.get("ename")),
                         "evalue": _text(output.get("evalue")),
                         "traceback": [_text(line) for line in traceback]
                         if isinstance(traceback, list) else []})
            continue
        data, dropped = _inert_data(output.get("data"))
        clean = {"output_type": kind, "data": data,
                 "metadata": _image_metadata(output.get("metadata"), data)}
        if kind == "execute_result":
            clean["execution_count"] = _count(output.get("execution_count"))
        kept.append(clean)
        if dropped and not data.keys() - {"text/plain"}:  # nothing left to see but a repr
            kept.append({"output_type": "display_data", "metadata": {}, "data": {
                "text/plain": REMOVED.format(", ".join(dropped))}})
    return kept


def _image_metadata(metadata: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """What templates may read of an output's ``metadata``: per image type of ``data``, a
    whole-number ``width`` and ``height`` and a ``needs_background`` of light or dark."""
    kept: dict[str, Any] = {}
    for kind in sorted(IMAGE_TYPES & data.keys()):
        fields = metadata.get(kind) if isinstance(metadata, Mapping) else None
        fields = fields if isinstance(fields, Mapping) else {}
        image = {key: int(_text(fields[key])) for key in ("width", "height")
                 if not isinstance(fields.get(key), bool)
                 and IMAGE_SIZE.fullmatch(_text(fields.get(key)))}
        if fields.get("needs_background") in ("light", "dark"):
            image["needs_background"] = fields["needs_background"]
        if image:
            kept[kind] = image
    return kept


def _count(value: Any) -> int | None:
    """An execution count as nbformat allows it: an integer or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _metadata(value: Any, dropped: tuple[str, ...]) -> dict[str, Any]:
    """A copy of a metadata dict without the ``dropped`` keys, with valid ``tags``."""
    metadata = {key: item for key, item in value.items() if key not in dropped} \
        if isinstance(value, Mapping) else {}
    if "tags" in metadata:  # nbformat: unique strings without commas
        tags = metadata["tags"] if isinstance(metadata["tags"], list) else []
        metadata["tags"] = list(dict.fromkeys(
            _text(tag) for tag in tags if isinstance(tag, str) and tag and "," not in tag))
    return metadata


def inert_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``cell`` that no renderer can turn into running code."""
    kind = cell.get("cell_type")
    cell_id = _text(cell.get("id"))
    clean: dict[str, Any] = {"id": cell_id} if CELL_ID.fullmatch(cell_id) else {}
    clean["metadata"] = _metadata(cell.get("metadata"), DROPPED_CELL_METADATA)
    nbgrader = clean["metadata"].get("nbgrader")
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, Mapping) else None
    if "nbgrader" in clean["metadata"] and not (
            isinstance(grade_id, str) and GRADE_ID.fullmatch(grade_id)):
        del clean["metadata"]["nbgrader"]
    source = _text(cell.get("source"))
    if kind == "code":
        clean.update(cell_type=kind, source=source,
                     execution_count=_count(cell.get("execution_count")),
                     outputs=inert_outputs(cell.get("outputs")))
        return clean
    attachments = inert_attachments(cell.get("attachments"))
    if kind == "markdown":
        clean.update(cell_type=kind, source=inert_markdown(source, attachments))
    else:  # raw, or a type no renderer knows: templates print an unknown cell's "type"
        clean.update(cell_type="raw", source=sanitize(source))
    if attachments:
        clean["attachments"] = attachments
    return clean


def _node(value: Any, fallback: dict[str, Any]) -> NotebookNode:
    """``value`` as a NotebookNode (attribute access, as templates use), else ``fallback``.

    A pathological value (nested deeper than the recursion limit, say) must not stop the
    grader: it is replaced.
    """
    try:
        return from_dict(value)
    except Exception:
        return from_dict(fallback)


class InertHTML(NbGraderPreprocessor):
    """Make every student-controlled part of a notebook inert for HTML renderers.

    Add it last to ``Autograde.sanitize_preprocessors`` and
    ``Autograde.autograde_preprocessors`` (outputs are made while autograding), and to
    ``HTMLExporter.preprocessors`` through :func:`configure_inert_pages`.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict
                   ) -> tuple[NotebookNode, ResourcesDict]:
        """Clean ``nb`` in place and return it with ``resources`` unchanged."""
        note = {"cell_type": "raw", "metadata": {}, "source": UNCLEANABLE}
        cells = nb.get("cells")
        cells = cells if isinstance(cells, list) else []
        nb["cells"] = [_node(_inert_cell_or(cell, note), note) for cell in cells]
        nb["metadata"] = _node(_metadata(nb.get("metadata"), DROPPED_NOTEBOOK_METADATA), {})
        return nb, resources


def _inert_cell_or(cell: Any, note: dict[str, Any]) -> dict[str, Any]:
    """:func:`inert_cell` of ``cell``, or ``note`` if it is not a cell or cannot be cleaned."""
    try:
        return inert_cell(cell) if isinstance(cell, Mapping) else note
    except Exception:  # see _node: a cell that cannot be cleaned is not shown
        return note


def configure_inert_pages(c: Config) -> Config:
    """Turn sanitizing on in the pages nbgrader renders; return ``c``.

    nbgrader's ``generate_feedback`` and formgrader's submission page both render with
    an ``HTMLExporter`` built from the course's configuration, so this reaches both:

    * :class:`InertHTML` runs on every notebook they render, also on one autograded
      before it was configured;
    * ``sanitize_html`` makes nbconvert's templates leave out JavaScript and widget
      outputs and pass HTML outputs (and, in nbconvert's own templates, markdown) through
      their ``clean_html`` filter, which is :func:`sanitize` instead of nbconvert's
      bleach allow-list: that one shows a paragraph, an image or a table header of a
      harmless output as escaped tags.
    """
    c.HTMLExporter.sanitize_html = True
    c.HTMLExporter.filters = {**c.HTMLExporter.get("filters", {}), "clean_html": sanitize}
    preprocessors = list(c.HTMLExporter.get("preprocessors", []))
    if InertHTML not in preprocessors:
        c.HTMLExporter.preprocessors = [*preprocessors, InertHTML]
    return c
