"""Exercises and their graded checks, each declared once.

An exercise says what the student writes (the ``answer`` name in its answer cell, whose
nbgrader ``grade_id`` is ``<id>_solution``), what the grader's sandbox gives that answer
(:class:`Sandbox`: numpy, and for the engine exercises the course engine's tensors
without what the exercise is about), how the answer is called (a convention of
:mod:`.harness`), how cases are drawn and which mistakes to recognise. It is split into
*parts*, each one graded check with its own points in the notebook:

``shape``   every returned gradient has the shape of its input (the student's own case)
``given``   values on the student's own variant of the deck's example
``random``  values on random inputs and shapes, and on the exercise's large case
``edge``    values on edge cases (ReLU at 0, logits of 1000, ...)

Every exercise with arrays of any size also has a *large* case, run before the others:
numerical differentiation (one forward pass per input number) misses its time budget
there, while a backward pass costs about one forward pass; an answer that misses it
scores nothing for the exercise (:meth:`VJPExercise.large_case`).

Values are compared with two references in float64: torch's autograd, and the numerical
gradient (central differences) that it must agree with; at a kink, and on the large
cases, torch's alone. A failed check names the likely mistake (:mod:`.diagnose`).

Cases are drawn from a generator the caller seeds: in the notebook from the student's
visible seed (:mod:`.variants`), in the grader from the course secret for hidden parts.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..gradcheck import compare, numerical_vjp
from . import harness
from .diagnose import Diagnosis, Mistake, as_float_array, closest, diagnose, explains
from .kinds import Kind

REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids are unique)."""
    if exercise.id in REGISTRY:
        raise ValueError(f"exercise {exercise.id!r} is registered twice")
    REGISTRY[exercise.id] = exercise
    return exercise


def get(exercise_id: str) -> Exercise:
    """The registered exercise ``exercise_id`` (importing every exercise module once)."""
    from . import exercises  # noqa: F401  (registers every exercise)

    if exercise_id not in REGISTRY:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[exercise_id]


@dataclass(frozen=True)
class Sandbox:
    """What the grader's interpreter gives an answer besides the standard library and
    numpy (bound to ``np``).

    ``engine``: the course engine's tensors as ``bc`` (``Tensor``, ``tensor``,
    ``Function``, ``no_grad``, ``ops``), with ``without`` left out of its files: module
    names (``"backward"``: the backward loop) or ``"ops.Tanh"`` (one operation's class).
    Nothing else of the course package exists there, nor torch, nor any other library.
    """

    engine: bool = False
    without: tuple[str, ...] = ()

    @property
    def preamble(self) -> str:
        """The imports an answer may rely on, as the notebook's imports cell binds them."""
        return "import numpy as np\n" + ("import backprop_course as bc\n" if self.engine else "")


NUMPY = Sandbox()


@dataclass
class Case:
    """One input of a check: ``values`` (argument name -> array or number, ``grad_out``
    included), a wall-clock ``budget`` in seconds for the large cases, and ``at_kink``
    when the numerical gradient is no reference there."""

    values: dict[str, Any]
    budget: float | None = None
    at_kink: bool = False
    expected: Any = None  # what the grader keeps to itself (the test labels of a training)


@dataclass
class Result:
    """The outcome of one graded check: the verdict, the messages for the student and
    the kinds of mistake found."""

    exercise: str
    part: str
    passed: bool = True
    messages: list[str] = field(default_factory=list)
    kinds: list[Kind] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def fail(self, kind: Kind, message: str) -> Result:
        """Record a failure."""
        self.passed = False
        self.kinds.append(kind)
        self.messages.append(message)
        self.failures.append(message)
        return self

    def report(self) -> str:
        """The verdict, then what is wrong (``-``) and what is right (``ok``)."""
        mark = "PASS" if self.passed else "FAIL"
        return "\n".join([f"[{mark}] {self.exercise} / {self.part}"]
                         + [f"  - {m}" for m in self.failures]
                         + [f"  ok  {m}" for m in self.messages if m not in self.failures])


@dataclass(frozen=True)
class Layer:
    """One layer of a network, to be checked on its own where a case of the network puts
    it: the layer's exercise, where it sits (for messages), and its case there (its inputs
    and the upstream gradient the network's loss sends it)."""

    exercise: str
    where: str
    values: dict[str, Any]


