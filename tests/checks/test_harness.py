"""The harness: values cross the grader's sandbox wall exactly, anything malformed is
refused with WireError (and nothing else) before anything large is allocated, and the
calling conventions call an answer the way the notebook does."""

from __future__ import annotations

import base64
import json
import math
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backprop_course as bc
from backprop_course.checks import REGISTRY, VJPExercise, get
from backprop_course.checks.harness import (
    CALLS,
    DTYPES,
    MAX_ELEMENTS,
    MAX_NDIM,
    NotNumeric,
    WireError,
    WrongCountError,
    call_engine_backward,
    call_function,
    call_grad,
    call_vjp,
    decode,
    decode_case,
    encode,
    encode_case,
    engine_graph,
)


def wire(value: Any, as_float: bool = True) -> Any:
    """``value`` there and back, through JSON text as the grader's pipe carries it."""
    return decode(json.loads(json.dumps(encode(value, as_float))))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal dtype, shape and bytes: nan, inf and -0.0 included."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ round trips
SPECIAL = np.array([[1.5, np.nan, -np.nan], [np.inf, -np.inf, -0.0], [0.0, 5e-324, 1.7e308]])


@pytest.mark.parametrize("value", [
    SPECIAL, SPECIAL.T, SPECIAL[::2, ::-1], np.asfortranarray(SPECIAL), np.float64(-0.0),
    np.array(np.nan), np.zeros((0, 3)), np.zeros((2, 0, 4)), np.arange(24.0).reshape(2, 3, 4),
    np.ones([1] * MAX_NDIM),
], ids=lambda v: f"shape{np.shape(v)}")
def test_float64_arrays_cross_the_wire_bit_for_bit(value) -> None:
    back = wire(value)
    assert isinstance(back, np.ndarray) and back.flags.writeable
    assert same_bits(back, np.asarray(value, dtype=np.float64))  # tobytes: C order


def test_nan_payloads_and_signed_zeros_survive() -> None:
    odd_nan = np.array([0x7FF8_0000_DEAD_BEEF], dtype=np.int64).view(np.float64)
    back = wire(np.concatenate([odd_nan, [-0.0]]))
    assert back.view(np.int64)[0] == 0x7FF8_0000_DEAD_BEEF
    assert np.signbit(back[1]) and back[1] == 0


@pytest.mark.parametrize("value", [
    np.array([-(2**63), 2**63 - 1, 0, -1], dtype=np.int64), np.arange(6).reshape(2, 3),
    np.array(7), np.array([True, False, True]), np.array(False), np.zeros((0,), dtype=bool),
    np.array([1, -2], dtype=np.int8), np.array([3, 4], dtype=np.int32),
])
def test_integer_and_bool_cases_keep_their_type(value) -> None:
    back = wire(value, as_float=False)
    kind = "b" if value.dtype.kind == "b" else "i"
    expected = value.astype(np.bool_ if kind == "b" else np.int64)
    assert same_bits(back, expected)
    # what an answer returned always arrives as float64
    assert same_bits(wire(value), value.astype(np.float64))


def test_numbers_lists_and_tensors_arrive_as_arrays() -> None:
    assert same_bits(wire(3.25), np.array(3.25))
    assert same_bits(wire(True), np.array(1.0))
    assert same_bits(wire([1, 2, 3]), np.array([1.0, 2.0, 3.0]))
    assert same_bits(wire([[1.5], [np.inf]]), np.array([[1.5], [np.inf]]))
    assert same_bits(wire(bc.tensor([1.0, -0.0])), np.array([1.0, -0.0]))
    torch = pytest.importorskip("torch")
    assert same_bits(wire(torch.tensor([[1.0, 2.0]], requires_grad=True)),
                     np.array([[1.0, 2.0]]))
    assert same_bits(wire(np.int64(5), as_float=False), np.array(5))


def test_none_crosses_as_none() -> None:
    assert encode(None) == {"none": True}
    assert wire(None) is None


class BadData:
    @property
    def data(self):
        raise RuntimeError("boom")


class BadArray:
    def __array__(self, *args, **kwargs):
        raise ZeroDivisionError("boom")


@pytest.mark.parametrize(("value", "name"), [
    ("abc", "str"), ({"a": 1}, "dict"), (object(), "object"), (print, "builtin_function_or_method"),
    ([1, [2, 3]], "list"), (np.array(["a", "b"]), "ndarray"), (np.array([object()]), "ndarray"),
    (np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), "ndarray"), (10**400, "int"),
    (BadData(), "BadData"), (BadArray(), "BadArray"),
    (Ellipsis, "ellipsis"),
])
def test_non_numbers_cross_as_not_numeric(value, name) -> None:
    """Never an exception: in the sandbox encode runs outside the answer's try (a by-hand
    answer's value), where one would stop the runner."""
    item = encode(value)
    assert item == {"other": name}
    assert wire(value) == NotNumeric(name)


