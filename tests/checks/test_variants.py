"""Each student's own numbers: the notebook's ``check`` (the kernel), ``rng_for`` +
``exercise.cases`` and the grader draw the same cases from (salt, student, exercise);
other students (and another salt) get other numbers; where the salt and the student id
come from; what ``check`` and ``my_numbers`` print."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_exercises import CORRECT, Tanh, by_hand, engine_backward

from backprop_course.checks import (
    REGISTRY,
    ValueExercise,
    VJPExercise,
    check,
    get,
    my_numbers,
    seed_label,
)
from backprop_course.checks.variants import (
    COURSE_FILE,
    SELF_STUDY,
    STUDENT_ENV,
    course_salt,
    rng_for,
    student_id,
    visible_seed,
)

get("relu_backward")
ALL = sorted(REGISTRY)
SALT = "spring-2031"


@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    """A released assignment's folder (the notebook's working directory) with its salt,
    and a student working there."""
    (tmp_path / COURSE_FILE).write_text(json.dumps({"salt": SALT}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(STUDENT_ENV, "ann")
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    return tmp_path


# ------------------------------------------------------------ the same numbers
def recording(exercise: VJPExercise, calls: list) -> Any:
    """The correct answer of ``exercise``, noting what it is called with."""
    if exercise.call == "function":
        class Recorded(Tanh):
            @staticmethod
            def forward(ctx, x):
                calls.append({"x": np.array(x)})
                return Tanh.forward(ctx, x)
        return Recorded
    if exercise.call == "engine_backward":
        def loop(output, grad_output):
            calls.append({"out": np.array(output.data), "grad_out": np.array(grad_output)})
            engine_backward(output, grad_output)
        return loop

    def answer(*args):
        names = exercise.inputs + (("grad_out",) if exercise.call == "vjp" else ())
        calls.append({n: np.array(a) for n, a in zip(names, args, strict=True)})
        return CORRECT[exercise.id](*args)
    return answer


def as_called(exercise: VJPExercise, values: dict) -> dict:
    """What the answer is called with on a case with these values."""
    if exercise.call == "function":
        return {"x": np.asarray(values["x"], dtype=np.float64)}
    if exercise.call == "engine_backward":
        out = exercise.forward(**{k: values[k] for k in exercise.inputs})
        return {"out": np.asarray(out), "grad_out": np.asarray(values["grad_out"])}
    names = exercise.inputs + (("grad_out",) if exercise.call == "vjp" else ())
    return {n: np.asarray(values[n]) for n in names}


@pytest.mark.parametrize("exercise_id", [e for e in ALL if e in CORRECT  # notebooks 01-07
                                         and isinstance(REGISTRY[e], VJPExercise)])
def test_check_runs_the_cases_rng_for_gives(exercise_id, course, capsys) -> None:
    exercise = get(exercise_id)
    for part in ("shape", "given", "random"):
        calls: list = []
        check(exercise_id, recording(exercise, calls), part=part)
        rng = rng_for(SALT, "ann", exercise_id, seed_label(exercise, part))
        cases = exercise.cases(part, rng)
        large = exercise.large_case(rng) if part == "random" else None
        expected = [as_called(exercise, c.values) for c in cases + ([large] if large else [])]
        assert len(calls) == len(expected), (part, len(calls))
        for got, want in zip(calls, expected, strict=True):
            assert sorted(got) == sorted(want)
            for name in want:
                np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)
    assert capsys.readouterr().out.count("[PASS]") == 3


def test_shape_and_given_share_the_students_cases_and_hidden_parts_do_not() -> None:
    for exercise_id in ALL:
        exercise = get(exercise_id)
        if isinstance(exercise, ValueExercise):
            assert {seed_label(exercise, p) for p in exercise.parts} == {"provides"}
            continue
        if not isinstance(exercise, VJPExercise):
            continue
        assert seed_label(exercise, "shape") == seed_label(exercise, "given") == "given"
        assert seed_label(exercise, "random") == "random"
        one = exercise.cases("shape", rng_for(SALT, "ann", exercise_id, "given"))
        two = exercise.cases("given", rng_for(SALT, "ann", exercise_id, "given"))
        for a, b in zip(one, two, strict=True):
            for name in a.values:
                np.testing.assert_array_equal(a.values[name], b.values[name])


def test_the_grader_draws_the_same_visible_cases(course) -> None:
    """``backprop-course`` grades a student's visible checks on the numbers the student's
    own check used (the grader's Seeds, without the course secret)."""
    from backprop_course.grader.grade import Seeds  # noqa: PLC0415

    seeds = Seeds("ann", SALT)
    for exercise_id in ALL:
        exercise = get(exercise_id)
        for part in exercise.parts:
            ours = rng_for(course_salt(), student_id(), exercise_id, seed_label(exercise, part))
            theirs = seeds.rng(exercise, part, hidden=False)
            assert ours.bit_generator.state == theirs.bit_generator.state, (exercise_id, part)
    assert seeds.reveal(hidden=False)


def test_the_seed_derivation_is_pinned() -> None:
    """Changing how seeds are made would change every student's numbers mid-course."""
    assert visible_seed("s", "ann", "relu_backward", "given") == int.from_bytes(
        hashlib.sha256(b"s/ann/relu_backward/given").digest()[:8], "big")
    assert visible_seed("s", "ann", "relu_backward", "given") != visible_seed(
        "s", "ann", "relu_backward", "random")


# ------------------------------------------------------------ different numbers
def _given(exercise_id: str, student: str, salt: str = SALT) -> list[dict]:
    exercise = get(exercise_id)
    rng = rng_for(salt, student, exercise_id, seed_label(exercise, exercise.parts[0]))
    if isinstance(exercise, ValueExercise):
        return [exercise.provides(rng)]
    return [c.values for c in exercise.cases(exercise.parts[0], rng)]


def _same(one: list[dict], two: list[dict]) -> bool:
    return len(one) == len(two) and all(
        a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]))
                                     for k in a) for a, b in zip(one, two, strict=True))


