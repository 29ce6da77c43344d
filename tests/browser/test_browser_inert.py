"""Student HTML and JavaScript never run in a page an instructor or a student opens.

Builds throw-away nbgrader courses (one assignment, one solution cell, one test cell)
through nbgrader's Python API, submits a notebook that carries a payload in every
carrier (raw HTML in markdown, a ``javascript:`` link, an ``<iframe srcdoc>``, an SVG
attachment, ``text/html``, ``application/javascript``, ``image/svg+xml`` and
``text/markdown`` outputs made while autograding, an image whose width nbconvert prints
unquoted into its tag, and stored outputs), autogrades it and
generates feedback, then opens in headless chromium the feedback file and formgrader's
page for the submission, served by ``jupyter server`` and by ``jupyter lab``.

Every payload sets ``document.title``, appends its name to ``window.__pwned``, fetches a
beacon this test serves on 127.0.0.1 and opens an alert. Without the wiring at least one
fires (the test can fail); with it none does, also for a notebook autograded before the
wiring and rendered by pages configured with it. Screenshots and what fired where go to
``tests/artifacts/``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from playwright.sync_api import Browser, Page, sync_playwright
from traitlets.config.loader import PyFileConfigLoader

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's chromium at /usr/bin/chromium"),
]
ASSIGNMENT, NOTEBOOK, STUDENT = "ps1", "answers", "mallory"
BASE_CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "inert"
c.Exchange.root = {exchange!r}
c.Execute.timeout = 30
"""
WIRING = """\
from nbgrader.converters import Autograde

from backprop_course.grader.preprocessors.inert_html import InertHTML, configure_inert_pages

stock = Autograde.class_traits()
c.Autograde.sanitize_preprocessors = [*stock["sanitize_preprocessors"].default(), InertHTML]
c.Autograde.autograde_preprocessors = [*stock["autograde_preprocessors"].default(), InertHTML]
configure_inert_pages(c)
"""
MD_CARRIERS = {
    "md_script": "<script>{js}</script>",
    "md_img_onerror": '<img src="x" onerror="{js}">',
    "md_svg_onload": '<svg onload="{js}"></svg>',
    "md_javascript_link": "[click-md_javascript_link](javascript:{js})",
    "md_iframe_srcdoc": '<iframe srcdoc="<script>{js}</script>"></iframe>',
    "md_svg_attachment": "![md_svg_attachment](attachment:p.svg)",
}
SVG = '<svg xmlns="http://www.w3.org/2000/svg" onload="{js}"><script>{js}</script></svg>'
SHOW = """\
from IPython.display import HTML, SVG, Javascript, Markdown, display
display(HTML({out_html_script!r}))
display(HTML({out_html_onerror!r}))
display(Javascript({out_javascript!r}))
display(SVG({out_svg!r}))
display(Markdown({out_markdown!r}))
display({{"image/png": "AAAA"}}, raw=True, metadata={{"image/png": {{"width": {out_png_width!r}}}}})
"""