def random_shape(rng: np.random.Generator, max_size: int = 5, max_ndim: int = 2) -> tuple:
    """A random shape for elementwise exercises: 1 to ``max_ndim`` axes of 1 to ``max_size``."""
    return tuple(int(s) for s in rng.integers(1, max_size + 1, size=rng.integers(1, max_ndim + 1)))


#: The large case of an elementwise exercise: 200,000 numbers per input, so numerical
#: differentiation one element at a time needs 200,000 forward passes.
LARGE_SHAPE = (400, 500)


def large_elementwise(*names: str, spread: float = 1.0) -> Callable[[np.random.Generator], dict]:
    """The large case of an elementwise exercise: each input in ``names`` (the first
    with standard deviation ``spread``) and ``grad_out``, of shape :data:`LARGE_SHAPE`."""
    def draw(rng: np.random.Generator) -> dict:
        values = {name: rng.normal(0, spread if i == 0 else 1.0, LARGE_SHAPE)
                  for i, name in enumerate(names)}
        return {**values, "grad_out": rng.standard_normal(LARGE_SHAPE)}
    return draw


def small_ints(rng: np.random.Generator, shape: Any, low: int = -5, high: int = 5) -> np.ndarray:
    """Integers in [low, high] as floats, none zero: a deck-style example a student can
    follow by hand."""
    values = rng.integers(low, high, size=shape, endpoint=True).astype(np.float64)
    values[values == 0] = high
    return values


class Exercise:
    """Base class: what every exercise declares and how its checks run.

    Subclasses define ``parts``, :meth:`cases`, :meth:`judge` and :meth:`run_in_kernel`.
    """

    id: str
    notebook: str
    title: str
    answer: str | tuple[str, ...]
    sandbox: Sandbox
    #: exercises whose answer cells the grader runs first, in the same interpreter (what
    #: this answer may rely on from the notebook: e.g. the layers a network is built of)
    requires: tuple[str, ...]

    @property
    def answer_cell(self) -> str:
        """The nbgrader ``grade_id`` of the cell that holds the answer."""
        return f"{self.id}_solution"

    @property
    def parts(self) -> tuple[str, ...]:
        raise NotImplementedError

    def check_part(self, part: str) -> None:
        if part not in self.parts:
            raise ValueError(f"{self.id} has parts {self.parts}, not {part!r}")


def _numeric_shape(value: Any) -> tuple | None:
    """The shape of an answer's array of numbers, None if it is not one. A number or a
    list counts, as it does once :func:`.harness.encode` has sent it to the grader: the
    ``shape`` check of a 0-d case must not judge values in the kernel only."""
    if value is None:
        return None
    try:
        return as_float_array(value).shape
    except (TypeError, ValueError):
        return None


#: Exception names a hidden check may show (an answer's own class could be named anything).
BUILTIN_ERRORS = frozenset(name for name, value in vars(builtins).items()
                           if isinstance(value, type) and issubclass(value, BaseException))


#: Why an answer that misses the large case's budget fails (``{seconds}``: the budget).
TOO_SLOW = ("on a large input your code took more than {seconds:g} s. A backward pass "
            "costs about as much as the forward pass (milliseconds here); numerical "
            "differentiation costs one forward pass per input number, which is not a "
            "backward pass. Write the gradient formula.")


def did_not_finish(result: Result, outcome: dict, label: str,
                   too_slow: str = TOO_SLOW) -> Result | None:
    """The failure for an answer that ran out of time or stopped its interpreter (None
    when it returned or raised)."""
    if "timeout" in outcome:
        if outcome.get("large"):
            return result.fail(Kind.TOO_SLOW,
                               label + too_slow.format(seconds=outcome["timeout"]))
        return result.fail(Kind.TIMEOUT, f"{label}your code ran longer than "
                                          f"{outcome['timeout']:g} s (an endless loop?).")
    if "crashed" in outcome:
        return result.fail(Kind.CRASHED, f"{label}your code stopped the interpreter: "
                                          f"{outcome['crashed']}.")
    return None


