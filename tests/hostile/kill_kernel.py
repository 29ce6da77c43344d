# Expected: GradingStopped "the kernel died": only this notebook ends; earlier cells keep
# their points; nbgrader goes on with the next student.
import os

os._exit(0)
