# Expected: KeyError: the grader's environment (NBGRADER_*, tokens) is not passed on.
import os

print("ATTACK SUCCEEDED:", os.environ["NBGRADER_EXECUTION"])