def _error(result: Result, outcome: dict, signature: str, label: str,
           hints: dict[str, str], reveal: bool = True) -> Result:
    """A failure for an outcome in which the answer did not return. With ``reveal=False``
    the exception's message is not shown: the answer wrote it, and it may hold the
    hidden case's values or shapes (numpy's shape errors do)."""
    unfinished = did_not_finish(result, outcome, label)
    if unfinished is not None:
        return unfinished
    name, message = str(outcome["error"])[:100], str(outcome.get("message", ""))[:2000]
    if name == "NotImplementedError":
        return result.fail(Kind.NOT_IMPLEMENTED,
                           f"{label}not implemented yet: write the body of {signature}.")
    if name == "WrongCountError":
        return result.fail(Kind.COUNT, f"{label}{message}." if reveal else
                           f"{label}your code returned the wrong number of gradients: "
                           f"return one per input, as {signature} says.")
    hint = hints.get(name)
    if not reveal:
        shown = name if name in BUILTIN_ERRORS else "an exception"
        return result.fail(Kind.ERROR, f"{label}your code raised {shown} (its message is not "
                                       "shown for a hidden check)"
                                       + (f" ({hint})" if hint else ""))
    return result.fail(Kind.ERROR, f"{label}your code raised {name}: {message}"
                                   + (f" ({hint})" if hint else ""))


