# Expected: FileNotFoundError: the course root (source/, gradebook.db) is not mounted.
# ruff: noqa: F821 - PORT and TARGETS come from an earlier cell
for target in TARGETS:
    with open(target) as f:
        print(f.read()[:80])
print("ATTACK SUCCEEDED: read", TARGETS)
