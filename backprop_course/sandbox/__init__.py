"""Run untrusted notebooks: a sandboxed kernel, grading limits and submission checks.

- :class:`~backprop_course.sandbox.manager.SandboxKernelManager`: a jupyter_client kernel
  manager whose kernels run isolated (``launch.py``) and talk ZMQ over ``ipc``.
- :class:`~backprop_course.sandbox.execute.SandboxedExecute`: nbgrader's ``Execute`` on
  that kernel; a limit breach ends one notebook with a message, never the batch.
- :func:`~backprop_course.sandbox.validate.validate_submission`: pre-flight file checks.

Import the submodules directly (``execute`` imports nbgrader).
"""
