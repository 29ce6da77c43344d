"""Headless tests of the widgets: drive the controls as a student would, read back what
the picture shows (the SVG cells carry their values) and compare with references
computed independently here (closed forms and torch)."""

from __future__ import annotations

import base64
import io
import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from matplotlib.image import imread

import backprop_course as bc
from backprop_course.widgets import (
    BackwardStepper,
    JacobianExplorer,
    format_bytes,
    jacobian_memory,
)
from backprop_course.widgets.explorer import default_g, default_weight

SVG = "{http://www.w3.org/2000/svg}"


def shown(svg: str, name: str) -> np.ndarray:
    """The matrix ``name`` as drawn: read back from the cells' data attributes."""
    cells = [c for c in ET.fromstring(svg).iter(f"{SVG}rect") if c.get("data-matrix") == name]
    assert cells, f"no {name} in the picture"
    shape = (1 + max(int(c.get("data-i")) for c in cells),
             1 + max(int(c.get("data-j")) for c in cells))
    out = np.full(shape, np.nan)
    for c in cells:
        out[int(c.get("data-i")), int(c.get("data-j"))] = float(c.get("data-value"))
    return out


def marks(svg: str, dashed: bool) -> set[tuple[int, int]]:
    return {(int(r.get("data-i")), int(r.get("data-j")))
            for r in ET.fromstring(svg).iter(f"{SVG}rect")
            if r.get("class") == "mark" and (r.get("stroke-dasharray") is not None) == dashed}


def texts(svg: str) -> str:
    return " ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))


