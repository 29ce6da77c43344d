# Expected: GradingStopped "the cell ran longer than N s" (per-cell wall timeout).
import time

while True:
    time.sleep(1)
