"""backprop-course: learn backpropagation by deriving it, exploring it and implementing it.

A small autograd engine on numpy whose API mirrors PyTorch::

    import backprop_course as bc
    x = bc.tensor([-2.0], requires_grad=True)
"""

from . import autograd, backward, functional, gradcheck, nn, ops, optim
from .autograd import Tensor, is_grad_enabled, no_grad, tensor
from .function import Context, Function
from .gradcheck import jacobian
from .random import manual_seed

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Function",
    "Tensor",
    "autograd",
    "backward",
    "functional",
    "gradcheck",
    "is_grad_enabled",
    "jacobian",
    "manual_seed",
    "nn",
    "ops",
    "no_grad",
    "optim",
    "tensor",
]
