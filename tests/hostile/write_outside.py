# Expected: none of TARGETS appears on the host: writes fail (course dir not mounted) or land
# in the sandbox's private tmpfs (/tmp), which vanishes with the kernel.
# ruff: noqa: F821 - TARGETS comes from an earlier cell
for target in TARGETS:
    try:
        with open(target, "w") as f:
            f.write("pwned")
        print("wrote", target)
    except OSError as e:
        print("blocked", target, e)