def torch_vjp(fn, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = fn(xt)
    y.backward(torch.tensor(g, dtype=torch.float64).reshape(y.shape))
    return xt.grad.numpy()


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------ explorer
@pytest.mark.parametrize(
    ("layer", "closed_form", "torch_fn"),
    [
        ("relu", lambda x: np.diag((x > 0).astype(float)), torch.relu),
        ("sigmoid", lambda x: np.diag(sigmoid(x) * (1 - sigmoid(x))), torch.sigmoid),
        ("tanh", lambda x: np.diag(1 - np.tanh(x) ** 2), torch.tanh),
        ("softmax", lambda x: (lambda p: np.diag(p) - np.outer(p, p))(np.exp(x) / np.exp(x).sum()),
         lambda t: torch.softmax(t, -1)),
    ],
)
def test_slider_move_shows_the_analytic_jacobian_and_the_engine_vjp(layer, closed_form, torch_fn):
    e = JacobianExplorer(layer)
    e.size.value = 5
    e.sliders[1].value = 1.7
    e.sliders[4].value = -2.3
    x = e.x
    assert x[1] == 1.7 and x[4] == -2.3
    np.testing.assert_allclose(shown(e.view.value, "jacobian"), closed_form(x), atol=1e-12)
    g = shown(e.view.value, "g").ravel()
    np.testing.assert_allclose(g, default_g(5))
    np.testing.assert_allclose(shown(e.view.value, "vjp").ravel(), torch_vjp(torch_fn, x, g),
                               atol=1e-12)
    np.testing.assert_allclose(e.state.engine_vjp, e.state.vjp, atol=1e-12)
    assert "(5, 5)" in texts(e.view.value)


def test_relu_marks_exactly_the_dead_units():
    e = JacobianExplorer("relu", x=[1.0, -0.5, 2.0, 0.3])
    assert marks(e.view.value, dashed=True) == {(1, 1)}
    e.sliders[3].value = -0.1
    e.sliders[1].value = 0.4
    assert marks(e.view.value, dashed=True) == {(3, 3)}
    assert "1 inactive unit(s)" in texts(e.view.value)


def test_linear_shows_w_and_backward_multiplies_by_w_transpose():
    e = JacobianExplorer("linear", x=[1.0, -2.0, 0.5])
    e.out_size.value = 2
    w = default_weight(2, 3)
    np.testing.assert_array_equal(shown(e.view.value, "jacobian"), w)
    e.g_text.value = "1, -3"
    np.testing.assert_allclose(shown(e.view.value, "vjp").ravel(), w.T @ [1.0, -3.0])
    vjp = torch_vjp(lambda t: t @ torch.tensor(w).T, e.x, np.array([1.0, -3.0]))
    np.testing.assert_allclose(e.state.engine_vjp, vjp)
    assert "(2, 3)" in texts(e.view.value) and "Wᵀ" in texts(e.view.value)


def test_softmax_cross_entropy_is_one_row_p_minus_onehot():
    e = JacobianExplorer("softmax_ce", x=[2.0, 1.0, 0.1])
    e.target.value = 2
    p = np.exp(e.x) / np.exp(e.x).sum()
    np.testing.assert_allclose(shown(e.view.value, "jacobian"), [p - [0, 0, 1]], atol=1e-12)
    loss = lambda t: torch.nn.functional.cross_entropy(t[None], torch.tensor([2]))  # noqa: E731
    np.testing.assert_allclose(e.state.engine_vjp, torch_vjp(loss, e.x, np.ones(1)))


def test_upstream_gradient_text_and_its_errors():
    e = JacobianExplorer("softmax", x=[0.5, -1.0, 2.0])
    e.g_text.value = "0 1 0"
    np.testing.assert_allclose(e.state.vjp, e.state.jacobian[1])  # picks row 2 of J
    e.g_text.value = "1 2"
    assert "g needs 3 number(s)" in e.message.value
    np.testing.assert_allclose(e.state.g, default_g(3))
    e.g_text.value = "a b c"
    assert "numbers separated" in e.message.value


def test_resize_keeps_entries_and_reaches_ten_by_ten():
    e = JacobianExplorer("tanh", x=[0.1, 0.2, 0.3])
    e.size.value = 10
    assert e.state.jacobian.shape == (10, 10) and len(e.sliders) == 10
    np.testing.assert_array_equal(e.x[:3], [0.1, 0.2, 0.3])
    e.x = np.linspace(-1, 1, 4)
    assert shown(e.view.value, "jacobian").shape == (4, 4)


def test_memory_of_the_decks_example():
    mem = jacobian_memory(64, 4096, 4096, itemsize=4)
    assert mem["jacobian_bytes"] == 256 * 2**30
    assert mem["jacobian_entries"] == (64 * 4096) ** 2
    assert mem["vjp_bytes"] == 2 * 2**20
    assert format_bytes(mem["jacobian_bytes"]) == "256 GiB"
    e = JacobianExplorer()
    assert "= 256 GiB" in texts(e.view.value) and "= 2 MiB" in texts(e.view.value)
    e.dtype.value = "float64"
    e.batch.value = 32
    assert "= 128 GiB" in texts(e.view.value)  # (32*4096)^2 * 8 bytes


class LeakySigmoid(bc.Function):
    """A student's sigmoid whose backward forgets the (1 - s) factor."""

    @staticmethod
    def forward(ctx, x):
        s = sigmoid(x)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * s


class GoodSigmoid(LeakySigmoid):
    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * s * (1 - s)


def test_any_function_outlines_the_entries_that_disagree():
    x = np.array([0.5, -1.0, 2.0, 0.0])
    e = JacobianExplorer(fn=LeakySigmoid.apply, x=x)
    numerical = torch.autograd.functional.jacobian(torch.sigmoid, torch.tensor(x)).numpy()
    np.testing.assert_allclose(shown(e.view.value, "numerical"), numerical, atol=1e-8)
    np.testing.assert_allclose(shown(e.view.value, "jacobian"), np.diag(sigmoid(x)))
    assert marks(e.view.value, dashed=False) == {(i, i) for i in range(4)}
    assert "4 of 16 entries disagree" in texts(e.view.value)

    good = JacobianExplorer(fn=GoodSigmoid.apply, x=x)
    assert marks(good.view.value, dashed=False) == set()
    assert "All 16 entries agree" in texts(good.view.value)


def test_any_function_error_is_reported_and_the_picture_kept():
    calls = []

    def fn(t):
        calls.append(1)
        if len(calls) > 3:
            raise ValueError("boom")
        return t * t

    e = JacobianExplorer(fn=fn, x=[1.0, 2.0])
    before = e.view.value
    e.sliders[0].value = 0.5
    assert "ValueError: boom" in e.message.value
    assert e.view.value == before


def test_ten_by_ten_update_is_under_50_ms():
    e = JacobianExplorer("softmax")
    e.size.value = 10
    times = []
    for k in range(15):
        before = e.view.value
        start = time.perf_counter()
        e.sliders[k % 10].value = round(-2.5 + 0.3 * k, 1)
        times.append(time.perf_counter() - start)
        assert e.view.value != before
    assert float(np.median(times)) < 0.050


def test_static_fallback_is_a_picture_of_the_current_state():
    e = JacobianExplorer("relu", x=[1.0, -1.0])
    first = e._repr_mimebundle_()
    e.sliders[1].value = 2.0
    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/svg+xml"] == e.view.value
    np.testing.assert_array_equal(shown(bundle["image/svg+xml"], "jacobian"), np.eye(2))
    png = imread(io.BytesIO(base64.b64decode(bundle["image/png"])))
    old = imread(io.BytesIO(base64.b64decode(first["image/png"])))
    width, height = (float(v) for v in re.search(r'viewBox="0 0 (\S+) (\S+)"',
                                                   bundle["image/svg+xml"]).groups())
    assert png.shape[:2] == (round(height), round(width))
    assert png.shape == old.shape and np.abs(png - old).sum() > 0  # the PNG follows the state
    assert "[[1 0]\n [0 1]]" in bundle["text/plain"]


# ------------------------------------------------------------------- stepper
def grads_drawn(svg: str, stepper: BackwardStepper) -> dict[str, str]:
    return {stepper.graph.nodes[int(t.get("data-index"))].title: t.text
            for t in ET.fromstring(svg).iter(f"{SVG}text") if t.get("class") == "grad"}


def test_stepper_on_the_decks_first_example():
    x = bc.tensor(-2.0, requires_grad=True)
    y = bc.tensor(5.0, requires_grad=True)
    z = bc.tensor(-4.0, requires_grad=True)
    q = x + y
    f = q * z
    s = BackwardStepper(f)
    assert s.step.max == 2
    assert grads_drawn(s.view.value, s) == {"f": "1.00"}
    assert "f = −12.00" in texts(s.view.value) and "q = 3.00" in texts(s.view.value)
    s.forward.click()
    assert grads_drawn(s.view.value, s) == {"f": "1.00", "q": "−4.00", "z": "3.00"}
    assert "upstream 1.00 × local −4.00 = −4.00" in texts(s.view.value)
    s.forward.click()
    s.forward.click()  # clamps at the end
    assert s.step.value == 2
    assert grads_drawn(s.view.value, s) == {"f": "1.00", "q": "−4.00", "z": "3.00",
                                            "x": "−4.00", "y": "−4.00"}
    assert x.grad is None  # the stepper never touches .grad
    f.backward()
    for leaf in (x, y, z):
        np.testing.assert_allclose(s.grads()[{id(x): "x", id(y): "y", id(z): "z"}[id(leaf)]],
                                   leaf.grad.data)
    s.back.click()
    assert s.step.value == 1 and "x" not in s.grads()
    s.reset.click()
    assert s.step.value == 0


def test_stepper_sigmoid_neuron_matches_torch():
    w0, w1, w2 = (bc.tensor(v, requires_grad=True) for v in (2.0, -3.0, -3.0))
    x0, x1 = (bc.tensor(v, requires_grad=True) for v in (-1.0, -2.0))
    f = 1 / (1 + (-(w0 * x0 + w1 * x1 + w2)).exp())
    s = BackwardStepper(f, names={"w0": w0, "w1": w1, "w2": w2, "x0": x0, "x1": x1, "f": f})
    s.step.value = s.step.max
    w = torch.tensor([2.0, -3.0, -3.0], dtype=torch.float64, requires_grad=True)
    xt = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True)
    torch.sigmoid(w[0] * xt[0] + w[1] * xt[1] + w[2]).backward()
    grads = s.grads()
    np.testing.assert_allclose([grads["w0"], grads["w1"], grads["w2"]], w.grad.numpy())
    np.testing.assert_allclose([grads["x0"], grads["x1"]], xt.grad.numpy())
    assert "f = 0.73" in texts(s.view.value)
    assert "w0 = −0.20, x0 = 0.39, w1 = −0.39, x1 = −0.59, w2 = 0.20" in texts(s.view.value)


