"""The derivations the notebooks walk through with the decks' examples (issue 12), recomputed
through our engine and checked against torch: the numbers the notebooks assert, in one place."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import as_torch, assert_close

import backprop_course as bc
from backprop_course import functional as F

# UCLA CS M146's matrix product y = x w and its upstream gradient
X = np.array([[2.0, 1.0, -3.0], [-3.0, 4.0, 2.0]])                                # (N, D)
W = np.array([[3.0, 2.0, 1.0, -1.0], [2.0, 1.0, 3.0, 2.0], [3.0, 2.0, 1.0, -2.0]])  # (D, M)
DY = np.array([[2.0, 3.0, -3.0, 9.0], [-8.0, 1.0, 4.0, 6.0]])                     # (N, M)


def test_matmul_weight_gradient_element_by_element() -> None:
    """dL/dw[k, j] = x[:, k] . dL/dy[:, j]: 28 for w_{1,1}, -15 for w_{3,4} (1-based)."""
    n, d = X.shape
    m = W.shape[1]
    jac = bc.jacobian(lambda v: bc.tensor(X) @ v, W)           # (N*M, D*M)
    assert jac.shape == (n * m, d * m)
    slice_11 = jac[:, 0 * m + 0].reshape(n, m)
    slice_34 = jac[:, 2 * m + 3].reshape(n, m)
    np.testing.assert_array_equal(slice_11 + 0.0, [[2, 0, 0, 0], [-3, 0, 0, 0]])
    np.testing.assert_array_equal(slice_34 + 0.0, [[0, 0, 0, -3], [0, 0, 0, 2]])
    assert np.sum(slice_11 * DY) == 2 * 2 + (-3) * (-8) == 28
    assert np.sum(slice_34 * DY) == (-3) * 9 + 2 * 6 == -15
    by_element = np.array([[X[:, k] @ DY[:, j] for j in range(m)] for k in range(d)])
    w = bc.tensor(W, requires_grad=True)
    (bc.tensor(X) @ w).backward(DY)
    tw = as_torch(W, requires_grad=True)
    (torch.from_numpy(X) @ tw).backward(torch.from_numpy(DY))
    assert_close(w.grad, by_element)
    assert_close(w.grad, tw.grad)
    np.testing.assert_array_equal(by_element, X.T @ DY)


def test_update_rule_on_squared_error() -> None:
    """w <- w - eta de/dw on e = (y - w.x)^2, w = (1, 2), x = (3, -1), y = 5, eta = 0.02:
    w becomes (1.48, 1.84) and e falls from 16 by a factor 0.36 per step."""
    x, y, eta = np.array([3.0, -1.0]), 5.0, 0.02
    w = np.array([1.0, 2.0])
    losses = []
    tw = as_torch(w, requires_grad=True)
    bw = bc.tensor(w, requires_grad=True)
    opt_t, opt_b = torch.optim.SGD([tw], lr=eta), bc.optim.SGD([bw], lr=eta)
    for step in range(5):
        residual = y - w @ x
        losses.append(residual**2)
        w = w - eta * (-2 * residual * x)
        for opt, param, lib in ((opt_t, tw, torch), (opt_b, bw, bc)):
            opt.zero_grad()
            ((y - param @ lib.tensor(x)) ** 2).backward()
            opt.step()
        assert_close(bw, w)
        assert_close(w, tw)
        if step == 0:
            np.testing.assert_allclose(w, [1.48, 1.84])
    np.testing.assert_allclose(losses, 16 * 0.36 ** np.arange(5))


def test_linearization_and_gradient_is_transposed_derivative() -> None:
    """f(x + dx) - f(x) = J dx + (second-order terms); the gradient of a scalar is the
    transpose of its (1, N) derivative."""
    def f(t):
        return bc.tensor([1.0, 0.0]) * (t[0] * t[1]) + bc.tensor([0.0, 1.0]) * (t[0] + t[2] ** 2)

    def f_np(v):
        return np.array([v[0] * v[1], v[0] + v[2] ** 2])

    x, g = np.array([2.0, -1.0, 3.0]), np.array([0.5, -2.0])
    jac = bc.jacobian(f, x)
    for scale in (1e-1, 1e-3):
        dx = scale * np.array([1.0, -2.0, 0.5])
        np.testing.assert_allclose(f_np(x + dx) - f_np(x) - jac @ dx, [dx[0] * dx[1], dx[2] ** 2],
                                   atol=1e-14)
    row = bc.jacobian(lambda t: (f(t) * bc.tensor(g)).sum(), x)
    xb = bc.tensor(x, requires_grad=True)
    (f(xb) * bc.tensor(g)).sum().backward()
    xt = as_torch(x, requires_grad=True)
    (torch.stack([xt[0] * xt[1], xt[0] + xt[2] ** 2]) @ torch.from_numpy(g)).backward()
    assert row.shape == (1, 3) and xb.grad.shape == (3,)
    assert_close(xb.grad, row.T[:, 0])
    assert_close(xb.grad, xt.grad)


@pytest.mark.parametrize(("fn", "torch_fn", "scalar"), [
    (F.sigmoid, torch.sigmoid, True),
    (F.softmax, lambda v: torch.softmax(v, 0), False),
])
def test_scalar_and_vector_activations(fn, torch_fn, scalar) -> None:
    """dL/dz_i = sum_j dL/dy_j dy_j/dz_i; for a scalar activation only j = i is nonzero."""
    z, g = np.array([2.0, 1.0, 0.1]), np.array([1.0, -2.0, 0.5])
    jac = bc.jacobian(fn, z)
    sums = [sum(g[j] * jac[j, i] for j in range(3)) for i in range(3)]
    zb = bc.tensor(z, requires_grad=True)
    fn(zb).backward(g)
    zt = as_torch(z, requires_grad=True)
    torch_fn(zt).backward(torch.from_numpy(g))
    assert_close(zb.grad, sums)
    assert_close(zb.grad, zt.grad)
    off_diagonal = jac[~np.eye(3, dtype=bool)]
    assert np.all(off_diagonal == 0) if scalar else np.all(off_diagonal != 0)


def _tanh_network(rng: np.random.Generator, sizes=(4, 5, 3, 2)):
    weights = {k: rng.normal(0, 1 / np.sqrt(sizes[k - 1]), (sizes[k], sizes[k - 1]))
               for k in range(1, len(sizes))}
    biases = {k: rng.normal(0, 0.1, sizes[k]) for k in range(1, len(sizes))}
    return weights, biases, rng.normal(0, 1, sizes[0]), np.array([0.5, -0.25])


def _torch_grads(weights, biases, x, y):
    tw = {k: as_torch(v, requires_grad=True) for k, v in weights.items()}
    tb = {k: as_torch(v, requires_grad=True) for k, v in biases.items()}
    h = torch.from_numpy(x)
    for k in sorted(tw):
        h = torch.tanh(tw[k] @ h + tb[k])
    (0.5 * ((h - torch.from_numpy(y)) ** 2).sum()).backward()
    return tw, tb


def test_uiuc_chain_product_for_layer_k(rng: np.random.Generator) -> None:
    """de/dw_k = [de/dh_K dh_K/dh_{K-1} ... dh_{k+1}/dh_k] dh_k/dw_k, gradients as rows."""
    weights, biases, x, y = _tanh_network(rng)
    big_k = len(weights)

    def layer(k, h_prev, w_k):
        return (bc.tensor(biases[k]) + w_k @ h_prev).tanh()

    h = {0: x}
    for k in range(1, big_k + 1):
        h[k] = np.tanh(weights[k] @ h[k - 1] + biases[k])
    upstream = (h[big_k] - y)[None, :]
    tw, _ = _torch_grads(weights, biases, x, y)
    for k in range(big_k, 0, -1):
        if k < big_k:
            upstream = upstream @ bc.jacobian(
                lambda t, j=k + 1: layer(j, t, bc.tensor(weights[j])), h[k])
        local = bc.jacobian(
            lambda v, j=k: layer(j, bc.tensor(h[j - 1]), v.reshape(weights[j].shape)),
            weights[k].ravel())
        assert upstream.shape == (1, weights[k].shape[0])
        assert_close((upstream @ local).reshape(weights[k].shape), tw[k].grad)


def test_sustech_recursion_and_its_two_inconsistencies(rng: np.random.Generator) -> None:
    """Step 2 with columns: dL/da^l = (da^{l+1}/dx^{l+1})^T dL/da^{l+1},
    dL/dw^l = (da^l/dw^l)^T dL/da^l. The deck's printed dL/dw^l = da^l/dw^l (dL/da^l)^T does not
    multiply in that layout; da^{l+1}/dx^{l+1} equals da^{l+1}/da^l through the network."""
    weights, biases, x, y = _tanh_network(rng)
    last = len(weights)
    params = {m: np.concatenate([weights[m].ravel(), biases[m]]) for m in weights}

    def module(m, x_in, w_m):
        n_out, n_in = weights[m].shape
        return (w_m[: n_out * n_in].reshape(n_out, n_in) @ x_in + w_m[n_out * n_in:]).tanh()

    xs, acts = {1: x}, {}
    for m in range(1, last + 1):
        acts[m] = np.asarray(module(m, bc.tensor(xs[m]), bc.tensor(params[m])).data)
        xs[m + 1] = acts[m]
    tw, tb = _torch_grads(weights, biases, x, y)
    dl_da = acts[last] - y
    for m in range(last, 0, -1):
        if m < last:
            j_in = bc.jacobian(lambda t, j=m + 1: module(j, t, bc.tensor(params[j])), xs[m + 1])
            dl_da = j_in.T @ dl_da
        j_w = bc.jacobian(lambda v, j=m: module(j, bc.tensor(xs[j]), v), params[m])
        expected = np.concatenate([tw[m].grad.numpy().ravel(), tb[m].grad.numpy()])
        assert_close(j_w.T @ dl_da, expected)
        with pytest.raises(ValueError):
            j_w @ dl_da[None, :]                      # the deck's Step 2, literally
        assert_close((j_w.T @ dl_da[None, :].T)[:, 0], expected)   # the other layout

    # inconsistency 1: module 3's own Jacobian = da^3/da^2 through the whole network
    a = {0: as_torch(x, requires_grad=True)}
    for k in range(1, last + 1):
        a[k] = torch.tanh(torch.from_numpy(weights[k]) @ a[k - 1] + torch.from_numpy(biases[k]))
    through = np.stack([torch.autograd.grad(a[3][i], a[2], retain_graph=True)[0].numpy()
                        for i in range(a[3].shape[0])])
    own = bc.jacobian(lambda t: module(3, t, bc.tensor(params[3])), xs[3])
    assert_close(own, through)


def test_sigmoid_neuron_mul_gates_use_the_unrounded_factor() -> None:
    """The gradient reaching the mul gates is 0.1966 (shown as 0.20): 2 x 0.1966 = 0.39, 2 x 0.20
    would be 0.40."""
    w = bc.tensor([2.0, -3.0], requires_grad=True)
    x = bc.tensor([-1.0, -2.0], requires_grad=True)
    b = bc.tensor(-3.0, requires_grad=True)
    F.sigmoid(w @ x + b).backward()
    assert round(b.grad.item(), 4) == 0.1966 and round(b.grad.item(), 2) == 0.20
    assert round(x.grad.data[0], 2) == 0.39 == round(2 * b.grad.item(), 2)
    assert round(2 * 0.20, 2) == 0.40
