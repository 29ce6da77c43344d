# Expected: PermissionError: the kernel runs as an unprivileged uid and cannot setuid(0).
import os

os.setuid(0)
print("ATTACK SUCCEEDED: uid", os.getuid())
