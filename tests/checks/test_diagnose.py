"""Naming a mistake: each generic kind is recognised, and a hidden check's messages
(``reveal=False``) never show a value or a shape of its case, while a visible check's do."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from backprop_course.checks import Kind, Result, VJPExercise, get
from backprop_course.checks.diagnose import Mistake, closest, diagnose, explains
from backprop_course.checks.harness import NotNumeric

# distinctive numbers: any of them in a message is a leak
N, D = 13, 17
EXPECTED = np.arange(1, N * D + 1, dtype=np.float64).reshape(N, D) * 1.2345 + 0.0678
SQUARE = np.arange(1, 50, dtype=np.float64).reshape(7, 7) * 3.217 - 40.5


def numbers_left(message: str) -> list[str]:
    """The numbers in a message once its relative error, its case labels and the
    constants of its text (the same for every case) are taken out."""
    message = re.sub(r"relative error [-+.\deE]+|case \d+: |factor of 2|-1 times|1/N", "",
                     message)
    return re.findall(r"\d+", message)


def per_example(expected: np.ndarray) -> np.ndarray:
    """One row per example, summing to ``expected``: the missing sum over the batch."""
    rows = np.repeat(expected[None] / 4, 4, axis=0)
    rows[0] += 1.0
    rows[1] -= 1.0
    return rows


# (what the answer returned, the reference, batch size, the kind, phrase, a shape error)
GENERIC = [
    (-EXPECTED, EXPECTED, None, Kind.SIGN, "wrong sign", False),
    (-np.float64(2.5), np.array(2.5), None, Kind.SIGN, "it has the wrong sign", False),
    (SQUARE.T, SQUARE, None, Kind.TRANSPOSED, "transpose of the gradient", False),
    (EXPECTED.T, EXPECTED, None, Kind.TRANSPOSED, "transpose of the correct gradient", True),
    (EXPECTED.T * 3, EXPECTED, None, Kind.TRANSPOSED, "transposed shape", True),
    (3 * EXPECTED, EXPECTED, None, Kind.FACTOR, "constant factor", False),
    (EXPECTED / 2, EXPECTED, None, Kind.FACTOR, "factor of 2", False),
    (EXPECTED * N, EXPECTED, N, Kind.BATCH_FACTOR, "divide by N", False),
    (EXPECTED / N, EXPECTED, N, Kind.BATCH_FACTOR, "once too often", False),
    (per_example(EXPECTED), EXPECTED, 4, Kind.BATCH_SUM, "sum over the batch axis", True),
    (per_example(EXPECTED)[:, 0], EXPECTED[0], 4, Kind.BATCH_SUM, "one row per example", True),
    (np.where(EXPECTED > 100, np.nan, EXPECTED), EXPECTED, None, Kind.NAN, "NaN or inf", False),
    (np.where(EXPECTED > 100, -np.inf, EXPECTED), EXPECTED, None, Kind.NAN, "NaN or inf", False),
    (None, EXPECTED, None, Kind.MISSING, "returned None", False),
    ("abc", EXPECTED, None, Kind.TYPE, "numeric array", False),
    (NotNumeric("dict"), EXPECTED, None, Kind.TYPE, "got dict", False),
    ({"a": 1}, EXPECTED, None, Kind.TYPE, "got dict", False),
    (EXPECTED[:, :5], EXPECTED, None, Kind.SHAPE, "shape of its input", True),
    (EXPECTED.ravel(), EXPECTED, None, Kind.SHAPE, "shape of its input", True),
    (np.ones((2, 3, N, D)), EXPECTED, None, Kind.SHAPE, "shape of its input", True),
    (per_example(EXPECTED) * 3, EXPECTED, None, Kind.SHAPE, "reduce over the batch", True),
    (EXPECTED + np.eye(N, D), EXPECTED, None, Kind.VALUES, "wrong values", False),
    (np.float64(7.25), np.array(2.5), None, Kind.VALUES, "wrong values", False),  # no factor
]


@pytest.mark.parametrize(("actual", "expected", "batch", "kind", "phrase", "shape_error"),
                         GENERIC, ids=[f"{i}-{g[3].value}" for i, g in enumerate(GENERIC)])
@pytest.mark.parametrize("reveal", [True, False])
def test_each_generic_kind_is_recognised(actual, expected, batch, kind, phrase, shape_error,
                                         reveal) -> None:
    diagnosis = diagnose(actual, expected, "dL/dW", batch_size=batch, reveal=reveal)
    assert diagnosis.kind == kind and not diagnosis.ok, diagnosis
    assert phrase in diagnosis.message and diagnosis.message.startswith("dL/dW: "), diagnosis


@pytest.mark.parametrize(("actual", "expected", "batch", "kind", "phrase", "shape_error"),
                         GENERIC, ids=[f"{i}-{g[3].value}" for i, g in enumerate(GENERIC)])
def test_hidden_messages_show_no_value_or_shape(actual, expected, batch, kind, phrase,
                                                shape_error) -> None:
    hidden = diagnose(actual, expected, "dL/dW", batch_size=batch, reveal=False).message
    assert numbers_left(hidden) == [], hidden
    assert "shape (" not in hidden and "expected" not in hidden.replace("expected a", "")
    shown = diagnose(actual, expected, "dL/dW", batch_size=batch, reveal=True).message
    if shape_error:  # a visible check names both shapes
        assert str(np.shape(actual)) in shown and str(expected.shape) in shown, shown
    elif kind not in (Kind.MISSING, Kind.TYPE):  # ... and the worst element, or N
        assert numbers_left(shown), shown
    if kind == Kind.BATCH_FACTOR:
        assert f"N={batch}" in shown and f"N={batch}" not in hidden


def test_the_worst_element_is_shown_when_revealed() -> None:
    wrong = EXPECTED.copy()
    wrong[4, 9] += 50.0
    message = diagnose(wrong, EXPECTED, "dL/dW").message
    assert f"worst element [4, 9]: expected {EXPECTED[4, 9]:.6g}, got {wrong[4, 9]:.6g}" in message
    hidden = diagnose(wrong, EXPECTED, "dL/dW", reveal=False).message
    assert "[4, 9]" not in hidden and f"{EXPECTED[4, 9]:.6g}" not in hidden
    assert numbers_left(hidden) == [] and "relative error" in hidden


def test_hidden_factors_are_not_shown() -> None:
    """A factor can be a value of the case (here 1 / 0.37): only a visible check says it."""
    shown = diagnose(EXPECTED / 0.37, EXPECTED, "dL/dW").message
    hidden = diagnose(EXPECTED / 0.37, EXPECTED, "dL/dW", reveal=False).message
    assert f"{1 / 0.37:.6g}" in shown and numbers_left(hidden) == [], hidden


def test_a_right_answer_is_ok_and_says_so() -> None:
    for reveal in (True, False):
        diagnosis = diagnose(EXPECTED * (1 + 1e-12), EXPECTED, "dL/dW", reveal=reveal)
        assert diagnosis.ok and diagnosis.kind is None and "correct" in diagnosis.message
    assert diagnose(EXPECTED.tolist(), EXPECTED).ok  # a list of numbers is an array
    assert diagnose(np.float64(2.5), np.array(2.5)).ok


def test_the_exercises_own_mistakes_come_first_in_their_order() -> None:
    alternatives = [(Kind.CHAIN, "first", -EXPECTED), (Kind.LOCAL, "second", -EXPECTED)]
    diagnosis = diagnose(-EXPECTED, EXPECTED, alternatives=alternatives)
    assert diagnosis.kind == Kind.CHAIN and "first" in diagnosis.message  # before SIGN
    assert diagnose(2 * EXPECTED, EXPECTED, alternatives=alternatives).kind == Kind.FACTOR


def test_nan_hints_name_the_usual_cause() -> None:
    bad = np.full_like(EXPECTED, np.nan)
    assert "subtract the max" in diagnose(bad, EXPECTED, nonfinite_hint="subtract the max"
                                          ).message
    assert diagnose(bad, EXPECTED, reveal=False).kind == Kind.NAN


def test_a_nan_is_shown_as_it_is_and_nothing_warns() -> None:
    """The element that is not finite, with its value (not nan_to_num's inf or 1.8e308),
    and no RuntimeWarning on the student's stderr from the check's own arithmetic."""
    actual = EXPECTED.copy()
    actual[2, 3], actual[5, 1] = np.nan, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        message = diagnose(actual, EXPECTED, "dL/dW").message
        assert f"element [2, 3]: expected {EXPECTED[2, 3]:.6g}, got nan" in message, message
        actual[2, 3] = -np.inf
        assert "got -inf" in diagnose(actual, EXPECTED, "dL/dW").message
        assert "got inf" in diagnose(np.array(np.inf), np.array(1.0)).message


def test_explains_and_closest() -> None:
    mistake = Mistake(Kind.OVERWRITE, "m", [(EXPECTED, 2 * EXPECTED), (3 * EXPECTED, EXPECTED)])
    assert closest((3 * EXPECTED, np.zeros(1)), mistake)[0] is mistake.grads[1][0]
    assert explains((EXPECTED, "x"), (EXPECTED, EXPECTED)) is False
    assert explains((EXPECTED,), (EXPECTED, EXPECTED)) is False
    assert explains((EXPECTED.tolist(),), (EXPECTED,)) is True


# --------------------------------------------------- hidden checks of the exercises
def judged(exercise_id: str, answer, part: str, seed: int, reveal: bool) -> Result:
    """``part`` judged as the grader judges it (``reveal`` or not)."""
    import backprop_course as bc  # noqa: PLC0415

    exercise = get(exercise_id)
    rng = np.random.default_rng(seed)
    cases = exercise.cases(part, rng)
    large = exercise.large_case(rng) if part == "random" else None
    cases += [large] if large else []
    engine = bc if exercise.sandbox.engine else None
    outcomes = [exercise.run(answer, case, engine) for case in cases]
    return exercise.judge(part, cases, outcomes, reveal=reveal)


def failures(result: Result) -> set[str]:
    """What a report says is wrong, without relative errors and case labels."""
    return {re.sub(r"relative error [-+.\deE]+|case \d+: ", "", m) for m in result.failures}


def _hidden_cases() -> list:
    from test_exercises import BUGS  # noqa: PLC0415 - the seeded bugs, shared

    return [(b[0], b[1], b[2]) for b in BUGS
            if b[3] is not None and isinstance(get(b[0]), VJPExercise)]


@pytest.mark.parametrize(("exercise_id", "answer", "part"), _hidden_cases(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_a_hidden_report_does_not_depend_on_the_case(exercise_id, answer, part) -> None:
    """Judged on two students' cases, a seeded bug's hidden report reads the same (but
    for the relative error): nothing of the case is in it. Visible reports differ."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hidden = [judged(exercise_id, answer, part, seed, False) for seed in (21, 22)]
        shown = [judged(exercise_id, answer, part, seed, True) for seed in (21, 22)]
    assert not hidden[0].passed and not hidden[1].passed
    if hidden[0].kinds == hidden[1].kinds:
        assert failures(hidden[0]) == failures(hidden[1]), (hidden[0].report(),
                                                           hidden[1].report())
    shown_text = shown[0].report() + shown[1].report()
    for result in hidden:
        report = result.report()
        for case_shape in re.findall(r"\(\d+(?:, \d+)*,?\)", shown_text):
            assert case_shape not in report, (case_shape, report)
        assert "expected" not in report.replace("expected a", ""), report
        assert "N=" not in report and "worst element" not in report, report


def test_an_answers_exception_message_is_hidden_in_a_hidden_check() -> None:
    """The answer writes its exception's message: it may hold the hidden case."""

    class Leak(Exception):  # noqa: N818 - a name of its own, as an answer may choose
        pass

    def shapes(x, w, g):
        return x @ g, w  # numpy names both shapes

    def leak(x, w, g):
        raise Leak(repr(x))

    def count(x, w, g):
        return x, w, g

    def reports(answer, part):
        return tuple(judged("matmul_backward", answer, part, 3, reveal).report()
                     for reveal in (True, False))

    shown, hidden = reports(shapes, "random")
    assert "raised ValueError: matmul" in shown and numbers_left(shown), shown
    assert "raised ValueError" in hidden and numbers_left(hidden) == [], hidden
    shown, hidden = reports(leak, "given")
    assert "raised Leak: array(" in shown
    assert "Leak" not in hidden and "array(" not in hidden and "raised an exception" in hidden
    shown, hidden = reports(count, "given")
    assert "got 3 values" in shown and "wrong number of gradients" in hidden
    assert numbers_left(hidden) == [], hidden


def test_a_hidden_forward_error_shows_no_values() -> None:
    import backprop_course as bc  # noqa: PLC0415

    class Doubled(bc.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(np.tanh(x))
            return 2 * np.tanh(x)

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * (1 - y * y)

    shown = judged("tanh_function", Doubled, "random", 0, True).report()
    hidden = judged("tanh_function", Doubled, "random", 0, False).report()
    assert "forward is wrong" in shown and "forward is wrong" in hidden
    assert numbers_left(hidden) == [], hidden