def js(name: str, beacon: str) -> str:
    """A payload without spaces (it must survive as a markdown link) that marks the page."""
    return (f"top.document.title='PWNED';top.__pwned=(top.__pwned||[]).concat('{name}');"
            f"fetch('{beacon}/{name}');alert('{name}')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def beacon_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records the path of every request it gets."""
    hits: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            hits.append(self.path.strip("/"))
            self.send_response(204)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def source_notebook() -> nbformat.NotebookNode:
    solution = new_code_cell(
        "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
        metadata={"nbgrader": {"grade": False, "grade_id": "answer", "locked": False,
                               "schema_version": 3, "solution": True}})
    test = new_code_cell("assert double(2) == 4", metadata={"nbgrader": {
        "grade": True, "grade_id": "test_double", "locked": True, "points": 1,
        "schema_version": 3, "solution": False}})
    nb = new_notebook(cells=[new_markdown_cell("# Doubling"), solution, test])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def submission(release: Path, beacon: str) -> nbformat.NotebookNode:
    """The released notebook, answered, with a payload in every carrier."""
    nb = nbformat.read(release, as_version=4)
    nb.cells[1].source = "def double(x):\n    return 2 * x"
    payloads = {name: js(name, beacon) for name in (
        *MD_CARRIERS, "out_html_script", "out_html_onerror", "out_javascript", "out_svg",
        "out_markdown", "out_png_width", "stored_html_script", "stored_html_onerror",
        "stored_javascript")}
    for name, text in MD_CARRIERS.items():
        cell = new_markdown_cell(text.format(js=payloads[name]))
        if name == "md_svg_attachment":
            svg = SVG.format(js=payloads[name]).encode()
            cell.attachments = {"p.svg": {"image/svg+xml": base64.b64encode(svg).decode()}}
        nb.cells.append(cell)
    show = new_code_cell(SHOW.format(
        out_html_script=f"<script>{payloads['out_html_script']}</script>",
        out_html_onerror=f'<img src="x" onerror="{payloads["out_html_onerror"]}">',
        out_javascript=payloads["out_javascript"],
        out_svg=SVG.format(js=payloads["out_svg"]),
        out_markdown=f'<img src="x" onerror="{payloads["out_markdown"]}">',
        out_png_width=f"1 onerror={payloads['out_png_width']}"))
    show.outputs = [
        new_output("display_data", data={
            "text/html": f"<script>{payloads['stored_html_script']}</script>"}),
        new_output("display_data", data={
            "text/html": f'<img src="x" onerror="{payloads["stored_html_onerror"]}">'}),
        new_output("display_data", data={
            "application/javascript": payloads["stored_javascript"]}),
    ]
    nb.cells.append(show)
    return nb


@dataclass
class Course:
    """A throw-away nbgrader course with one autograded submission."""

    root: Path
    wired: bool
    submission_id: str = ""

    def configure(self, wired: bool) -> None:
        self.wired = wired
        text = BASE_CONFIG.format(root=str(self.root), exchange=str(self.root / "exchange"))
        (self.root / "nbgrader_config.py").write_text(text + (WIRING if wired else ""))

    def api(self) -> NbGraderAPI:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        return NbGraderAPI(CourseDirectory(config=config), config=config)

    def run(self, step: str, *args: str) -> None:
        result = getattr(self.api(), step)(ASSIGNMENT, *args)
        assert result["success"], f"{step} failed:\n{result.get('error')}\n{result.get('log')}"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback" / STUDENT / ASSIGNMENT / f"{NOTEBOOK}.html"


def new_course(root: Path, wired: bool) -> Course:
    """A course with its configuration and the assignment's source, nothing graded."""
    course = Course(root, wired)
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    course.configure(wired)
    nbformat.write(source_notebook(), root / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    return course


def grade(course: Course, beacon: str) -> Course:
    """Release, submit the payloads, autograde, generate feedback."""
    root = course.root
    course.run("generate_assignment")
    submitted = root / "submitted" / STUDENT / ASSIGNMENT
    submitted.mkdir(parents=True)
    release = root / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nbformat.write(submission(release, beacon), submitted / f"{NOTEBOOK}.ipynb")
    course.run("autograde", STUDENT)
    course.run("generate_feedback", STUDENT)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "inert") as gradebook:
        course.submission_id = gradebook.find_submission_notebook(
            NOTEBOOK, ASSIGNMENT, STUDENT).id
    return course


def rewired_copy(course: Course, root: Path) -> Course:
    """``course``, autograded without the wiring, in ``root`` with the wiring (only the
    pages can protect it): feedback generated again."""
    shutil.copytree(course.root, root)
    copy = Course(root, True, course.submission_id)
    copy.configure(True)
    shutil.rmtree(root / "feedback")
    copy.run("generate_feedback", STUDENT)
    return copy


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    token: str
    log: Path


def start_server(course: Course, app: str, tmp: Path) -> Server:
    """``jupyter server`` or ``jupyter lab`` on a free port of 127.0.0.1, with a token,
    formgrader enabled, run from the course (formgrader reads nbgrader_config.py there)."""
    port, token = free_port(), secrets.token_hex(16)
    home = tmp / f"{app}-{course.root.name}"
    config = home / "config"
    config.mkdir(parents=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {
        "jpserver_extensions": {"nbgrader.server_extensions.formgrader": True}}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    module = {"server": "jupyter_server", "lab": "jupyterlab"}[app]
    log = home / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--ServerApp.allow_root=True", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={course.root}"],
        cwd=course.root, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    return Server(process, f"http://127.0.0.1:{port}", token, log)


def wait_until_up(server: Server, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            urllib.request.urlopen(f"{server.url}/api/status?token={server.token}", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.url} did not start:\n{server.log.read_text()[-3000:]}")


def stop(server: Server) -> None:
    """Stop the server and whatever it started (its own process group)."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@dataclass
class Visit:
    """What a page did: markers its scripts set, dialogs, beacon hits, visible text."""

    title: str
    pwned: list[str]
    dialogs: list[str]
    beacon: list[str]
    text: str

    @property
    def fired(self) -> list[str]:
        return sorted({*self.pwned, *self.dialogs, *self.beacon})


def visit(browser: Browser, url: str, hits: list[str], label: str) -> Visit:
    """Open ``url`` in a fresh context (no request leaves 127.0.0.1), click every
    ``javascript:`` link, and report what ran."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.route("**/*", lambda route: route.abort()
                  if route.request.url.startswith("http")
                  and not route.request.url.startswith("http://127.0.0.1")
                  else route.continue_())
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    del hits[:]
    try:
        page.goto(url, wait_until="load", timeout=30_000)
        page.wait_for_timeout(500)
        for link in page.locator('a[href^="javascript:" i]').all():
            link.click(timeout=2_000)
        page.wait_for_timeout(500)
        return Visit(page.title(), page.evaluate("() => window.__pwned || []"),
                     list(dialogs), list(hits), page.inner_text("body"))
    finally:
        take_screenshot(page, label)
        context.close()


def take_screenshot(page: Page, label: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"inert-{label}.png", full_page=True)


def submission_url(server: Server, course: Course) -> str:
    return f"{server.url}/formgrader/submissions/{course.submission_id}/?token={server.token}"


def assert_inert(seen: Visit) -> None:
    assert seen.fired == [], seen.fired
    assert seen.title != "PWNED"
    for name in ("md_script", "md_img_onerror", "md_svg_onload", "md_iframe_srcdoc",
                 "click-md_javascript_link"):
        assert name in seen.text, f"{name} is not shown as text"
    for kind in ("application/javascript", "image/svg+xml"):
        assert f"The grader removed an output of type {kind}" in seen.text


def test_student_payloads_never_run_in_feedback_or_formgrader(tmp_path: Path) -> None:
    started = time.monotonic()
    servers: list[Server] = []
    seen: dict[str, Visit] = {}
    with beacon_server() as (beacon, hits):
        stock = grade(new_course(tmp_path / "stock", False), beacon)
        old = rewired_copy(stock, tmp_path / "old")
        wired = new_course(tmp_path / "wired", True)
        pages = {"stock-formgrader": (stock, "server"), "wired-formgrader": (wired, "server"),
                 "wired-formgrader-lab": (wired, "lab"), "old-formgrader": (old, "server")}
        try:  # the servers start while the wired course is graded
            servers = [start_server(course, app, tmp_path) for course, app in pages.values()]
            grade(wired, beacon)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
                for label, course in (("stock-feedback", stock), ("wired-feedback", wired),
                                      ("old-feedback", old)):
                    seen[label] = visit(browser, course.feedback.as_uri(), hits, label)
                for (label, (course, _)), server in zip(pages.items(), servers, strict=True):
                    wait_until_up(server)
                    seen[label] = visit(browser, submission_url(server, course), hits, label)
                browser.close()
        finally:
            for server in servers:
                stop(server)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "inert-fired.json").write_text(json.dumps(
        {label: page.fired for label, page in seen.items()}, indent=1))

    for label in ("stock-feedback", "stock-formgrader"):  # the test can fail
        assert seen[label].fired, f"no payload ran in {label}: the test proves nothing"
    for label in ("wired-feedback", "wired-formgrader", "wired-formgrader-lab",
                  "old-feedback", "old-formgrader"):
        assert_inert(seen[label])
    assert time.monotonic() - started < 90