@dataclass
class VJPExercise(Exercise):
    """The student writes a backward pass: given the inputs (and the upstream gradient),
    return the gradient with respect to each input in ``wrt``.

    Parameters
    ----------
    id, notebook, title : registry id, the notebook it belongs to, a title for messages
    answer : the name the answer cell defines (function or class), or several names
        (e.g. a layer's forward and backward, for ``call="layer"``)
    signature : how the answer is called, e.g. ``"relu_backward(x, grad_out)"``
    inputs : argument names, in order
    wrt : the inputs whose gradients the answer returns, in order
    forward : numpy forward ``forward(**inputs) -> output`` (the numerical reference)
    torch_forward : the same in torch ``torch_forward(**tensors) -> tensor``
    given : ``rng -> cases``: the student's variant of the deck's example(s); the
        ``shape`` and ``given`` checks run on them
    random : ``rng -> case`` of random shapes and values, ``random_trials`` of them
    edge : ``rng -> cases`` on edge cases (none: no ``edge`` part)
    large : ``rng -> case`` too large for numerical differentiation within ``budget``
        seconds (see :meth:`large_case`)
    call : the :mod:`.harness` calling convention
    sandbox : what the grader's interpreter gives the answer
    requires : exercises whose answer cells run first (see :class:`Exercise`)
    mistakes : ``case -> list of Mistake`` specific to the exercise
    edge_at_kink : the edge cases sit on a kink, where torch's convention alone decides
    nonfinite_hint, error_hints : the usual cause of NaN, and of an exception by name
    layers : for a network built of the ``requires`` exercises' layers: ``case values ->
        Layer``s, in the order the backward pass meets them; when a check of the network
        fails, each layer is judged on its own there and the wrong ones are named
    """

    id: str
    notebook: str
    title: str
    answer: str
    signature: str
    inputs: tuple[str, ...]
    wrt: tuple[str, ...]
    forward: Callable[..., np.ndarray]
    torch_forward: Callable[..., Any]
    given: Callable[[np.random.Generator], list[dict]]
    random: Callable[[np.random.Generator], dict]
    edge: Callable[[np.random.Generator], list[dict]] | None = None
    large: Callable[[np.random.Generator], dict] | None = None
    budget: float = 5.0
    call: str = "vjp"
    sandbox: Sandbox = NUMPY
    requires: tuple[str, ...] = ()
    mistakes: Callable[[dict], list[Mistake]] | None = None
    edge_at_kink: bool = False
    nonfinite_hint: str = ""
    error_hints: dict[str, str] = field(default_factory=dict)
    random_trials: int = 3
    layers: Callable[[dict], list[Layer]] | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        return ("shape", "given", "random") + (("edge",) if self.edge else ())

    # -------------------------------------------------------------------- cases
    def cases(self, part: str, rng: np.random.Generator) -> list[Case]:
        """The check's cases, drawn from ``rng`` (one upstream gradient each)."""
        self.check_part(part)
        at_kink = part == "edge" and self.edge_at_kink
        if part in ("shape", "given"):
            drawn = [Case(c) for c in self.given(rng)]
        elif part == "edge":
            drawn = [Case(c, at_kink=at_kink) for c in self.edge(rng)]
        else:
            drawn = [Case(self.random(rng)) for _ in range(self.random_trials)]
        return [self._complete(case, rng) for case in drawn]

    def large_case(self, rng: np.random.Generator) -> Case | None:
        """The case too large for numerical differentiation within ``budget`` (None if
        the exercise has none). An answer that misses the budget scores nothing for the
        exercise; one that makes it is judged on it in the ``random`` check."""
        if self.large is None:
            return None
        return self._complete(Case(self.large(rng), budget=self.budget), rng)

    def _complete(self, case: Case, rng: np.random.Generator) -> Case:
        case.values = {k: np.asarray(v) if isinstance(v, (list, tuple)) else v
                       for k, v in case.values.items()}
        if "grad_out" not in case.values:
            shape = np.shape(self.forward(**self._inputs(case.values)))
            case.values["grad_out"] = rng.standard_normal(shape)
        return case

    def _inputs(self, values: dict) -> dict:
        return {k: values[k] for k in self.inputs}

    # --------------------------------------------------------------- references
    def numerical(self, values: dict) -> tuple[np.ndarray, ...]:
        """Central differences of ``sum(forward * grad_out)`` for each ``wrt`` input."""
        grads = []
        for name in self.wrt:
            def f(v: np.ndarray, name: str = name) -> np.ndarray:
                return np.asarray(self.forward(**{**self._inputs(values), name: v}))
            grads.append(numerical_vjp(f, np.array(values[name], dtype=np.float64),
                                       values["grad_out"]))
        return tuple(grads)

    def torch_reference(self, values: dict, grad_out: Any = None) -> tuple[np.ndarray, ...]:
        """torch's gradients for each ``wrt`` input (float64)."""
        import torch

        tensors = {k: torch.tensor(np.asarray(v), requires_grad=k in self.wrt)
                   for k, v in self._inputs(values).items()}
        out = self.torch_forward(**tensors)
        upstream = values["grad_out"] if grad_out is None else grad_out
        out.backward(torch.tensor(np.asarray(upstream, dtype=np.float64), dtype=out.dtype))
        return tuple(tensors[name].grad.numpy().copy() for name in self.wrt)

    def reference(self, case: Case, grad_out: Any = None) -> tuple[np.ndarray, ...]:
        """torch's gradients, after checking that they agree with the numerical ones
        (torch's alone at a kink and on large cases)."""
        exact = self.torch_reference(case.values, grad_out)
        if case.at_kink or case.budget is not None:
            return exact
        values = case.values if grad_out is None else {**case.values, "grad_out": grad_out}
        for name, a, b in zip(self.wrt, exact, self.numerical(values), strict=True):
            mismatch = compare(a, b)
            if mismatch is not None:
                raise RuntimeError(f"{self.id}: torch and the numerical gradient disagree for "
                                   f"{name}: {mismatch.describe()} (a bug in the exercise)")
        return exact

    # ------------------------------------------------------------------ running
    def run(self, answer: Any, case: Case, engine: Any = None) -> dict:
        """Call ``answer`` on one case here (the student's kernel); the outcome."""
        start = time.perf_counter()
        try:
            returned = harness.CALLS[self.call](answer, case.values, self.inputs, self.wrt,
                                                engine)
        except Exception as error:  # the student's code may raise anything
            return {"error": type(error).__name__, "message": str(error)[:2000]}
        seconds = time.perf_counter() - start
        if case.budget is not None and seconds > case.budget:
            return {"timeout": case.budget, "large": True}
        return {"returned": returned}

    def run_in_kernel(self, answer: Any, part: str, rng: np.random.Generator) -> Result:
        """Run and judge one check in the student's kernel (the ``random`` check runs the
        large case too)."""
        engine = None
        if self.sandbox.engine:
            import backprop_course as engine
        cases = self.cases(part, rng)
        large = self.large_case(rng) if part == "random" else None
        layers = self._kernel_layers(answer)
        outcomes = []
        for case in cases + ([large] if large else []):
            outcomes.append(self.run(answer, case, engine))
            if layers is not None:
                self.probe_layers(case, outcomes[-1], lambda exercise, at: exercise.run(
                    layers[exercise.id], at, engine))
            if "returned" not in outcomes[-1]:
                break
        return self.judge(part, cases + ([large] if large else []), outcomes, reveal=True)

    def _kernel_layers(self, answer: Any) -> dict[str, Any] | None:
        """A network's layers as the student's kernel has them: the answers of the
        ``requires`` exercises that the answer's notebook defines (its globals), by exercise
        id; None if it is not a network or the notebook does not define them all."""
        space = getattr(answer, "__globals__", None)
        if self.layers is None or space is None:
            return None
        layers = {}
        for required in map(get, self.requires):
            names = (required.answer,) if isinstance(required.answer, str) else required.answer
            if not all(name in space for name in names):
                return None
            found = tuple(space[name] for name in names)
            layers[required.id] = found[0] if len(found) == 1 else found
        return layers

    def probe_layers(self, case: Case, outcome: dict,
                     call: Callable[[VJPExercise, Case], dict]) -> None:
        """Run a network's layers on their own at ``case`` (``call(layer, case)`` runs a
        layer's answer) and keep their outcomes in ``outcome["layers"]`` for :meth:`judge`:
        only for a network, not on a large case, and only if the network's answer returned
        or raised."""
        if self.layers is None or case.budget is not None or not (
                "returned" in outcome or "error" in outcome):
            return
        outcome["layers"] = [call(get(layer.exercise), Case(layer.values))
                             for layer in self.layers(case.values)]

    # ----------------------------------------------------------------- judging
    def judge(self, part: str, cases: list[Case], outcomes: list[dict],
              reveal: bool = True) -> Result:
        """Judge the outcomes of the answer on ``cases`` against fresh references.

        ``reveal=False`` (a hidden check): messages never show a value or shape of a case.
        """
        self.check_part(part)
        result = Result(self.id, part)
        for number, case in enumerate(cases):
            label = "" if len(cases) == 1 else f"case {number + 1}: "
            if case.budget is not None:
                label = "large case: "
            if number >= len(outcomes):
                return result.fail(Kind.ERROR, f"{label}your code was not run on this case.")
            outcome = outcomes[number]
            if "returned" not in outcome:
                return self._blame(_error(result, outcome, self.signature, label,
                                          self.error_hints, reveal), case, outcome, reveal)
            got = tuple(outcome["returned"])
            if self.call in harness.FORWARD_FIRST:
                forward, got = got[0], got[1:]
                wrong = self._forward_error(case, forward, reveal)
                if wrong:
                    return self._blame(result.fail(Kind.FORWARD, label + wrong), case,
                                       outcome, reveal)
            expected = self.reference(case)
            diagnoses = self._diagnose(case, expected, got, part == "shape", reveal)
            for diagnosis in diagnoses:
                if not diagnosis.ok:
                    result.fail(diagnosis.kind, label + diagnosis.message)
                elif number == 0:
                    result.messages.append(label + diagnosis.message)
            if not result.passed:
                return self._blame(result, case, outcome, reveal)
        return result

    def _blame(self, result: Result, case: Case, outcome: dict, reveal: bool) -> Result:
        """A network's check failed on ``case``: judge each layer's outcome there (see
        :meth:`probe_layers`) with the layer's own exercise, and put the wrong layers, each
        named once, first in the report."""
        if self.layers is None or "layers" not in outcome:
            return result
        lines, kinds, named = [], [], set()
        for layer, probed in zip(self.layers(case.values), outcome["layers"], strict=True):
            exercise = get(layer.exercise)
            if exercise.id in named:
                continue
            verdict = exercise.judge("random", [Case(layer.values)], [probed], reveal)
            if not verdict.passed:
                named.add(exercise.id)
                names = [exercise.answer] if isinstance(exercise.answer, str) else \
                    exercise.answer
                lines.append(f"your layer {' / '.join(names)} is wrong (checked on its own as "
                             f"{layer.where}): " + "; ".join(verdict.failures))
                kinds += verdict.kinds
        result.failures[:0] = lines
        result.messages[:0] = lines
        result.kinds[:0] = kinds
        return result

    def _forward_error(self, case: Case, forward: Any, reveal: bool) -> str:
        """Why the output of the answer's forward is wrong ("" if it is right)."""
        expected = np.asarray(self.forward(**self._inputs(case.values)), dtype=np.float64)
        try:
            actual = np.asarray(getattr(forward, "data", forward), dtype=np.float64)
        except (TypeError, ValueError):
            return f"forward returned {type(forward).__name__}, not an array."
        if actual.shape == expected.shape and np.allclose(actual, expected, rtol=1e-7,
                                                          atol=1e-12):
            return ""
        what = "the loss" if self.call == "loss" else "forward"
        nonfinite = actual.shape == expected.shape and not np.all(np.isfinite(actual))
        hint = f" ({self.nonfinite_hint})" if nonfinite and self.nonfinite_hint else ""
        if not reveal or actual.shape != expected.shape:
            return f"{what} is wrong: its output is not the function's value{hint}."
        return (f"{what} is wrong: expected {np.round(expected, 6)}, got "
                f"{np.round(actual, 6)}{hint}.")

    def _diagnose(self, case: Case, expected: tuple, got: tuple, shapes_only: bool,
                  reveal: bool) -> list[Diagnosis]:
        first = np.asarray(case.values[self.inputs[0]])
        batch = first.shape[0] if first.ndim >= 2 else None
        right = explains(got, expected)  # the usual case: no mistake to look for
        mistakes = [] if right else [(m, closest(got, m)) for m in self._mistakes(case)]
        # one mistake explains all the arrays: name the ones that do before the others
        mistakes.sort(key=lambda item: not explains(got, item[1]))
        out = []
        for i, (name, exp, actual) in enumerate(zip(self.wrt, expected, got, strict=True)):
            if shapes_only and _numeric_shape(actual) == exp.shape:
                shape = f" {exp.shape}" if reveal else ""
                out.append(Diagnosis(None, f"dL/d{name}: shape{shape}, as it should be."))
                continue
            alternatives = [(m.kind, m.message, grads[i]) for m, grads in mistakes]
            out.append(diagnose(actual, exp, f"dL/d{name}", batch, alternatives,
                                self.nonfinite_hint, reveal))
        return out

    def _mistakes(self, case: Case) -> list[Mistake]:
        found = list(self.mistakes(case.values) if self.mistakes else [])
        grad_out = np.asarray(case.values["grad_out"], dtype=np.float64)
        if not np.allclose(grad_out, 1.0):
            found.append(Mistake(Kind.UPSTREAM, "you ignored the upstream gradient grad_out "
                                 "(this is the local gradient alone); multiply by grad_out",
                                 self.reference(case, np.ones_like(grad_out))))
        return found


