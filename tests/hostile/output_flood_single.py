# Expected: GradingStopped ("output lost" / "output limit" / memory): one 500 MB message is
# dropped by ZMQ_MAXMSGSIZE before it reaches the grader's memory.
print("x" * 500_000_000)