@pytest.mark.parametrize("exercise_id", ALL)
def test_students_get_numbers_of_their_own(exercise_id) -> None:
    students = [f"student{i:02d}" for i in range(40)]
    drawn = [_given(exercise_id, s) for s in students]
    assert _same(_given(exercise_id, "student00"), drawn[0])  # the same student: the same
    different = sum(not _same(drawn[0], other) for other in drawn[1:])
    assert different == len(drawn) - 1, exercise_id  # nobody shares student00's numbers
    distinct = {repr([{k: np.asarray(v).tolist() for k, v in c.items()} for c in d])
                for d in drawn}
    assert len(distinct) >= 36, (exercise_id, len(distinct))
    assert not _same(_given(exercise_id, "student00", "another-year"), drawn[0])


def test_by_hand_numbers_are_each_students_own(course, monkeypatch, capsys) -> None:
    """A right answer at ann's numbers passes ann's check, and fails bob's."""
    exercise = get("add_mul_by_hand")
    x, y, z = my_numbers("add_mul_by_hand")
    assert {"x": x, "y": y, "z": z} == exercise.provides(
        rng_for(SALT, "ann", "add_mul_by_hand", "provides"))
    answers = by_hand({"x": x, "y": y, "z": z})
    for part in exercise.parts:
        check("add_mul_by_hand", answers, part=part)
    monkeypatch.setenv(STUDENT_ENV, "bob")
    assert my_numbers("add_mul_by_hand") != (x, y, z)
    with pytest.raises(AssertionError, match=r"\[FAIL\] add_mul_by_hand / dfdx"):
        check("add_mul_by_hand", answers, part="dfdx")
    capsys.readouterr()


# ------------------------------------------------------------- salt and student
def test_course_salt_reads_course_json(tmp_path) -> None:
    (tmp_path / COURSE_FILE).write_text('{"salt": "abc", "other": 1}', encoding="utf-8")
    assert course_salt(tmp_path) == "abc"
    assert course_salt(str(tmp_path)) == "abc"