def test_arrays_without_a_buffer_format_are_sent_as_numbers() -> None:
    """A datetime64 array's .data (a buffer) raises; its values are numbers all the same,
    as they are for the kernel's check (diagnose converts them the same way)."""
    from backprop_course.checks.diagnose import as_float_array  # noqa: PLC0415

    days = np.array(["1970-01-03", "2020-01-01"], dtype="datetime64[D]")
    assert same_bits(wire(days), days.astype(np.float64))
    assert same_bits(as_float_array(days), days.astype(np.float64))
    assert same_bits(wire(np.timedelta64(3, "s")), np.array(3.0))


def test_too_large_or_too_deep_arrays_are_not_sent() -> None:
    assert "too large" in encode(np.zeros(MAX_ELEMENTS + 1, dtype=np.bool_))["other"]
    assert "too large" in encode(np.zeros([1] * (MAX_NDIM + 1)))["other"]
    assert wire(np.zeros([1] * MAX_NDIM)).shape == (1,) * MAX_NDIM


def test_long_type_names_are_cut() -> None:
    long = type("X" * 500, (), {})()
    assert wire(long) == NotNumeric("X" * 100)
    assert decode({"other": "Y" * 1000}) == NotNumeric("Y" * 100)


def test_every_exercises_cases_cross_the_wall_exactly() -> None:
    """What the grader sends the sandbox: every case of every part, its integer targets
    and graph numbers still integers, and an answer computes the same on either side."""
    from test_exercises import CORRECT  # noqa: PLC0415 - the shared correct answers

    for exercise_id, exercise in sorted(REGISTRY.items()):
        if exercise_id not in CORRECT or not isinstance(exercise, VJPExercise):
            continue  # later notebooks test theirs in their own files
        engine = bc if exercise.sandbox.engine else None
        for part in exercise.parts:
            for case in exercise.cases(part, np.random.default_rng(3)):
                sent = decode_case(json.loads(json.dumps(encode_case(case.values))))
                assert sorted(sent) == sorted(case.values)
                for name, value in case.values.items():
                    original = np.asarray(value)
                    kind = "b" if original.dtype.kind == "b" else \
                        "i" if original.dtype.kind in "iu" else "f"
                    assert sent[name].dtype.kind == kind, (exercise_id, name)
                    assert np.array_equal(sent[name], original), (exercise_id, name)
                here = CALLS[exercise.call](CORRECT[exercise_id], case.values,
                                            exercise.inputs, exercise.wrt, engine)
                there = CALLS[exercise.call](CORRECT[exercise_id], sent, exercise.inputs,
                                             exercise.wrt, engine)
                for a, b in zip(here, there, strict=True):
                    assert same_bits(wire(a), wire(b)), (exercise_id, part)


def test_a_case_survives_only_as_an_object() -> None:
    assert decode_case({}) == {}
    for data in ([], "x", None, 3):
        with pytest.raises(WireError):
            decode_case(data)
    with pytest.raises(WireError):
        decode_case({"x": [1, 2]})


# -------------------------------------------------------------- malformed items
def _b64(n_bytes: int) -> str:
    return base64.b64encode(bytes(n_bytes)).decode()


