"""nbgrader configuration of the course: run stock nbgrader commands from this folder.

Each graded notebook ``../notebooks/<name>.ipynb`` is the assignment ``<name>``; loading
this file links it into ``source/<name>/`` (see ``backprop_course.grader.course``).
"""

from pathlib import Path

from backprop_course.grader.course import configure

HERE = Path(__file__).resolve().parent
configure(get_config(), HERE, HERE.parent / "notebooks")  # noqa: F821