def test_stepper_accumulates_where_a_value_fans_out():
    a = bc.tensor(3.0, requires_grad=True)
    h = a * a + a
    s = BackwardStepper(h)
    s.step.value = 2
    lines = texts(s.view.value)
    assert "a already had 1.00 from another path: accumulate to 4.00" in lines
    assert "accumulate to 7.00" in lines
    assert s.grads()["a"] == pytest.approx(2 * 3.0 + 1)


def test_stepper_fallback_and_errors():
    a = bc.tensor([1.0, 2.0], requires_grad=True)
    out = (a * 2.0).sum()
    s = BackwardStepper(out)
    s.step.value = 2
    bundle = s._repr_mimebundle_()
    assert bundle["image/svg+xml"] == s.view.value
    assert imread(io.BytesIO(base64.b64decode(bundle["image/png"]))).shape[2] in (3, 4)
    assert "Done. Gradients of the inputs: a = [2.00, 2.00]" in bundle["text/plain"]
    out.backward()
    with pytest.raises(ValueError, match="retain_graph=True"):
        BackwardStepper(out)
    with pytest.raises(ValueError, match="no graph"):
        BackwardStepper(bc.tensor(1.0))


@pytest.mark.slow
def test_nbconvert_without_kernel_state_shows_pictures(tmp_path):
    """Executed without stored widget state (a static build), the HTML shows each widget's
    picture, never "Loading widget..."."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import backprop_course as bc\n"
        "from backprop_course.widgets import BackwardStepper, JacobianExplorer\n"
        'display(JacobianExplorer("softmax", x=[1.0, 2.0, 3.0]))\n'
        "a = bc.tensor(3.0, requires_grad=True)\n"
        "BackwardStepper(a * a)")])
    NotebookClient(nb, timeout=60, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "execute_result"]
    assert all({"image/png", "image/svg+xml", "text/plain"} <= set(o.data) for o in outputs)
    assert "J (3, 3)" in outputs[0].data["text/plain"]
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert "Loading widget" not in html
    pictures = [base64.b64decode(b).decode()
                for b in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)]
    assert [re.search(r'class="(bc-\w+)"', svg).group(1) for svg in pictures] == [
        "bc-jacobian", "bc-graph"]