MALFORMED = [
    "a string", 3, None, [1, 2], True,
    {}, {"none": False}, {"none": 1}, {"other": 3}, {"other": None},
    {"shape": [2], "b64": _b64(16)},                                   # no dtype
    {"dtype": "f8", "b64": _b64(8)},                                   # no shape
    {"dtype": "f8", "shape": [1]},                                     # no data
    {"dtype": "f4", "shape": [1], "b64": _b64(4)},                     # unknown dtypes
    {"dtype": "F8", "shape": [1], "b64": _b64(8)},
    {"dtype": "<f8", "shape": [1], "b64": _b64(8)},
    {"dtype": "object", "shape": [1], "b64": _b64(8)},
    {"dtype": ["f8"], "shape": [1], "b64": _b64(8)},                   # unhashable dtypes
    {"dtype": {"f8": 1}, "shape": [1], "b64": _b64(8)},
    {"dtype": None, "shape": [1], "b64": _b64(8)},
    {"dtype": "f8", "shape": "2", "b64": _b64(16)},                    # shapes
    {"dtype": "f8", "shape": (2,), "b64": _b64(16)},
    {"dtype": "f8", "shape": 2, "b64": _b64(16)},
    {"dtype": "f8", "shape": [-1], "b64": ""},
    {"dtype": "f8", "shape": [-2, -3], "b64": _b64(48)},
    {"dtype": "f8", "shape": [2.0], "b64": _b64(16)},
    {"dtype": "f8", "shape": ["2"], "b64": _b64(16)},
    {"dtype": "f8", "shape": [True], "b64": _b64(8)},                  # bool is no int here
    {"dtype": "f8", "shape": [None], "b64": ""},
    {"dtype": "f8", "shape": [[2]], "b64": _b64(16)},
    {"dtype": "f8", "shape": [MAX_ELEMENTS + 1], "b64": ""},           # too large
    {"dtype": "f8", "shape": [10**30], "b64": ""},
    {"dtype": "f8", "shape": [4000, 4000], "b64": _b64(8)},
    {"dtype": "f8", "shape": [2**22] * 3, "b64": ""},                  # wraps in int64 to 0
    {"dtype": "f8", "shape": [2**21] * 3, "b64": ""},
    {"dtype": "f8", "shape": [MAX_ELEMENTS] * MAX_NDIM, "b64": ""},
    {"dtype": "f8", "shape": [1] * 65, "b64": _b64(8)},                # too many axes
    {"dtype": "f8", "shape": [1] * (MAX_NDIM + 1), "b64": _b64(8)},
    {"dtype": "f8", "shape": [0] * 65, "b64": ""},
    {"dtype": "f8", "shape": [0, 125, 149, 1274, 1326, 2839, 12907], "b64": ""},  # numpy: too big
    {"dtype": "f8", "shape": [2], "b64": _b64(8)},                     # b64 of the wrong size
    {"dtype": "f8", "shape": [2], "b64": _b64(24)},
    {"dtype": "f8", "shape": [1], "b64": _b64(8)[:-1]},                # wrong length
    {"dtype": "f8", "shape": [1], "b64": _b64(8) + "===="},
    {"dtype": "f8", "shape": [1], "b64": "AAAAAAAAAA=A"},              # padding inside
    {"dtype": "f8", "shape": [1], "b64": "AAAAAAAAAAA"},               # unpadded
    {"dtype": "f8", "shape": [1], "b64": "AAAAAAAA AA="},
    {"dtype": "f8", "shape": [1], "b64": "AAAAAAAA\nAA="},
    {"dtype": "f8", "shape": [1], "b64": "AAAAAAAAAA!="},              # not base64
    {"dtype": "f8", "shape": [1], "b64": "AAAAAAAAAAé="},              # not ASCII
    {"dtype": "f8", "shape": [1], "b64": "AAAAAAAAAA=="},              # 7 bytes, length of 8
    {"dtype": "f8", "shape": [1], "b64": b"AAAAAAAAAAA="},             # bytes, not text
    {"dtype": "i8", "shape": [3], "b64": _b64(3)},
    {"dtype": "b1", "shape": [3], "b64": _b64(24)},
]


@pytest.mark.parametrize("item", MALFORMED, ids=lambda i: json.dumps(i, default=str)[:60])
def test_malformed_items_are_refused_with_wire_error(item) -> None:
    with pytest.raises(WireError):
        decode(item)


def test_the_element_count_is_exact() -> None:
    """numpy's int64 product wraps (three axes of 2**22 give 0 elements): the count the
    refusal names must be the true one."""
    with pytest.raises(WireError, match=f"has {2**66} elements"):
        decode({"dtype": "f8", "shape": [2**22] * 3, "b64": ""})
    with pytest.raises(WireError, match=f"has {2**63} elements"):
        decode({"dtype": "f8", "shape": [2**21] * 3, "b64": ""})


def test_the_right_sizes_are_accepted() -> None:
    """The counterparts of the refused items, so that the refusals mean something."""
    assert decode({"dtype": "f8", "shape": [1], "b64": _b64(8)}).shape == (1,)
    assert decode({"dtype": "i8", "shape": [3], "b64": _b64(24)}).dtype == np.int64
    assert decode({"dtype": "b1", "shape": [3], "b64": _b64(3)}).dtype == np.bool_
    assert decode({"dtype": "f8", "shape": [0] * MAX_NDIM, "b64": ""}).shape == (0,) * MAX_NDIM
    assert decode({"dtype": "f8", "shape": [0, MAX_ELEMENTS, 2], "b64": ""}).size == 0
    assert wire(np.zeros((0, MAX_ELEMENTS, 2))).shape == (0, MAX_ELEMENTS, 2)
    assert decode({"none": True, "dtype": "junk"}) is None
    assert decode({"other": "str", "shape": -1}) == NotNumeric("str")


