"""InertHTML: every carrier of student HTML or JavaScript is inert after it, nothing else.

Each carrier is checked in the HTML that nbconvert's ``lab`` and ``classic`` templates and
nbgrader's ``feedback`` and ``formgrade`` templates make of a notebook: live before the
preprocessor (where stock nbconvert renders it live), inert after, and unchanged by a
second pass. The browser test (``test_browser_inert.py``) runs the same kind of payloads
in chromium through nbgrader itself.
"""

from __future__ import annotations

import base64
import copy
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import InvalidNotebook, markdown2html_mistune
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output, new_raw_cell
from traitlets.config import Config

from backprop_course.grader.preprocessors.inert_html import (
    NOTE,
    InertHTML,
    configure_inert_pages,
    inert_markdown,
    sanitize,
)

pytestmark = [  # fuzzed notebooks may lack ids, or have outputs nbconvert cannot show
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
    pytest.mark.filterwarnings("ignore:Your element with mimetype:UserWarning"),
]
MARK = "pwned"
JS = f"{MARK}()"
SVG = f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}"><script>{JS}</script></svg>'
FORMGRADER = Path(__import__("nbgrader").__file__).parent / "server_extensions" / "formgrader"
NBGRADER_TEMPLATES = FORMGRADER / "templates"
BOOTSTRAP_CSS = FORMGRADER / "static" / "node_modules" / "bootstrap" / "dist" / "css"
TEMPLATES = ("lab", "classic", "feedback", "formgrade")
HARMLESS = r"""# Backprop, *by hand*

Some **bold**, `code < 2`, ~~gone~~, a [link](https://example.org "title") and
<https://example.org/auto>.

- one
- [x] done

| x | dL/dx |
|:--|------:|
| 1 | $\sigma(x)(1-\sigma(x))$ |

> a quote with $a<b$ and
> $$\frac{\partial L}{\partial x} = \sum_i w_i$$

```python
def relu(x):
    return x if x > 0 else 0
```

![a plot](https://example.org/plot.png)
"""


def markdown(source: str, **attachments: dict[str, str]) -> nbformat.NotebookNode:
    cell = new_markdown_cell(source)
    if attachments:
        cell.attachments = attachments
    return cell


def outputs(*bundles: dict[str, Any]) -> nbformat.NotebookNode:
    return new_code_cell("show()", execution_count=1, outputs=[
        new_output("display_data", data=bundle) for bundle in bundles])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def image_output(metadata: dict[str, Any]) -> nbformat.NotebookNode:
    return new_code_cell("show()", execution_count=1, outputs=[new_output(
        "display_data", data={"image/png": b64("png")}, metadata=metadata)])


# name -> (cell, whether stock nbconvert renders it live in some template)
CARRIERS: dict[str, tuple[nbformat.NotebookNode, bool]] = {
    "md_script": (markdown(f"Hi <script>{JS}</script>"), True),
    "md_img_onerror": (markdown(f"<img src=x onerror={JS}>"), True),
    "md_svg_onload": (markdown(f"<svg onload={JS}></svg>"), True),
    "md_javascript_link": (markdown(f"[click](javascript:{JS})"), True),
    "md_javascript_reference": (markdown(f"[click][x]\n\n[x]: javascript:{JS}"), True),
    "md_javascript_autolink": (markdown(f"<javascript:{JS}>"), True),
    "md_iframe_srcdoc": (markdown(f'<iframe srcdoc="<script>{JS}</script>"></iframe>'), True),
    "md_style": (markdown(f"<style>body {{ background: url({MARK}.png) }}</style>"), True),
    "md_form": (markdown(f'<form action="javascript:{JS}"><button>go</button></form>'), True),
    "md_meta_refresh": (markdown(f'<meta http-equiv="refresh" content="0;url={MARK}">'), True),
    "md_base": (markdown(f'<base href="https://{MARK}.example/">'), True),
    "md_object_embed": (markdown(f'<object data="{MARK}.swf"></object><embed src="{MARK}">'),
                        True),
    "md_mermaid": (markdown(f"```mermaid\ngraph TD\n<img src=x onerror={JS}>\n```"), True),
    "md_math_breakout": (markdown(f"$x$ <img src=x onerror={JS}> $y$"), True),
    "md_svg_attachment": (markdown("![p](attachment:p.svg)", **{
        "p.svg": {"image/svg+xml": b64(SVG)}}), False),
    "md_missing_attachment": (markdown("![p](attachment:nothing.png)"), False),
    "raw_html": (new_raw_cell(f"<script>{JS}</script><img src=x onerror={JS}>",
                              metadata={"raw_mimetype": "text/html"}), False),
    "out_html_script": (outputs({"text/html": f"<b>hi</b><script>{JS}</script>"}), True),
    "out_html_onerror": (outputs({"text/html": f"<img src=x onerror={JS}>"}), True),
    "out_javascript": (outputs({"application/javascript": JS, "text/plain": "js"}), True),
    "out_svg": (outputs({"image/svg+xml": SVG}), False),
    "out_markdown": (outputs({"text/markdown": f"<img src=x onerror={JS}>"}), True),
    "out_latex": (outputs({"text/latex": f"$x$ <img src=x onerror={JS}>"}), False),
    "out_widget_view": (outputs({"application/vnd.jupyter.widget-view+json": {
        "model_id": MARK, "version_major": 2, "version_minor": 0}}), False),
    # nbconvert prints an image's size unquoted, and its "filenames" as the src
    "out_png_width": (image_output({"image/png": {"width": f"1 onerror={JS}"}}), True),
    "out_png_height_top": (image_output({"height": f"1 onload={JS}"}), True),
    "out_png_filenames": (image_output({"filenames": {"image/png": f"javascript:{JS}"}}),
                          True),
    # formgrader and the feedback page print a grade_id unescaped into attributes
    "nbgrader_grade_id": (new_markdown_cell("answer", metadata={"nbgrader": {
        "grade": False, "solution": True, "locked": False, "schema_version": 3,
        "grade_id": f'x"><img src=x onerror={JS}>'}}), True),
}


