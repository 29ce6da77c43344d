# Expected: FileNotFoundError: cwd is a copy of the submission dir; above it is an empty root.
import os

found = [os.path.join(d, n) for d in ("..", "../..", "../../..") for n in os.listdir(d)
         if n in ("source", "gradebook.db", "release", "autograded")]
if not found:
    raise FileNotFoundError("no course directory above cwd")
print("ATTACK SUCCEEDED: found", found)
