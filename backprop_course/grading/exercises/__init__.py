"""Exercise definitions, one module per lesson notebook; importing this registers them all."""

from . import nb03_jacobians  # noqa: F401
