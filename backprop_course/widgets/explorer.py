"""The Jacobian explorer: a layer, an input, its Jacobian, an upstream gradient, the VJP.

:func:`explore` is the pure part (numbers in, :class:`ExplorerState` out) and
:func:`explorer_scene` draws a state; :class:`JacobianExplorer` is the ipywidgets view
that recomputes and redraws on every control change.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

import ipywidgets as widgets
import numpy as np

from .. import functional as F
from .. import ops
from ..autograd import Tensor, tensor
from ..gradcheck import disagrees, jacobian, numerical_jacobian
from .render import Scene, heatmap, memory_lines, text_block, to_png, to_svg

LAYERS = {
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "linear": "Linear",
    "softmax": "softmax",
    "softmax_ce": "softmax cross-entropy",
}
CUSTOM = "custom"
MAX_SIZE = 12  # a slider per input: more is unusable, and values stop fitting on cells


def default_x(size: int) -> np.ndarray:
    """A deterministic input of ``size`` entries with both signs (shape (size,))."""
    return np.round(2 * np.sin(1.3 * np.arange(size) + 0.5), 1)


def default_g(size: int) -> np.ndarray:
    """A deterministic upstream gradient of ``size`` entries (shape (size,))."""
    return np.round(np.cos(0.9 * np.arange(size) + 0.3), 1)


def default_weight(d_out: int, d_in: int) -> np.ndarray:
    """A fixed weight matrix of shape (d_out, d_in), one decimal per entry."""
    return np.round(np.random.default_rng(0).normal(size=(d_out, d_in)), 1)


@dataclass
class ExplorerState:
    """Everything one picture of the explorer shows.

    Attributes
    ----------
    layer : str
        A key of ``LAYERS`` or ``"custom"``.
    x : np.ndarray, shape (D,)
        The input.
    g : np.ndarray, shape (M,)
        The upstream gradient dL/dy.
    jacobian : np.ndarray, shape (M, D)
        dy/dx: the layer's analytic Jacobian, or for a custom function the one built
        from its backward (``bc.jacobian``).
    vjp : np.ndarray, shape (D,)
        ``g @ jacobian``: dL/dx computed through the explicit matrix.
    engine_vjp : np.ndarray, shape (D,)
        dL/dx from the engine's ``backward(g)`` (never forms the matrix).
    numerical : np.ndarray or None, shape (M, D)
        Central-difference Jacobian (custom functions only).
    disagree : np.ndarray of bool or None, shape (M, D)
        Entries of ``jacobian`` that differ from ``numerical``.
    dead : np.ndarray of bool or None, shape (M, D)
        ReLU only: the diagonal entries of dead units (x_i <= 0).
    notes : list of str
        What the structure of the matrix says, in sentences.
    memory : tuple
        (N, D, M, dtype) for the memory comparison.
    """

    layer: str
    x: np.ndarray
    g: np.ndarray
    jacobian: np.ndarray
    vjp: np.ndarray
    engine_vjp: np.ndarray
    numerical: np.ndarray | None = None
    disagree: np.ndarray | None = None
    dead: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    memory: tuple[int, int, int, str] = (64, 4096, 4096, "float32")


def _layer_forward(layer: str, weight: np.ndarray, target: int) -> Callable[[Tensor], Tensor]:
    forwards: dict[str, Callable[[Tensor], Tensor]] = {
        "relu": F.relu,
        "sigmoid": F.sigmoid,
        "tanh": F.tanh,
        "linear": lambda t: F.linear(t, tensor(weight)),
        "softmax": F.softmax,
        "softmax_ce": lambda t: F.cross_entropy(t, np.array(target)),
    }
    return forwards[layer]


def _layer_jacobian(layer: str, x: np.ndarray, weight: np.ndarray, target: int) -> np.ndarray:
    if layer == "linear":
        return ops.Linear.jacobian(x, weight)
    if layer == "softmax_ce":
        return ops.SoftmaxCrossEntropy.jacobian(x, np.array([target]))
    cls = {"relu": ops.ReLU, "sigmoid": ops.Sigmoid, "tanh": ops.Tanh,
           "softmax": ops.Softmax}[layer]
    return cls.jacobian(x)


class UpstreamShapeError(ValueError):
    """The upstream gradient has the wrong number of entries."""


def _upstream(g: np.ndarray | None, size: int, layer: str) -> np.ndarray:
    if g is None:
        return np.ones(1) if layer == "softmax_ce" else default_g(size)
    g = np.asarray(g, dtype=np.float64).ravel()
    if g.size != size:
        raise UpstreamShapeError(f"g needs {size} number(s), one per output; got {g.size}")
    return g


def _engine_vjp(fn: Callable[[Tensor], Tensor], x: np.ndarray, g: np.ndarray) -> np.ndarray:
    xt = tensor(x, requires_grad=True)
    y = fn(xt)
    y.backward(np.reshape(g, y.shape))
    return np.zeros_like(x) if xt.grad is None else xt.grad.data.reshape(x.shape)


def _layer_notes(layer: str, x: np.ndarray, jac: np.ndarray, target: int) -> list[str]:
    if layer == "relu":
        dead = int(np.sum(x <= 0))
        return ["Diagonal: y_i depends on x_i only, so every off-diagonal entry is 0.",
                f"{dead} inactive unit(s) (x_i ≤ 0, dashed): a 0 on the diagonal, so no "
                "gradient flows back",
                "through them for this input. A unit is dead only if it is inactive for every "
                "example."]
    if layer == "sigmoid":
        return ["Diagonal, with σ(x_i)(1 − σ(x_i)) ≤ 0.25 on it: every gradient "
                "shrinks at least 4× on the way back."]
    if layer == "tanh":
        return ["Diagonal, with 1 − tanh²(x_i) ≤ 1 on it: saturated units (|x_i| large) "
                "pass almost no gradient."]
    if layer == "linear":
        return ["J = W, shape (M, D), the same for every x. The VJP is ∂L/∂x = Wᵀg: "
                "backward multiplies by Wᵀ.",
                "(The decks write y = xW with W of shape (D, M); there the Jacobian is Wᵀ.)"]
    if layer == "softmax":
        return ["Dense: every output depends on every input. J = diag(p) − ppᵀ, "
                "symmetric, and each row sums to 0."]
    row = ", ".join(f"{v:.2f}" for v in jac[0])
    return [f"One output (the loss), so J is one row: p − onehot({target}) = [{row}].",
            "g is the scalar ∂L/∂L = 1 unless the loss is scaled further on."]


def explore(
    layer: str,
    x: np.ndarray,
    g: np.ndarray | None = None,
    *,
    weight: np.ndarray | None = None,
    target: int = 0,
    fn: Callable[[Tensor], Tensor] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    memory: tuple[int, int, int, str] = (64, 4096, 4096, "float32"),
) -> ExplorerState:
    """Compute what the explorer shows for one layer and input.

    Parameters
    ----------
    layer : str
        A key of ``LAYERS``, or ``"custom"`` together with ``fn``.
    x : array_like, shape (D,)
        The input.
    g : array_like, shape (M,), optional
        Upstream gradient; :func:`default_g` if omitted (``[1.]`` for the loss).
    weight : np.ndarray, shape (M, D), optional
        Linear only; :func:`default_weight` (M = D) if omitted.
    target : int
        Softmax cross-entropy only: the true class, in [0, D).
    fn : callable, optional
        Custom only: maps a Tensor of shape (D,) to a Tensor, built with the engine
        (any Function, a student's own backward included). Its Jacobian is built from
        its backward with ``bc.jacobian`` and compared with the numerical one.
    rtol, atol : float
        Custom only: an entry disagrees if ``|J - J_num| > atol + rtol * |J_num|``.
    memory : tuple
        (N, D, M, dtype) for the memory comparison.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if layer == CUSTOM:
        if fn is None:
            raise ValueError('layer="custom" needs fn=')
        return _explore_custom(fn, x, g, rtol, atol, memory)
    if weight is None:
        weight = default_weight(x.size, x.size)
    jac = _layer_jacobian(layer, x, weight, target)
    g = _upstream(g, jac.shape[0], layer)
    state = ExplorerState(layer, x, g, jac, g @ jac,
                          _engine_vjp(_layer_forward(layer, weight, target), x, g),
                          notes=_layer_notes(layer, x, jac, target), memory=memory)
    if layer == "relu":
        state.dead = np.diag(x <= 0)
    return state


def _explore_custom(fn: Callable[[Tensor], Tensor], x: np.ndarray, g: np.ndarray | None,
                    rtol: float, atol: float,
                    memory: tuple[int, int, int, str]) -> ExplorerState:
    jac = np.atleast_2d(np.asarray(jacobian(fn, tensor(x)), dtype=np.float64))
    numerical = numerical_jacobian(lambda a: np.asarray(fn(tensor(a)).data), x.copy())
    numerical = numerical.reshape(jac.shape)
    disagree = disagrees(jac, numerical, atol, rtol)
    g = _upstream(g, jac.shape[0], layer=CUSTOM)
    worst = float(np.max(np.abs(jac - numerical))) if jac.size else 0.0
    if disagree.any():
        verdict = (f"{int(disagree.sum())} of {disagree.size} entries disagree with the "
                   f"numerical Jacobian (outlined); the largest |difference| is {worst:.3g}.")
    else:
        verdict = f"All {jac.size} entries agree with the numerical Jacobian (max |Δ| {worst:.1e})."
    return ExplorerState(CUSTOM, x, g, jac, g @ jac, _engine_vjp(fn, x, g),
                         numerical=numerical, disagree=disagree, notes=[verdict],
                         memory=memory)


def explorer_scene(state: ExplorerState) -> Scene:
    """Draw a state: g beside J (rows aligned), dL/dx under J (columns aligned), notes.

    For a custom function the numerical Jacobian is drawn to the right of J.
    """
    m, d = state.jacobian.shape
    cell = float(np.clip(360 / max(m, d), 22, 48))
    small = max(m, d) <= MAX_SIZE
    outs = ["L"] if state.layer == "softmax_ce" else [f"y{i + 1}" for i in range(m)]
    ins = [f"x{j + 1}" for j in range(d)]
    title = "J = ∂L/∂x" if state.layer == "softmax_ce" else "J = ∂y/∂x"
    jac = heatmap(state.jacobian, f"{title}  ({m}, {d})", outs, ins, cell, small,
                  outline=state.disagree, dashed=state.dead, name="jacobian")
    up = heatmap(state.g[:, None], f"g  ({m},)", outs, None, cell, small, name="g")
    down = heatmap(state.vjp[None, :], f"∂L/∂x = Jᵀg  ({d},)", None, None, cell, small,
                   name="vjp")
    # g's rows line up with J's rows, dL/dx's columns with J's columns
    jac_left = up.width + 40
    jac_x, jac_y = jac_left + jac.grid[0], jac.grid[1]
    scene = Scene(0, 0)
    scene.add(up, 0, jac_y - up.grid[1])
    scene.add(jac, jac_left, 0)
    down_top = jac.height + 16
    scene.add(down, jac_x - down.grid[0], down_top)
    width = jac_left + jac.width
    if state.numerical is not None:
        num = heatmap(state.numerical, f"numerical  ({m}, {d})", outs, ins, cell, small,
                      name="numerical")
        scene.add(num, width + 30, 0)
        width += 30 + num.width
    lines = list(state.notes)
    match = np.allclose(state.vjp, state.engine_vjp, rtol=1e-6, atol=1e-9)
    lines.append("Engine backward(g) gives the same ∂L/∂x ✓" if match else
                 "✗ Engine backward(g) gives a different ∂L/∂x: "
                 + np.array2string(state.engine_vjp, precision=3, separator=", "))
    lines += memory_lines(*state.memory)
    notes = text_block(lines, max(width, 560))
    scene.add(notes, 0, down_top + down.height + 10)
    scene.width = notes.width + 8
    scene.height = down_top + down.height + 10 + notes.height
    return scene


def _warning(text: str) -> str:
    return f'<span style="color:#b2182b">{escape(text)}</span>'


def _parse(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.replace(",", " ").split()])


