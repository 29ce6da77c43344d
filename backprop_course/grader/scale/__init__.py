"""``backprop-course autograde``: nbgrader's autograde fanned out over every core, or a
Dask cluster, with one writer of the gradebook.

- :mod:`.task`: the worker's side (stock nbgrader in a private course folder);
- :mod:`.gradebook`: the one writer (one transaction per result, idempotent);
- :mod:`.plan`: configuration, what workers are sent, what is left to grade;
- :mod:`.coordinator`: the fan-out and the recording loop;
- :mod:`.progress`: the progress bar (tqdm) and the summary; :mod:`.cli`: the sub-command.

Nothing is imported here, so that ``backprop-course --help`` stays quick.
"""