SCRIPT_URLS = ("javascript:", "vbscript:", "data:")


LOADERS = ("base", "meta", "iframe", "frame", "object", "embed", "form", "link")


def runs(tag: str, name: str, value: str) -> bool:
    """Whether an attribute carrying the mark would run it or load it: any attribute of
    an element that loads, navigates or rebases; otherwise not a text attribute (a
    heading's id, an image's alt), nor a link or image source unless a script URL."""
    if MARK not in value or name in ("id", "alt", "title"):
        return False
    if tag in LOADERS or name not in ("href", "src"):
        return True
    return "".join(value.split()).lower().startswith(SCRIPT_URLS)


class Live(HTMLParser):
    """Where a page would run the payload: an attribute that :func:`runs` it (an event
    handler, a javascript: URL, a srcdoc, a refresh, an object's data, ...) and a script
    or style element whose text carries the mark."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[str] = []
        self._open = ""
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open = tag
        self.found += [f"<{tag} {name}={value!r}>" for name, value in attrs
                       if runs(tag, name, value or "")]

    def handle_data(self, data: str) -> None:
        if self._open in ("script", "style") and MARK in data:
            self.found.append(f"<{self._open}>{data.strip()[:80]}")


class Active(HTMLParser):
    """Every element or attribute of a page that can run code or load active content;
    the template's own are in an empty notebook's page too."""

    TAGS = frozenset({"script", "iframe", "frame", "object", "embed", "base", "form", "meta",
                      "link", "style", "svg", "math"})

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.TAGS:
            self.found.append(f"<{tag} {sorted(attrs)}>")
        for name, value in attrs:
            url = "".join((value or "").split()).lower()
            if name.startswith("on") or name == "srcdoc" or url.startswith(
                    ("javascript:", "vbscript:", "data:text/html")):
                self.found.append(f"<{tag} {name}={value!r}>")


@pytest.fixture(scope="module")
def exporters() -> dict[str, HTMLExporter]:
    """Stock exporters (nbconvert's templates and nbgrader's), no sanitizing."""
    made = {name: HTMLExporter(template_name=name) for name in ("lab", "classic")}
    for name in ("feedback", "formgrade"):
        made[name] = HTMLExporter(template_name=name,
                                  extra_template_basedirs=[str(NBGRADER_TEMPLATES)],
                                  extra_template_paths=[str(BOOTSTRAP_CSS)])
    return made


RESOURCES = {  # what GetGrades and formgrader's SubmissionHandler give the templates
    "nbgrader": {"notebook": "nb", "score": 0, "max_score": 1, "late_penalty": 0},
    "index": 0, "total": 1, "base_url": "", "submission_id": "s", "notebook_id": "nb",
    "assignment_id": "a", "student": "st", "first_name": "", "last_name": "",
}


def page(exporter: HTMLExporter, nb: nbformat.NotebookNode) -> str:
    html, _ = exporter.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
    return html


def live(exporter: HTMLExporter, nb: nbformat.NotebookNode) -> list[str]:
    """What runs in the page, or a note that nbconvert refuses to render ``nb``."""
    try:
        return Live(page(exporter, nb)).found
    except InvalidNotebook as error:
        return [f"not rendered: {error}"]


def inert(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cleaned, _ = InertHTML().preprocess(copy.deepcopy(nb), {})
    return cleaned


def notebook(*cells: nbformat.NotebookNode, **metadata: Any) -> nbformat.NotebookNode:
    """A v4.5 notebook of ``cells`` (not validated: some carriers are invalid on purpose)."""
    nb = nbformat.from_dict({"cells": copy.deepcopy(cells), "metadata": metadata,
                             "nbformat": 4, "nbformat_minor": 5})
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"
    return nb


@pytest.mark.parametrize("name", CARRIERS)
def test_carrier_is_inert_after(name: str, exporters: dict[str, HTMLExporter]) -> None:
    cell, live_before = CARRIERS[name]
    nb = notebook(cell)
    before = {template: live(exporters[template], nb) for template in TEMPLATES}
    assert any(MARK in "".join(found) for found in before.values()) == live_before, before
    cleaned = inert(nb)
    for template in TEMPLATES:
        html = page(exporters[template], cleaned)
        assert Live(html).found == [], template
        assert Active(html).found == Active(page(exporters[template], notebook())).found
    nbformat.validate(cleaned)


def test_each_kind_is_made_inert_the_documented_way() -> None:
    cleaned = inert(notebook(*(cell for cell, _ in CARRIERS.values())))
    cells = dict(zip(CARRIERS, cleaned.cells, strict=True))
    assert cells["md_script"].source.startswith(NOTE)
    assert f"Hi <script>{JS}</script>" in cells["md_script"].source  # shown, as text
    assert "attachments" not in cells["md_svg_attachment"]
    assert cells["raw_html"].source == "<img src=\"x\">"
    assert cells["out_html_script"].outputs[0].data == {"text/html": "<b>hi</b>"}
    dropped = cells["out_javascript"].outputs
    assert dropped[0].data == {"text/plain": "js"}
    assert "application/javascript" in dropped[1].data["text/plain"]
    assert "image/svg+xml" in cells["out_svg"].outputs[1].data["text/plain"]
    assert cells["out_markdown"].outputs[0].data["text/markdown"].startswith(NOTE)
    widget = inert(notebook(outputs({"application/vnd.jupyter.widget-view+json": {},
                                     "image/png": b64("png"), "text/plain": "w"})))
    assert widget.cells[0].outputs == [new_output("display_data", data={
        "image/png": b64("png"), "text/plain": "w"})]  # its picture, and no note


def test_widget_state_and_hidden_inputs_are_dropped(exporters: dict[str, HTMLExporter]
                                                     ) -> None:
    """Widget state makes the page load the widget manager, which renders an HTML
    widget's value as HTML: the state is dropped."""
    state = {"application/vnd.jupyter.widget-state+json": {"state": {MARK: {
        "model_name": "HTMLModel", "state": {"value": f"<img src=x onerror={JS}>"}}}}}
    cell = nbformat.from_dict({
        "cell_type": "code", "source": "x = 1", "outputs": [], "execution_count": None,
        "metadata": {"jupyter": {"source_hidden": True}, "tags": ["keep", "keep", "a,b", ""],
                     "other": 1}})
    view = notebook(CARRIERS["out_widget_view"][0], widgets=state)
    assert any(MARK in found for found in live(exporters["lab"], view))
    assert live(exporters["lab"], inert(view)) == []
    nb = notebook(cell, widgets=state, backprop_course={"autograded": True})
    cleaned = inert(nb)
    assert "widgets" not in cleaned.metadata
    assert cleaned.metadata.backprop_course == {"autograded": True}
    assert cleaned.cells[0].metadata == {"tags": ["keep"], "other": 1}


