# Expected: BlockingIOError (RLIMIT_NPROC) before 200 children exist.
import os
import time

children = []
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(3)
            os._exit(0)
        children.append(pid)
finally:
    for pid in children:
        os.waitpid(pid, 0)
print("ATTACK SUCCEEDED: started", len(children), "processes")
