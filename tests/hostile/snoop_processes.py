# Expected: PermissionError: the sandbox's /proc shows only its own few processes.
import os

pids = [p for p in os.listdir("/proc") if p.isdigit()]
if len(pids) < 10:
    raise PermissionError(f"only {len(pids)} processes visible")
print("ATTACK SUCCEEDED: sees", len(pids), "processes")