def test_nbgrader_metadata_and_safe_outputs_survive() -> None:
    png = b64("\x89PNG not really")
    nbgrader = {"grade": True, "grade_id": "check-1", "locked": True, "points": 2,
                "schema_version": 3, "solution": False}
    cell = new_code_cell("check()", metadata={"nbgrader": nbgrader}, execution_count=3,
                         outputs=[new_output("stream", name="stderr", text="<b>warn</b>"),
                                  new_output("execute_result", execution_count=3, data={
                                      "text/plain": "1.5", "image/png": png,
                                      "application/json": {"a": [1]}}, metadata={
                                      "image/png": {"width": 640, "height": 480,
                                                    "needs_background": "light"}}),
                                  new_output("error", ename="E", evalue="<i>", traceback=["t"])])
    nb = notebook(cell)
    assert inert(nb) == nb
    sized = image_output({"image/png": {"width": "640", "height": 480.5, "alt": "a"},
                          "filenames": {"image/png": "x.png"}, "width": 3})
    assert inert(notebook(sized)).cells[0].outputs[0].metadata == {"image/png": {"width": 640}}


def test_harmless_markdown_is_kept_and_renders(exporters: dict[str, HTMLExporter]) -> None:
    nb = notebook(markdown(HARMLESS))
    cleaned = inert(nb)
    assert cleaned.cells[0].source == HARMLESS
    html = page(exporters["feedback"], cleaned)
    for piece in ('<h1 id="Backprop,-by-hand">', "<em>by hand</em>", "<del>gone</del>",
                  '<a href="https://example.org" title="title">', "<table>",
                  r"$\sigma(x)(1-\sigma(x))$", '<span class="k">def</span>',
                  'src="https://example.org/plot.png"', "<blockquote>"):
        assert piece in html, piece


