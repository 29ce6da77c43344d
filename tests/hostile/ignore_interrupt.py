# Expected: GradingStopped (cell timeout): the grader kills the kernel, it does not ask.
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