def test_the_largest_array_is_accepted_and_one_more_element_is_not() -> None:
    data = base64.b64encode(bytes(MAX_ELEMENTS)).decode()  # bools: 8 MB
    assert decode({"dtype": "b1", "shape": [MAX_ELEMENTS], "b64": data}).size == MAX_ELEMENTS
    with pytest.raises(WireError):
        decode({"dtype": "b1", "shape": [MAX_ELEMENTS + 1], "b64": data})


# ------------------------------------------------------------------- the fuzz
def _peak_while(function, *args) -> tuple[Any, int]:
    """What ``function(*args)`` returns (or raises) and the peak of memory it allocated."""
    tracemalloc.start()
    try:
        try:
            result: Any = function(*args)
        except Exception as error:  # compared by the caller
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | \
    st.floats(allow_nan=True) | st.text(max_size=20)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=8)
axis = st.integers(0, 6) | st.integers(-(2**63), 2**64) | st.sampled_from(
    [0, 1, 2**21, 2**22, 2**31, 2**32, MAX_ELEMENTS, MAX_ELEMENTS + 1]) | st.booleans() | \
    st.floats(0, 10) | st.text(max_size=2) | st.none()
shapes = st.lists(axis, max_size=10) | st.lists(st.just(1), min_size=MAX_NDIM - 1,
                                               max_size=70) | json_value
b64_text = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()) | \
    st.text(alphabet="ABCDEFGHabcdefgh0123456789+/= \n!é", max_size=60) | json_value
dtypes = st.sampled_from(sorted(DTYPES)) | st.sampled_from(["f4", "<f8", "float64", "", "O"]) | \
    json_value
items = st.fixed_dictionaries(
    {}, optional={"dtype": dtypes, "shape": shapes, "b64": b64_text,
                  "none": json_value, "other": json_value}).flatmap(
    lambda d: st.dictionaries(st.text(max_size=6), json_value, max_size=3).map(
        lambda extra: {**extra, **d})) | json_value


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items)
def test_decode_returns_a_value_or_raises_wire_error_and_allocates_little(item) -> None:
    result, peak = _peak_while(decode, item)
    if isinstance(result, Exception):
        assert isinstance(result, WireError), repr(result)
    else:
        assert result is None or isinstance(result, (NotNumeric, np.ndarray)), result
    if isinstance(result, np.ndarray):
        assert result.size <= MAX_ELEMENTS and result.ndim <= MAX_NDIM
        assert result.dtype in {np.dtype(t) for t in DTYPES.values()}
        assert result.nbytes == len(base64.b64decode(item["b64"]))
        assert same_bits(decode(encode(result, as_float=False)), result)
    # nothing in proportion to a claimed shape: at most a few times the data itself
    size = len(json.dumps(item, default=str))
    assert peak <= 4 * size + 64 * 1024, (peak, size)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, MAX_ELEMENTS), min_size=0, max_size=MAX_NDIM),
       st.sampled_from(sorted(DTYPES)), st.integers(0, 64))
def test_claimed_shapes_never_allocate_more_than_the_data(shape, code, n_bytes) -> None:
    """Any shape within the axis limits, with data of some other size: refused (or, when
    the sizes match, the array), never an allocation the size of the claimed shape."""
    item = {"dtype": code, "shape": shape, "b64": _b64(n_bytes)}
    result, peak = _peak_while(decode, item)
    if math.prod(shape) * np.dtype(DTYPES[code]).itemsize != n_bytes:
        assert isinstance(result, WireError), repr(result)
    elif math.prod(n or 1 for n in shape) <= MAX_ELEMENTS:
        assert isinstance(result, np.ndarray) and result.shape == tuple(shape)
    else:  # an empty array whose other axes numpy may refuse (they overflow its sizes)
        assert isinstance(result, (WireError, np.ndarray)), repr(result)
    assert peak <= 64 * 1024 + 4 * n_bytes


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["f8", "i8", "b1"]),
       st.lists(st.integers(0, 4), min_size=0, max_size=MAX_NDIM), st.data())
