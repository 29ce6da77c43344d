"""Every kind of mistake a check can name, and what to re-teach for each.

A failed check reports one :class:`Kind` per wrong gradient (or per answer that did not
run). The kinds are what the grader records per student and check, and what the
instructor's report counts; :data:`ABOUT` says in a line what each means, which lesson
section teaches it and how to re-teach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    """A mistake (or a reason a check could not judge the answer)."""

    # the answer did not give anything to judge
    NO_ANSWER = "no_answer"
    NOT_IMPLEMENTED = "not_implemented"
    UNANSWERED = "unanswered"
    ERROR = "error"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    TOO_SLOW = "too_slow"
    COUNT = "count"
    MISSING = "missing"
    TYPE = "type"
    FORWARD = "forward"
    # shape
    SHAPE = "shape"
    TRANSPOSED = "transposed"
    BATCH_SUM = "batch_sum"
    # values, recognised for any exercise
    SIGN = "sign"
    FACTOR = "factor"
    BATCH_FACTOR = "batch_factor"
    UPSTREAM = "upstream"
    NAN = "nan"
    VALUES = "values"
    # values, recognised for the exercises that name them
    CHAIN = "chain"
    LOCAL = "local"
    NO_SWAP = "no_swap"
    KINK = "kink"
    UPSTREAM_MASK = "upstream_mask"
    ACTIVATION_OF_GRAD = "activation_of_grad"
    INPUT_NOT_OUTPUT = "input_not_output"
    LOCAL_DERIVATIVE = "local_derivative"
    TIES = "ties"
    ROUTE = "route"
    ORDER = "order"
    BIAS_MEAN = "bias_mean"
    BIAS_ROW = "bias_row"
    ONE_HOT = "one_hot"
    WRONG_COUNT_DIVISOR = "wrong_count_divisor"
    DIAGONAL = "diagonal"
    ROWS = "rows"
    REGULARIZATION = "regularization"
    RELU_MASK = "relu_mask"
    OVERWRITE = "overwrite"
    NO_TOPO = "no_topo"
    STALE_GRAD = "stale_grad"
    PARAMETERS = "parameters"


@dataclass(frozen=True)
class About:
    """What a kind means (``title``), where it is taught (``lesson``: notebook and section)
    and a one-line hint for re-teaching it (``reteach``)."""

    title: str
    lesson: str
    reteach: str


ABOUT: dict[Kind, About] = {
    Kind.NO_ANSWER: About("answer cell missing or unmarked", "any",
                          "show how to restore a deleted cell from the release"),
    Kind.NOT_IMPLEMENTED: About("not attempted", "any", "reach out: the student did not try"),
    Kind.UNANSWERED: About("not answered", "01 section 2",
                           "reach out: the student did not try"),
    Kind.ERROR: About("the answer raised an exception", "any",
                      "read a traceback together; run the check cell before submitting"),
    Kind.CRASHED: About("the answer crashed its interpreter", "any",
                        "memory or process limits: look for huge arrays or os._exit"),
    Kind.TIMEOUT: About("the answer never returned", "any", "look for an endless loop"),
    Kind.TOO_SLOW: About("numerical differentiation instead of a backward pass",
                         "04 section 4 (how big the Jacobian of a real layer is)",
                         "a backward pass costs about one forward pass; finite differences "
                         "cost one forward pass per input number"),
    Kind.COUNT: About("wrong number of gradients returned", "any",
                      "one gradient per input, in the signature's order"),
    Kind.MISSING: About("returned None", "any", "a function must return its gradients"),
    Kind.TYPE: About("returned something that is not an array", "any",
                     "return numpy arrays of the input's shape"),
    Kind.FORWARD: About("the forward pass is wrong", "07 section 4",
                        "forward first: check the output before the gradient"),
    Kind.SHAPE: About("gradient of the wrong shape",
                      "03 section 1 (derivative, gradient, Jacobian)",
                      "a gradient has the shape of its input"),
    Kind.TRANSPOSED: About("transposed gradient", "04 section 3 (dL/dx = dL/dy W^T)",
                           "derive one entry by hand; match the shapes of the product"),
    Kind.BATCH_SUM: About("no sum over the batch",
                          "04 section 5 (the engine's linear layer: the bias)",
                          "a parameter used by every example gets the sum of their gradients"),
    Kind.SIGN: About("wrong sign", "01 section 2", "go down the gradient: check each minus"),
    Kind.FACTOR: About("off by a constant factor", "01 section 4 (the chain rule on a model)",
                       "derivative of a square is 2x; check constants"),
    Kind.BATCH_FACTOR: About("off by the batch size N",
                             "05 section 5 (a batch: the 1/N in the gradient)",
                             "the mean over the batch divides the gradient by N, once"),
    Kind.UPSTREAM: About("ignored the upstream gradient", "01 section 2 (upstream x local)",
                         "downstream = upstream x local, at every gate"),
    Kind.NAN: About("NaN or inf in the gradient", "05 section 4 (logits of 1000)",
                    "stable softmax: subtract the row max before exp"),
    Kind.VALUES: About("wrong values (no known pattern)", "any",
                       "gradient-check the answer against a numerical gradient"),
    Kind.CHAIN: About("a chain-rule factor missing", "01 section 2 (upstream x local)",
                      "multiply every local gradient by the upstream one"),
    Kind.LOCAL: About("the local gradient alone", "01 section 2",
                      "the local gradient times what flows in from above"),
    Kind.NO_SWAP: About("mul gate not swapped", "02 section 5 (patterns in gradient flow)",
                        "the mul gate hands each input the other input"),
    Kind.KINK: About("wrong gradient at a kink (ReLU at 0)", "03 section 2",
                     "torch's convention: ReLU's gradient at 0 is 0"),
    Kind.UPSTREAM_MASK: About("masked by the upstream gradient's sign", "03 section 2",
                              "ReLU's mask is where the INPUT was positive"),
    Kind.ACTIVATION_OF_GRAD: About("applied the activation to the gradient", "03 section 2",
                                   "backward multiplies by the derivative; it does not "
                                   "re-apply the function"),
    Kind.INPUT_NOT_OUTPUT: About("derivative from the wrong variable",
                                 "02 section 3 (the sigmoid gate)",
                                 "sigmoid' = s (1 - s) and tanh' = 1 - t^2 use the OUTPUT"),
    Kind.LOCAL_DERIVATIVE: About("wrong local derivative", "02 section 3 / 03 section 5",
                                 "derive the gate's derivative again, then multiply"),
    Kind.TIES: About("max gate at ties", "02 section 5",
                     "at a tie each input is the max: half the gradient each (torch)"),
    Kind.ROUTE: About("max gate routes wrongly", "02 section 5 (patterns in gradient flow)",
                      "the max gate is a router: all to the winner, nothing to the loser"),
    Kind.ORDER: About("wrong order of a matrix product", "04 section 3",
                      "check the shapes: (N, M) x (M, D) gives (N, D)"),
    Kind.BIAS_MEAN: About("bias gradient averaged over the batch", "04 section 5",
                          "sum, not mean: the mean belongs to the loss"),
    Kind.BIAS_ROW: About("bias gradient from one row only", "04 section 5",
                         "every row (example) used the bias: add all of them"),
    Kind.ONE_HOT: About("forgot to subtract the one-hot targets", "05 section 2 (p - y)",
                        "dL/ds = p - y: derive it once for the target and a non-target class"),
    Kind.WRONG_COUNT_DIVISOR: About("divided by the number of classes", "05 section 5",
                                    "the loss averages over examples N, not classes C"),
    Kind.DIAGONAL: About("softmax's Jacobian taken as diagonal",
                         "05 section 3 (scalar and vector activations)",
                         "every softmax output depends on every input: explore the Jacobian"),
    Kind.ROWS: About("softmax summed across the batch", "05 section 5",
                     "each row has its own softmax: sum over the last axis only"),
    Kind.REGULARIZATION: About("regularizer's gradient missing or doubled", "06 section 2",
                               "d/dW of lam/2 ||W||^2 is lam W"),
    Kind.RELU_MASK: About("ReLU's derivative skipped on the way back", "06 section 2",
                          "every layer's local gradient: multiply by [a > 0]"),
    Kind.OVERWRITE: About("overwrite instead of accumulate", "07 section 3 (accumulation)",
                          "a value used twice receives the SUM of its gradients: use +="),
    Kind.NO_TOPO: About("a node's backward ran before all its users had added theirs",
                        "09 section 3 (topological order)",
                        "sort the graph topologically; run backward in exactly reverse order"),
    Kind.STALE_GRAD: About("a second backward() added the first call's node gradients again",
                           "09 section 4 (backward twice)",
                           "at the start of backward(), set every non-leaf .grad to 0"),
    Kind.PARAMETERS: About("parameters() lists the wrong values, or in the wrong order",
                           "09 section 6 (an MLP of Values)",
                           "layer by layer, neuron by neuron: its weights, then its bias"),
}

#: The widget that shows a kind of mistake happening, and where a lesson uses it (for the
#: instructor's report: re-teach with it).
WIDGETS: dict[Kind, str] = {
    **dict.fromkeys((Kind.SIGN, Kind.FACTOR, Kind.UPSTREAM, Kind.CHAIN, Kind.LOCAL),
                    "BackwardStepper(f), 01 section 2: upstream x local, node by node"),
    **dict.fromkeys((Kind.NO_SWAP, Kind.ROUTE, Kind.TIES, Kind.INPUT_NOT_OUTPUT,
                     Kind.LOCAL_DERIVATIVE),
                    "BackwardStepper(neuron), 02 section 2: each gate's local gradient"),
    **dict.fromkeys((Kind.KINK, Kind.UPSTREAM_MASK, Kind.ACTIVATION_OF_GRAD, Kind.SHAPE,
                     Kind.RELU_MASK),
                    'JacobianExplorer("relu"), 03 section 2: a diagonal Jacobian times g'),
    **dict.fromkeys((Kind.TRANSPOSED, Kind.ORDER),
                    'JacobianExplorer("linear"), 04 section 5: which index of W meets which'),
    **dict.fromkeys((Kind.DIAGONAL, Kind.ROWS),
                    'JacobianExplorer("softmax"), 05 section 3: a full Jacobian per row'),
    **dict.fromkeys((Kind.ONE_HOT, Kind.WRONG_COUNT_DIVISOR, Kind.BATCH_FACTOR),
                    'JacobianExplorer("softmax_ce"), 05 section 3: dL/ds = p - y'),
    Kind.OVERWRITE: "BackwardStepper(f), 07 section 2: a value that fans out adds up",
}