class JacobianExplorer(widgets.VBox):
    """Pick a layer and an input; see the Jacobian, an upstream gradient and the VJP.

    Parameters
    ----------
    layer : str
        One of ``"relu", "sigmoid", "tanh", "linear", "softmax", "softmax_ce"``; ignored
        when ``fn`` is given.
    x : array_like, shape (D,), optional
        Initial input (D <= 12); :func:`default_x` of size 4 if omitted.
    fn : callable, optional
        A function of one Tensor (D,) built with the engine, e.g. one using a student's
        own ``Function``. The explorer then shows its Jacobian (from its backward) next
        to the numerical one and outlines the entries that disagree.
    g : array_like, shape (M,), optional
        Initial upstream gradient.
    weight : array_like, shape (M, D), optional
        Linear only.

    Attributes
    ----------
    state : ExplorerState
        What is shown now.
    view : widgets.HTML
        Holds the SVG picture (``view.value``).
    layer, size, out_size, target, sliders, g_text, batch, d_in, d_out, dtype
        The controls, for notebooks and tests to drive.
    """

    def __init__(self, layer: str = "relu", x: np.ndarray | None = None,
                 fn: Callable[[Tensor], Tensor] | None = None, g: np.ndarray | None = None,
                 weight: np.ndarray | None = None) -> None:
        self._fn = fn
        self._busy = False
        x0 = default_x(4) if x is None else np.asarray(x, dtype=np.float64).ravel()
        if not 1 <= x0.size <= MAX_SIZE:
            raise ValueError(f"x needs 1 to {MAX_SIZE} entries, got {x0.size}")
        self._weight = None if weight is None else np.asarray(weight, dtype=np.float64)
        options = [(label, key) for key, label in LAYERS.items()]
        if fn is not None:
            options.insert(0, ("your function", CUSTOM))
            layer = CUSTOM
        elif layer not in LAYERS:
            raise ValueError(f"layer must be one of {list(LAYERS)}, got {layer!r}")
        m0 = x0.size if self._weight is None else self._weight.shape[0]
        self.layer = widgets.Dropdown(options=options, value=layer, description="layer")
        self.size = widgets.IntSlider(x0.size, 1, MAX_SIZE, description="D (inputs)")
        self.out_size = widgets.IntSlider(m0, 1, MAX_SIZE, description="M (outputs)")
        self.target = widgets.IntSlider(0, 0, x0.size - 1, description="target class")
        self.sliders: list[widgets.FloatSlider] = []
        self.x_box = widgets.VBox()
        self._make_sliders(x0)
        g0 = "" if g is None else " ".join(f"{v:g}" for v in np.ravel(g))
        self.g_text = widgets.Text(g0, description="g = ∂L/∂y", continuous_update=False,
                                   placeholder="default; or e.g. 1 0 -2 0.5")
        self.batch = widgets.BoundedIntText(64, min=1, max=10**6, description="batch N")
        self.d_in = widgets.BoundedIntText(4096, min=1, max=10**6, description="D")
        self.d_out = widgets.BoundedIntText(4096, min=1, max=10**6, description="M")
        self.dtype = widgets.Dropdown(options=["float32", "float64"], description="dtype")
        self.view = widgets.HTML()
        self.message = widgets.HTML()
        controls = widgets.VBox([self.layer, self.size, self.out_size, self.target,
                                 self.g_text, widgets.HTML("<b>input x</b>"), self.x_box])
        memory = widgets.HBox([self.batch, self.d_in, self.d_out, self.dtype])
        for w in (self.batch, self.d_in, self.d_out):
            w.layout.width = "170px"
        self.dtype.layout.width = "190px"
        super().__init__([widgets.HBox([controls, self.view]), self.message,
                          widgets.HTML("<b>memory of an explicit Jacobian for a batch</b>"),
                          memory])
        for w in (self.layer, self.out_size, self.target, self.g_text, self.batch,
                  self.d_in, self.d_out, self.dtype):
            w.observe(self._update, names="value")
        self.size.observe(self._resize, names="value")
        self._sync_visibility()
        self._update()

    # ------------------------------------------------------------------ controls
    def _make_sliders(self, x: np.ndarray) -> None:
        for s in self.sliders:
            s.unobserve(self._update, names="value")
        self.sliders = [
            widgets.FloatSlider(float(v), min=-3.0, max=3.0, step=0.1,
                                description=f"x{i + 1}", continuous_update=True)
            for i, v in enumerate(x)
        ]
        for s in self.sliders:
            s.min, s.max = min(s.min, s.value), max(s.max, s.value)
            s.observe(self._update, names="value")
        self.x_box.children = self.sliders

    def _resize(self, change: dict) -> None:
        old = self.x
        new = default_x(change["new"])
        new[: min(old.size, new.size)] = old[: new.size]
        self._busy = True
        try:
            self._make_sliders(new)
            self.target.max = change["new"] - 1
            if self._weight is None:
                self.out_size.value = change["new"]
        finally:
            self._busy = False
        self._update()

    def _sync_visibility(self) -> None:
        layer = self.layer.value
        self.out_size.layout.display = "" if layer == "linear" else "none"
        self.target.layout.display = "" if layer == "softmax_ce" else "none"
        self.size.disabled = layer == CUSTOM

    @property
    def x(self) -> np.ndarray:
        """The input as the sliders show it, shape (D,)."""
        return np.array([s.value for s in self.sliders])

    @x.setter
    def x(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size != len(self.sliders):
            self.size.value = values.size
        self._busy = True
        try:
            for s, v in zip(self.sliders, values, strict=True):
                s.min, s.max = min(s.min, v), max(s.max, v)
                s.value = float(v)
        finally:
            self._busy = False
        self._update()

    def _weight_for(self, d: int) -> np.ndarray:
        m = self.out_size.value
        if self._weight is not None and self._weight.shape == (m, d):
            return self._weight
        return default_weight(m, d)

    # -------------------------------------------------------------------- update
    def _update(self, change: dict | None = None) -> None:
        if self._busy:
            return
        self._sync_visibility()
        x = self.x
        g = None
        message = ""
        if self.g_text.value.strip():
            try:
                g = _parse(self.g_text.value)
            except ValueError:
                message = "g must be numbers separated by spaces or commas; using the default."
        layer = self.layer.value
        memory = (self.batch.value, self.d_in.value, self.d_out.value, self.dtype.value)
        kwargs = {"weight": self._weight_for(x.size), "fn": self._fn, "memory": memory,
                  "target": min(self.target.value, x.size - 1)}
        try:
            try:
                self.state = explore(layer, x, g, **kwargs)
            except UpstreamShapeError as error:
                message = f"{error}: using the default."
                self.state = explore(layer, x, None, **kwargs)
        except Exception as error:  # a student's function may fail: say so, keep the picture
            self.message.value = _warning(f"{type(error).__name__}: {error}")
            return
        self.message.value = _warning(message) if message else ""
        self._scene = explorer_scene(self.state)
        self.view.value = to_svg(self._scene, "bc-jacobian")

    # ----------------------------------------------------------- static fallback
    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["image/svg+xml"] = self.view.value
        data["image/png"] = base64.b64encode(to_png(self._scene)).decode("ascii")
        data["text/plain"] = self.summary()
        return data

    def summary(self) -> str:
        """The current state in plain text."""
        s = self.state
        fmt = {"float_kind": lambda v: f"{v:.3g}"}
        return "\n".join([
            f"JacobianExplorer(layer={s.layer!r})",
            f"x = {np.array2string(s.x, formatter=fmt)}",
            f"J {s.jacobian.shape} =\n{np.array2string(s.jacobian, formatter=fmt)}",
            f"g = {np.array2string(s.g, formatter=fmt)}",
            f"dL/dx = J^T g = {np.array2string(s.vjp, formatter=fmt)}",
            *s.notes,
        ])
