# Expected: MemoryError (RLIMIT_AS), then GradingStopped "memory limit"; the batch goes on.
import numpy as np

hog = np.ones(8 << 30, dtype=np.uint8)
print("ATTACK SUCCEEDED: allocated", hog.nbytes >> 30, "GB")
