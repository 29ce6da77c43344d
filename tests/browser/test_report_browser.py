"""The instructor's report (issue 13) in a real browser: Debian's chromium, offline.

A small course (assignments 01 and 02, five example students; two of them, whose ids
carry a ``<script>`` tag and an ``<img onerror>``, hand in another's wrong answers)
is graded and reported; chromium opens ``report.html`` with the network cut off. Every
plot is an image that loaded, every table is there, the page asked for nothing but
itself, and the hostile student id shows as text that never ran. A screenshot goes to
``tests/artifacts/report.png``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from backprop_course.grader.pipeline import Course
from backprop_course.grader.report.build import write_report
from backprop_course.grader.sandbox import isolation
from backprop_course.grader.submissions import load_examples

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
REPO = Path(__file__).resolve().parents[2]
#: Student ids (folder names: no slash) that run script if a page puts them in unescaped:
#: an unclosed ``<script>`` would swallow the rest of the page, the image would fire.
SCRIPT = "<script>document.title='pwned'"
IMAGE = "<img src=x onerror=window.__pwned=1>"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.skipif(isolation() == "none", reason="needs Linux namespaces"),
]
ASSIGNMENTS = ["01_computational_graphs", "02_sigmoid_neuron"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A graded course of five students in two assignments, and its course report."""
    tmp = tmp_path_factory.mktemp("report-browser")
    course = Course(tmp / "course", REPO / "notebooks", log=lambda line: None)
    for assignment in ASSIGNMENTS:
        course.release(assignment)
        _, examples = load_examples(REPO / "grading" / "examples" / f"{assignment}.json")
        chosen = {e.name: e for e in examples}
        course.submit(assignment, [chosen["solution"], chosen["sign"], chosen["shapes"],
                                   replace(chosen["shapes"], name=SCRIPT),
                                   replace(chosen["sign"], name=IMAGE)])
        course.autograde(assignment)
    return write_report(course.root, None, tmp / "report").html


def test_the_report_opens_offline_with_its_plots_and_tables(report: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requested.append(r.url))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => "
                               "[i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
        tables = page.evaluate("Array.from(document.querySelectorAll('table[id]')).map(t => "
                               "[t.id, t.tBodies[0].rows.length])")
        pwned = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
        title = page.title()
        pairs_text = page.inner_text("#pairs-table")
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert [u for u in requested if not u.startswith(("file:", "data:"))] == []
    assert len(images) >= 4  # scores, heatmap, pairs, trends
    assert all(complete and width > 0 and height > 0 for _, complete, width, height in images)
    found = dict(tables)
    for table in ("scores-table", "checks-table", "mistakes-table", "reach-out-table",
                  "pairs-table", "trends-table"):
        assert found.get(table, 0) > 0, (table, found)
    assert pwned is None and not dialogs and title == "backprop-course: the course so far"
    assert SCRIPT in pairs_text and IMAGE in pairs_text  # shown as text, never run
    html = report.read_text()
    assert SCRIPT not in html and IMAGE not in html
