"""The program the grader's sandbox runs: one answer cell, then the cases the grader sends.

It is started as ``python -I -S run.py`` inside the sandbox (:mod:`.sandbox`), where the
file system holds the standard library, numpy, this file, :mod:`~backprop_course.checks.
harness` and, for the engine exercises, the course engine's tensors (and nothing else of
the course package, nor torch). It uses the standard library until the grader's first
message says where numpy and the harness are.

Protocol: length-prefixed JSON frames (:func:`write_frame`, :func:`read_frame`) on the
grader's pipe, which this program moves off file descriptors 0 and 1 before any student
code runs (the student's output goes to ``/dev/null``; until then, errors go to stderr,
which the grader logs)::

    grader -> {"path": [...], "engine": bool, "preamble": str, "source": str,
               "provides": {name: value}, "answer": name, "call": convention,
               "inputs": [...], "wrt": [...]}
    runner -> {"ready": true}            numpy and the harness imported: from here on,
                                         whatever happens is the answer's doing
    runner -> {"defined": true} | {"error": name, "message": str}    the answer cell ran
    grader -> {"case": {name: value}}    runner -> {"returned": [value, ...]} | {"error": ...}
    grader -> {"case": ..., "answer": ..., "call": ..., "inputs": [...], "wrt": [...]}
                                         the same for another answer the cells defined (a
                                         layer of a network), called by its own convention
    grader -> {"values": [name, ...]}    runner -> {"values": {name: value}}

Nothing the runner sends is trusted: a frame is only what the answer returned (the
grader decodes it with :func:`harness.decode`, judges it and times it).
"""

from __future__ import annotations

import builtins
import json
import os
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")


def write_frame(stream: BinaryIO, message: dict) -> None:
    """Send one message."""
    data = json.dumps(message).encode()
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> dict | None:
    """Receive one message (None at the end of the stream)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    return json.loads(data) if len(data) == size else None


def _error(error: BaseException) -> dict:
    return {"error": type(error).__name__, "message": str(error)[:2000]}


def _private_channel() -> tuple[BinaryIO, BinaryIO]:
    """Move the grader's pipes off fds 0 and 1 (which become /dev/null)."""
    inbound, outbound = os.dup(0), os.dup(1)
    _to_null(0, 1)
    return os.fdopen(inbound, "rb"), os.fdopen(outbound, "wb")


def _to_null(*fds: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)


def _answer(namespace: dict, names: str | list[str]) -> Any:
    """What the answer cell defined under ``names`` (a tuple for several names)."""
    for name in [names] if isinstance(names, str) else names:
        if name not in namespace:
            raise NameError(f"your answer cell does not define {name}")
    return namespace[names] if isinstance(names, str) else tuple(namespace[n] for n in names)


def main() -> None:
    inbound, outbound = _private_channel()
    setup = read_frame(inbound)
    if setup is None:
        return
    sys.path[:0] = setup["path"]
    import harness  # noqa: PLC0415 - found on the path the grader gave
    import numpy as np  # noqa: PLC0415, F401 - imported before "ready": a grader fault if absent

    engine = None
    if setup["engine"]:
        import backprop_course as engine  # noqa: PLC0415 - the engine's tensors only
    _to_null(2)  # until here a failure is the grader's, told on stderr; now the answer's
    write_frame(outbound, {"ready": True})

    namespace: dict[str, Any] = {"__name__": "__answer__", "__builtins__": builtins}
    namespace.update(harness.decode_case(setup["provides"]))
    try:
        exec(compile(setup["preamble"], "<imports>", "exec"), namespace)  # noqa: S102
        exec(compile(setup["source"], "<answer cell>", "exec"), namespace)  # noqa: S102
    except BaseException as error:  # noqa: BLE001 - whatever the answer cell raises
        write_frame(outbound, _error(error))
        return
    write_frame(outbound, {"defined": True})

    while (request := read_frame(inbound)) is not None:
        if "values" in request:
            write_frame(outbound, {"values": {name: harness.encode(namespace.get(name))
                                              for name in request["values"]}})
            continue
        route = {key: request.get(key, setup[key]) for key in ("answer", "call", "inputs", "wrt")}
        try:
            returned = harness.CALLS[route["call"]](
                _answer(namespace, route["answer"]), harness.decode_case(request["case"]),
                tuple(route["inputs"]), tuple(route["wrt"]), engine)
            reply = {"returned": [harness.encode(value) for value in returned]}
        except BaseException as error:  # noqa: BLE001 - SystemExit included
            reply = _error(error)
        write_frame(outbound, reply)


if __name__ == "__main__":
    main()