@dataclass
class ValueExercise(Exercise):
    """The student derives numbers by hand, at numbers of their own.

    ``provides(rng)`` draws the student's numbers (name -> value), which the notebook
    shows (:func:`.my_numbers`) and the grader gives the answer cell; ``solve(numbers)``
    computes each answer's reference value; each answer is one part. ``mistakes(numbers)``
    gives, per answer, the values known slips give, checked in order when it is wrong.
    """

    id: str
    notebook: str
    title: str
    provides: Callable[[np.random.Generator], dict[str, float]]
    solve: Callable[[dict[str, float]], dict[str, float]]
    answer_names: tuple[str, ...]
    mistakes: Callable[[dict[str, float]], dict[str, list[tuple[Kind, str, float]]]] | None = None
    sandbox: Sandbox = NUMPY
    requires: tuple[str, ...] = ()

    @property
    def answer(self) -> str:
        return ", ".join(self.answer_names)

    @property
    def parts(self) -> tuple[str, ...]:
        return self.answer_names

    def run_in_kernel(self, answer: Any, part: str, rng: np.random.Generator) -> Result:
        """Judge the answer the test cell passes, a dict ``{part: value}``."""
        self.check_part(part)
        if not isinstance(answer, dict) or part not in answer:
            return Result(self.id, part).fail(Kind.UNANSWERED, f"pass a dict with the "
                                                               f"answer {part!r}.")
        return self.judge(part, self.provides(rng), {"value": answer[part]})

    def judge(self, part: str, numbers: dict[str, float], outcome: dict,
              reveal: bool = True) -> Result:
        """Judge the value an answer gave for ``part`` at the student's ``numbers``."""
        self.check_part(part)
        result = Result(self.id, part)
        if "value" not in outcome:
            return _error(result, outcome, f"the cell that sets {self.answer}", "", {}, reveal)
        value = outcome["value"]
        if value is None or value is Ellipsis:
            return result.fail(Kind.UNANSWERED, f"{part}: not answered yet.")
        expected = np.asarray(self.solve(numbers)[part], dtype=np.float64)
        slips = (self.mistakes(numbers) if self.mistakes else {}).get(part, [])
        diagnosis = diagnose(value, expected, part, alternatives=slips, reveal=reveal)
        if not diagnosis.ok:
            return result.fail(diagnosis.kind, diagnosis.message)
        result.messages.append(diagnosis.message)
        return result