def test_raster_attachment_is_kept_and_embedded(exporters: dict[str, HTMLExporter]) -> None:
    png = b64("png bytes")
    cell = markdown("![p](attachment:p.png)", **{"p.png": {"image/png": png,
                                                           "image/svg+xml": b64(SVG)}})
    cleaned = inert(notebook(cell))
    assert cleaned.cells[0].attachments == {"p.png": {"image/png": png}}
    assert cleaned.cells[0].source == "![p](attachment:p.png)"
    assert f"data:image/png;base64,{png}" in page(exporters["lab"], cleaned)


def test_idempotent_on_every_carrier() -> None:
    once = inert(notebook(*(cell for cell, _ in CARRIERS.values()), markdown(HARMLESS)))
    assert inert(once) == once


@pytest.mark.parametrize("text", [
    "a <b>bold</b> word", "<details><summary>more</summary>text</details>",
    "```mermaid\ngraph TD; A-->B\n```", "![x](attachment:absent.png)",
])
def test_raw_html_mermaid_and_missing_attachments_are_never_kept(text: str) -> None:
    """Even harmless raw HTML: whether it is harmless is not decided by a parser that may
    read it unlike a browser; mermaid blocks are inserted unescaped by nbconvert; a
    missing attachment makes nbconvert refuse the notebook."""
    shown = inert_markdown(text)
    assert shown.startswith(f"{NOTE}\n\n```") and f"\n{text}\n" in shown


@pytest.mark.parametrize("text", [
    "a\x00b\r\nc<script>x</script>", "\ud800 lone surrogate <b>", "````\n<b>\n`````",
    "<!--><script>pwned()</script><!---->", "", "\\", "$$<img src=x onerror=pwned()>$$",
])
def test_markdown_fallback_is_a_fixed_point(text: str) -> None:
    once = inert_markdown(text)
    assert inert_markdown(once) == once
    assert MARK not in "".join(Live(sanitize(once)).found)


@pytest.mark.parametrize("nb", [
    {}, {"cells": None, "metadata": []}, {"cells": {"a": 1}},
    {"cells": [None, 1, "cell", [], {"cell_type": None}]},
    {"cells": [{"cell_type": "code", "source": 5, "outputs": {"x": 1}, "metadata": [1]}]},
    {"cells": [{"cell_type": "code", "outputs": [None, {"output_type": "display_data",
                                                         "data": ["x"], "metadata": 3},
                                                {"output_type": "stream", "text": None},
                                                {"output_type": "error", "traceback": 7},
                                                {"output_type": "nonsense"}]}]},
    {"cells": [{"cell_type": "markdown", "source": ["# a", ["b", 1]],
                "attachments": {"x": "y", "z": {"image/png": ["AAAA", "=="]}}}]},
    {"cells": [{"cell_type": "weird", "type": f"<img src=x onerror={JS}>", "source": 1}]},
    {"cells": [{"cell_type": "markdown", "id": "bad id!", "metadata": {"tags": "a"}}]},
])
def test_odd_input_never_raises(nb: dict[str, Any]) -> None:
    cleaned, _ = InertHTML().preprocess(nbformat.from_dict(nb), {})
    assert all(cell.cell_type in ("code", "markdown", "raw") for cell in cleaned.cells)
    assert MARK not in "".join(cell.source for cell in cleaned.cells if cell.cell_type == "raw")


def test_a_cell_too_deep_to_copy_is_replaced_by_a_note() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"x": deep}
    nb = nbformat.NotebookNode(cells=[{"cell_type": "code", "source": "x",
                                        "metadata": {"deep": deep}}], metadata={})
    cleaned, _ = InertHTML().preprocess(nb, {})
    assert cleaned.cells[0].cell_type == "raw"
    assert "removed this cell" in cleaned.cells[0].source


