"""Interactive views for the lessons: the Jacobian explorer and the backward stepper.

Usage in a notebook::

    import backprop_course as bc
    from backprop_course.widgets import JacobianExplorer, BackwardStepper

    JacobianExplorer("relu")                    # or "sigmoid", "tanh", "linear",
                                                # "softmax", "softmax_ce"
    JacobianExplorer("linear", x=[1., -2., 0.5])
    JacobianExplorer(fn=MySigmoid.apply, x=[0.5, -1., 2.])   # your Function vs numerics

    x = bc.tensor(-2., requires_grad=True)
    y = bc.tensor(5., requires_grad=True)
    z = bc.tensor(-4., requires_grad=True)
    f = (x + y) * z
    BackwardStepper(f)      # before f.backward(); names x, y, z, f are picked up

``JacobianExplorer(layer="relu", x=None, fn=None, g=None, weight=None)``
    Controls: layer, input size D, output size M (linear), target class (softmax
    cross-entropy), one slider per input entry, the upstream gradient g as text, and
    N, D, M, dtype for the memory of an explicit Jacobian versus the VJP. Shows J as a
    heatmap, g beside it, dL/dx = J^T g under it, and checks that against the engine's
    ``backward(g)``. With ``fn`` (a function of one Tensor built with the engine) it
    shows J from ``fn``'s backward next to the numerical Jacobian and outlines the
    entries that disagree. ``.x`` reads or sets the input; ``.state`` is what is shown.

``BackwardStepper(output, names=None)``
    Draws the graph behind ``output`` (values above the nodes, gradients below) and
    steps through the backward pass with buttons or its ``step`` slider, one node at a
    time: upstream x local = downstream, and accumulation where a value fans out. It
    never touches ``.grad``.

Both widgets redraw as hand-built SVG (well under the 50 ms budget for a 10x10
Jacobian) and, when displayed without a live kernel (nbconvert, nbgrader feedback,
GitHub), fall back to a PNG/SVG picture of their current state and a text summary.

The pure functions behind them (state in, picture out) are exported too:
:func:`explore`, :func:`explorer_scene`, :func:`build_graph`, :func:`graph_scene`,
:func:`step_lines`, :func:`heatmap`, :func:`to_svg`, :func:`to_png`,
:func:`jacobian_memory`.
"""

from .explorer import LAYERS, ExplorerState, JacobianExplorer, explore, explorer_scene
from .render import Scene, format_bytes, heatmap, jacobian_memory, to_png, to_svg
from .stepper import BackwardStepper, Graph, build_graph, graph_scene, step_lines

__all__ = [
    "LAYERS",
    "BackwardStepper",
    "ExplorerState",
    "Graph",
    "JacobianExplorer",
    "Scene",
    "build_graph",
    "explore",
    "explorer_scene",
    "format_bytes",
    "graph_scene",
    "heatmap",
    "jacobian_memory",
    "step_lines",
    "to_png",
    "to_svg",
]