@pytest.mark.parametrize("content", [
    None, b"", b"{", b"not json", b"[]", b"null", b'"salt"', b"{}", b'{"salt": ""}',
    b'{"salt": 3}', b'{"salt": null}', b'{"salt": ["a"]}', b'{"Salt": "abc"}',
    b"\xff\xfe{", b'{"salt": "abc"',
])
def test_course_salt_falls_back_to_self_study(tmp_path, content) -> None:
    if content is not None:
        (tmp_path / COURSE_FILE).write_bytes(content)
    assert course_salt(tmp_path) == SELF_STUDY


def test_course_salt_of_a_folder_named_course_json(tmp_path) -> None:
    (tmp_path / COURSE_FILE).mkdir()
    assert course_salt(tmp_path) == SELF_STUDY


def test_course_salt_is_read_from_the_working_directory(course) -> None:
    assert course_salt() == SALT
    (course / COURSE_FILE).unlink()
    assert course_salt() == SELF_STUDY


def test_student_id_prefers_the_course_variable_then_jupyterhub(monkeypatch) -> None:
    monkeypatch.setenv(STUDENT_ENV, "ann")
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-ann")
    assert student_id() == "ann"
    monkeypatch.setenv(STUDENT_ENV, "")  # empty: as if unset
    assert student_id() == "hub-ann"
    monkeypatch.delenv(STUDENT_ENV)
    assert student_id() == "hub-ann"
    monkeypatch.delenv("JUPYTERHUB_USER")
    import getpass  # noqa: PLC0415

    monkeypatch.setattr(getpass, "getuser", lambda: "login-name")
    assert student_id() == "login-name"

    def no_user() -> str:
        raise KeyError("uid 1234 not found")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert student_id() == "student"


def test_the_student_changes_the_cases_check_runs(course, monkeypatch) -> None:
    exercise = get("relu_backward")
    seen: dict[str, np.ndarray] = {}
    for student in ("ann", "bob"):
        monkeypatch.setenv(STUDENT_ENV, student)
        check("relu_backward", lambda x, g, s=student: seen.setdefault(s, x.copy()) * 0
              + g * (x > 0), part="given")
    assert not np.array_equal(seen["ann"], seen["bob"])
    np.testing.assert_array_equal(
        seen["bob"], exercise.cases("given", rng_for(SALT, "bob", "relu_backward", "given")
                                    )[0].values["x"])


# -------------------------------------------------------------- what check says
def relu(x, grad_out):
    return grad_out * (x > 0)


def test_check_is_silent_on_stderr_when_right(course, capfd) -> None:
    for part in get("relu_backward").parts:
        assert check("relu_backward", relu, part=part) is None
    out, err = capfd.readouterr()
    assert err == "" and out.count("[PASS]") == 4 and "[FAIL]" not in out
    assert "relu_backward / edge" in out and "correct" in out


def test_check_raises_with_the_report_when_wrong(course, capfd) -> None:
    with pytest.raises(AssertionError) as raised:
        check("relu_backward", lambda x, g: (x > 0) * 1.0, part="given")
    report = str(raised.value)
    assert report.startswith("[FAIL] relu_backward / given")
    assert "upstream gradient" in report and "expected" in report  # the student's own case
    out, err = capfd.readouterr()
    assert "[PASS]" not in out and err == ""


def test_check_silent_on_stderr_for_an_engine_exercise(course, capfd) -> None:
    check("tanh_function", Tanh, part="random")
    check("engine_backward", engine_backward, part="edge")
    out, err = capfd.readouterr()
    assert err == "" and out.count("[PASS]") == 2


def test_check_names_unknown_exercises_and_parts(course) -> None:
    with pytest.raises(KeyError, match="no exercise 'relu'; known: .*relu_backward"):
        check("relu", relu, part="given")
    with pytest.raises(ValueError, match="not 'hidden'"):
        check("relu_backward", relu, part="hidden")


def test_my_numbers_prints_the_student_it_belongs_to(course, capsys) -> None:
    numbers = my_numbers("add_mul_by_hand")
    out = capsys.readouterr().out
    assert "student 'ann'" in out
    assert all(f"{k} = {v:g}" in out for k, v in zip("xyz", numbers, strict=True)), out
    assert len(numbers) == 3 and all(isinstance(v, float) for v in numbers)
    with pytest.raises(TypeError, match="not a by-hand exercise"):
        my_numbers("relu_backward")
