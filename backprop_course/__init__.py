"""backprop-course: learn backpropagation by deriving it, exploring it and implementing it.

A small autograd engine on numpy whose API mirrors PyTorch::

    import backprop_course as bc
    x = bc.tensor([-2.0], requires_grad=True)
"""

from numpy import float32, float64, int32, int64  # dtypes by torch's names: bc.float32

from . import autograd, backward, functional, gradcheck, nn, ops, optim
from .autograd import (
    Tensor,
    arange,
    cat,
    empty,
    eye,
    from_numpy,
    full,
    is_grad_enabled,
    linspace,
    no_grad,
    ones,
    ones_like,
    stack,
    tensor,
    zeros,
    zeros_like,
)
from .function import Context, Function
from .functional import clamp, exp, log, log_softmax, relu, sigmoid, softmax, sqrt, tanh
from .gradcheck import jacobian
from .random import manual_seed, rand, randint, randn, randperm

double, long = float64, int64

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Function",
    "Tensor",
    "arange",
    "autograd",
    "backward",
    "cat",
    "clamp",
    "double",
    "empty",
    "exp",
    "eye",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "functional",
    "gradcheck",
    "int32",
    "int64",
    "is_grad_enabled",
    "jacobian",
    "linspace",
    "log",
    "log_softmax",
    "long",
    "manual_seed",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "ops",
    "optim",
    "rand",
    "randint",
    "randn",
    "randperm",
    "relu",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "tanh",
    "tensor",
    "zeros",
    "zeros_like",
]