@dataclass
class TrainingExercise(Exercise):
    """The student's own code trains a model: graded on the test accuracy that the
    parameters it returns reach within ``budget`` seconds, predicted by the grader.

    ``data(rng)`` returns the data (``X_train``, ``y_train`` and ``X_test``) and the test
    labels. The answer is called ``answer(X_train, y_train)`` and returns the trained
    parameters named by ``wrt``; it never sees the test set. ``predict(params, X_test)``
    is the grader's own forward pass of the required network: it returns one label per
    test row, or raises ``ValueError`` saying what is wrong with the parameters. So only
    a network of that shape counts, not a classifier of another kind (nearest
    neighbours, say) nor predictions. It passes at ``threshold`` accuracy or more.
    """

    id: str
    notebook: str
    title: str
    answer: str
    signature: str
    data: Callable[[np.random.Generator], tuple[dict, np.ndarray]]
    predict: Callable[[tuple[np.ndarray, ...], np.ndarray], np.ndarray]
    threshold: float
    wrt: tuple[str, ...]
    budget: float = 120.0
    sandbox: Sandbox = NUMPY
    requires: tuple[str, ...] = ()
    call: str = "train"
    inputs: tuple[str, ...] = ("X_train", "y_train")

    @property
    def parts(self) -> tuple[str, ...]:
        return ("accuracy",)

    def cases(self, part: str, rng: np.random.Generator) -> list[Case]:
        """One training run on data drawn from ``rng``; the test set stays here."""
        self.check_part(part)
        values, labels = self.data(rng)
        given = {name: values[name] for name in self.inputs}
        return [Case(given, budget=self.budget,
                     expected=(np.asarray(values["X_test"]), np.asarray(labels)))]

    def run_in_kernel(self, answer: Any, part: str, rng: np.random.Generator) -> Result:
        """Train and judge in the student's kernel (with the same time budget)."""
        (case,) = self.cases(part, rng)
        start = time.perf_counter()
        try:
            returned = harness.CALLS[self.call](answer, case.values, self.inputs, self.wrt)
        except Exception as error:  # the student's code may raise anything
            outcome = {"error": type(error).__name__, "message": str(error)[:2000]}
        else:
            outcome = {"returned": returned}
            if time.perf_counter() - start > self.budget:
                outcome = {"timeout": self.budget}
        return self.judge(part, [case], [outcome])

    def judge(self, part: str, cases: list[Case], outcomes: list[dict],
              reveal: bool = True) -> Result:
        """Pass if the returned parameters classify the test set well enough."""
        self.check_part(part)
        result = Result(self.id, part)
        (case,), outcome = cases, (outcomes or [{"error": "Error", "message": "not run"}])[0]
        if "timeout" in outcome:
            return result.fail(Kind.TIMEOUT, f"training took more than {self.budget:g} s: "
                                             "make it faster (fewer steps, smaller batches, "
                                             "vectorized code).")
        if "returned" not in outcome:
            return _error(result, outcome, self.signature, "", {}, reveal)
        x_test, labels = case.expected
        try:
            params = tuple(as_float_array(value) for value in outcome["returned"])
            if not all(np.all(np.isfinite(p)) for p in params):
                return result.fail(Kind.NAN, "the trained parameters contain NaN or inf: "
                                             "training diverged (a smaller step size?).")
            predicted = np.asarray(self.predict(params, x_test)).reshape(-1)
        except (TypeError, ValueError) as error:
            return result.fail(Kind.SHAPE, f"the grader could not use what {self.answer} "
                                           f"returned as the trained network: {error}")
        accuracy = float(np.mean(predicted == labels))
        message = f"test accuracy {accuracy:.1%} (at least {self.threshold:.0%} passes)"
        if accuracy < self.threshold:
            return result.fail(Kind.VALUES, f"{message}; the grader reads what you return "
                                            f"as {self.signature}.")
        result.messages.append(message + ".")
        return result

