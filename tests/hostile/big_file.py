# Expected: OSError EFBIG (RLIMIT_FSIZE) or ENOSPC (the sandbox's tmpfs is size-capped).
with open("big.bin", "wb") as f:
    for _ in range(128):
        f.write(b"\0" * (1 << 20))
print("ATTACK SUCCEEDED: wrote a 128 MB file")