def test_configure_inert_pages_keeps_other_preprocessors() -> None:
    c = Config()
    c.HTMLExporter.preprocessors = ["nbconvert.preprocessors.TagRemovePreprocessor"]
    configure_inert_pages(configure_inert_pages(c))
    assert c.HTMLExporter.sanitize_html is True
    assert c.HTMLExporter.filters == {"clean_html": sanitize}
    assert c.HTMLExporter.preprocessors == ["nbconvert.preprocessors.TagRemovePreprocessor",
                                            InertHTML]


def test_configured_exporter_renders_a_live_notebook_inert() -> None:
    """The exporter-level wiring alone protects a page rendered from an old notebook."""
    exporter = HTMLExporter(config=configure_inert_pages(Config()), template_name="formgrade",
                            extra_template_basedirs=[str(NBGRADER_TEMPLATES)])
    nb = notebook(*(cell for cell, _ in CARRIERS.values()))
    assert Live(page(exporter, nb)).found == []


# --- fuzz: random notebook-like JSON -------------------------------------------------
PIECES = [
    "<script>", "</script>", f"{JS}", "<img src=x onerror=", "<svg onload=", "javascript:",
    "<iframe srcdoc=", "<a href=", "[x](", "](javascript:", ")", ">", "<", '"', "'", "`",
    "```mermaid\n", "\n", "$", "attachment:", "<!--", "-->", "&#106;avascript:", "\x00",
    "# ", "- ", "|", "<style>", "<math>", "<base href=", "<meta http-equiv=refresh ",
    "data:text/html,", "\\", "   ", "x",
]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=12).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8)
mimes = st.sampled_from(["text/html", "text/markdown", "text/latex", "text/plain",
                         "application/javascript", "image/svg+xml", "image/png",
                         "application/vnd.jupyter.widget-view+json", "application/json"])
bundles = st.dictionaries(mimes, texts | json_values, max_size=4)
image_fields = st.dictionaries(st.sampled_from(["width", "height", "needs_background", "alt",
                                                "unconfined"]),
                               texts | st.integers() | json_values, max_size=3)
output_metadata = st.dictionaries(
    st.sampled_from(["image/png", "image/jpeg", "filenames", "width", "height"]),
    image_fields | texts, max_size=3)
output_dicts = st.fixed_dictionaries(
    {"output_type": st.sampled_from(["display_data", "execute_result", "stream", "error",
                                     "other"])},
    optional={"data": bundles, "metadata": json_values | output_metadata,
              "text": texts | json_values,
              "name": texts, "traceback": json_values, "execution_count": json_values})
cell_dicts = st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["markdown", "code", "raw", "other"])},
    optional={"source": texts | st.lists(texts, max_size=3) | json_values,
              "metadata": st.dictionaries(st.sampled_from(["tags", "jupyter", "foo"]),
                                          json_values, max_size=2),
              "outputs": st.lists(output_dicts, max_size=3) | json_values,
              "attachments": st.dictionaries(texts, bundles | json_values, max_size=2),
              "execution_count": json_values, "id": texts, "type": texts})
notebooks = st.fixed_dictionaries({
    "cells": st.lists(cell_dicts, max_size=4),
    "metadata": st.dictionaries(st.sampled_from(["widgets", "foo"]), json_values, max_size=2),
    "nbformat": st.just(4), "nbformat_minor": st.just(5)})


@settings(max_examples=int(os.environ.get("INERT_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(nb=notebooks)
def test_fuzz_never_raises_and_renders_nothing_live(
        nb: dict[str, Any], exporters: dict[str, HTMLExporter]) -> None:
    cleaned, _ = InertHTML().preprocess(nbformat.from_dict(copy.deepcopy(nb)), {})
    nbformat.validate(cleaned)
    for template in ("lab", "formgrade"):
        html = page(exporters[template], cleaned)
        assert Active(html).found == Active(page(exporters[template], notebook())).found
        assert Live(html).found == []
    assert inert(cleaned) == cleaned


any_texts = st.lists(st.sampled_from([*PIECES, "<table>", "<a href=x>", "<p>", "</p>"])
                     | st.text(st.characters(exclude_categories=()), max_size=8),
                     max_size=20).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=any_texts)
def test_fuzz_markdown_and_html_are_inert_fixed_points(text: str) -> None:
    markdown_once = inert_markdown(text)
    assert inert_markdown(markdown_once) == markdown_once
    assert Live(markdown2html_mistune(markdown_once)).found == []
    html_once = sanitize(text)
    assert sanitize(html_once) == html_once
    assert Active(html_once).found == Live(html_once).found == []