def test_any_array_round_trips(code, shape, data) -> None:
    """Any bytes: every float64 bit pattern (NaN payloads, subnormals, -0.0), any int64."""
    dtype = np.dtype(DTYPES[code])
    size = int(np.prod(shape, dtype=np.int64))
    raw = data.draw(st.binary(min_size=size * dtype.itemsize, max_size=size * dtype.itemsize))
    array = np.frombuffer(raw, dtype=np.uint8).view(dtype).reshape(shape) if code != "b1" \
        else (np.frombuffer(raw, dtype=np.uint8) % 2).astype(bool).reshape(shape)
    assert same_bits(wire(array, as_float=False), array)
    if code == "f8":
        assert same_bits(wire(array), array)


# ----------------------------------------------------------- calling conventions
def test_an_answer_cannot_change_the_case_it_is_given() -> None:
    case = {"x": np.array([1.0, -2.0]), "grad_out": np.array([3.0, 4.0])}

    def vandal(x, grad_out):
        x[:] = 0
        grad_out *= 2
        return grad_out

    assert np.array_equal(call_vjp(vandal, case, ("x",), ("x",))[0], [6.0, 8.0])
    assert np.array_equal(case["x"], [1.0, -2.0]) and np.array_equal(case["grad_out"], [3, 4])
    call_grad(lambda x: x.fill(7) or x, case, ("x",), ("x",))
    assert np.array_equal(case["x"], [1.0, -2.0])


def test_the_number_of_gradients_is_checked() -> None:
    case = {"a": np.ones(2), "b": np.ones(2), "grad_out": np.ones(2)}
    with pytest.raises(WrongCountError, match="return 2 gradients \\(a, b\\), got 3 values"):
        call_vjp(lambda a, b, g: (a, b, g), case, ("a", "b"), ("a", "b"))
    with pytest.raises(WrongCountError, match="got ndarray"):
        call_vjp(lambda a, b, g: a, case, ("a", "b"), ("a", "b"))
    one = call_vjp(lambda a, b, g: (a, b), case, ("a", "b"), ("a",))
    assert len(one) == 1 and isinstance(one[0], tuple)  # one wrt: whatever it returned


def test_the_engine_loop_may_not_call_the_engines_own_backward() -> None:
    case = {"graph": 1, "a": np.ones(2), "b": np.ones(2), "c": np.ones(2),
            "grad_out": np.ones(2)}
    with pytest.raises(RuntimeError, match="write the loop yourself"):
        call_engine_backward(lambda out, g: out.backward(g), case, (), (), bc)


def test_a_second_backward_call_is_compared_at_half() -> None:
    """With ``twice`` the loop runs twice over the same leaves: an accumulating loop gives
    twice the gradient, which the harness halves."""
    from test_exercises import engine_backward  # noqa: PLC0415

    case = {"graph": 2, "a": np.array([0.3, -1.0]), "b": np.array([0.5, 2.0]),
            "c": np.array([-0.7, 0.1]), "grad_out": np.array([1.0, -2.0])}
    once = call_engine_backward(engine_backward, case, (), (), bc)
    twice = call_engine_backward(engine_backward, {**case, "twice": 1}, (), (), bc)
    for a, b in zip(once, twice, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_the_graphs_are_the_same_for_every_engine() -> None:
    a, b, c = np.array([0.3, -1.0]), np.array([0.5, 2.0]), np.array([-0.7, 0.1])
    for number in (0, 1, 2):
        ours = engine_graph(number, *(bc.tensor(v) for v in (a, b, c)), lambda t: t.tanh(),
                            lambda t: t.exp())
        theirs = engine_graph(number, a, b, c, np.tanh, np.exp)
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-14)
    with pytest.raises(ValueError, match="no test graph"):
        engine_graph(3, a, b, c, np.tanh, np.exp)


def test_a_function_answer_must_be_a_function_class() -> None:
    case = {"x": np.array([0.5]), "grad_out": np.array([1.0])}
    with pytest.raises(TypeError, match="subclass bc.Function"):
        call_function(type("F", (), {"apply": staticmethod(lambda x: x.data)}), case, ("x",),
                      ("x",), bc)

    class NoGraph(bc.Function):
        @staticmethod
        def forward(ctx, x):
            return x

    with bc.no_grad(), pytest.raises(ValueError, match="no grad_fn"):
        call_function(NoGraph, case, ("x",), ("x",), bc)


def test_every_exercise_names_a_known_calling_convention() -> None:
    get("relu_backward")
    for exercise in REGISTRY.values():
        if isinstance(exercise, VJPExercise):
            assert exercise.call in CALLS, exercise.id
