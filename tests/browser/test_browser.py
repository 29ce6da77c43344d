"""The widgets in a real JupyterLab, driven by headless Chromium through Playwright.

Starts ``jupyter lab`` on 127.0.0.1 with a token and a free port in a temporary root,
opens a notebook that shows both widgets, runs it, types a new value into a slider's
readout and checks that the heatmap changed to the right values. Screenshots go to
``tests/artifacts/``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's chromium at /usr/bin/chromium"),
]

CELLS = [
    "from backprop_course.widgets import BackwardStepper, JacobianExplorer\n"
    "import backprop_course as bc",
    'explorer = JacobianExplorer("relu", x=[1.0, 0.5, 2.0, -1.5])\nexplorer',
    "x = bc.tensor(-2.0, requires_grad=True)\ny = bc.tensor(5.0, requires_grad=True)\n"
    "z = bc.tensor(-4.0, requires_grad=True)\nq = x + y\nf = q * z\nBackwardStepper(f)",
]
SETTINGS = {  # windowing "none": off-screen outputs render too; no news, no update checks
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False, "fetchNews": "false"},
}
HEATMAP = "svg.bc-jacobian"
READ_J = """svg => Array.from(svg.querySelectorAll('rect[data-matrix="jacobian"]'))
    .map(r => [+r.dataset.i, +r.dataset.j, +r.dataset.value])"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root: Path, tmp: Path) -> tuple[subprocess.Popen, str]:
    for name, value in SETTINGS.items():
        path = tmp / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--ServerApp.allow_root=True", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}"],
        env=env, cwd=root, stdout=(tmp / "lab.log").open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            return server, f"{url}/lab/tree/widgets.ipynb?token={token}"
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("JupyterLab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])


def test_slider_updates_heatmap_in_jupyterlab(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / "widgets.ipynb")
    ARTIFACTS.mkdir(exist_ok=True)
    server, url = start_lab(root, tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update"])
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            try:
                drive(page, url)
            finally:
                page.screenshot(path=ARTIFACTS / "browser_last.png")
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_for_connected_kernel(url: str, timeout: float = 30) -> None:
    """Until the notebook's kernel is idle and the page holds a connection to it."""
    api = url.split("/lab/")[0] + "/api/kernels?token=" + url.split("token=")[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernels = json.load(urllib.request.urlopen(api, timeout=2))
        if any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels):
            return
        time.sleep(0.3)
    raise TimeoutError(f"no connected idle kernel after {timeout} s")


def drive(page, url: str) -> None:
    """Run the notebook, move a slider, step the stepper; assert on what the page shows."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    wait_for_connected_kernel(url)
    for attempt in range(3):  # a click that lands while the session settles can be lost
        page.click('.lm-MenuBar-itemLabel:text-is("Run")')
        page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
        try:
            page.wait_for_selector("svg.bc-graph", timeout=15_000 * (attempt + 1))
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=30_000)
    assert page.get_by_text("Loading widget...").count() == 0
    heatmap = page.locator(HEATMAP)
    before = heatmap.evaluate(READ_J)
    assert [v for i, j, v in before if i == j] == [1, 1, 1, 0]

    readout = page.locator(".widget-hslider", has_text="x2").locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("-2.5")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.querySelector('{HEATMAP} rect[data-i=\"1\"][data-j=\"1\"]')"
        ".dataset.value === '0.0'", timeout=10_000)
    after = heatmap.evaluate(READ_J)
    assert [v for i, j, v in after if i == j] == [1, 0, 1, 0]
    assert "2 inactive unit(s)" in heatmap.text_content()
    heatmap.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "browser_explorer.png")

    page.get_by_role("button", name="step ▶").click()
    page.wait_for_function(
        "() => document.querySelector('svg.bc-graph').textContent.includes('Step 1 of 2')",
        timeout=10_000)
    page.locator("svg.bc-graph").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "browser_stepper.png")
    assert page.get_by_text("Error displaying widget").count() == 0
