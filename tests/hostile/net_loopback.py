# Expected: OSError (network unreachable): the kernel has its own empty network namespace.
# ruff: noqa: F821 - PORT and TARGETS come from an earlier cell
import socket

socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
print("ATTACK SUCCEEDED: reached the grader's loopback")
