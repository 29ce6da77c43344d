# Expected: GradingStopped "output limit": 1000 lines x 100 kB pass nbgrader's LimitOutput
# (which counts lines) but not the byte budget.
for _ in range(1000):
    print("x" * 100_000)
