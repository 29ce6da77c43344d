"""The grader: everything that runs in the instructor's process, never in a student's.

nbgrader preprocessors (one per file in :mod:`.preprocessors`, named after its class),
the course configuration that ``grading/nbgrader_config.py`` loads, the sandbox that runs
a student's answer in an interpreter of its own, the course secret that makes each
student's cases, the exporter, the demo pipeline and parallel grading.

Importing this package imports nothing heavy; import the submodules you need.
"""
