"""Modules and optimizers, against torch.nn and torch.optim (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import as_torch, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import backprop_course as bc
from backprop_course import nn


def twin_mlp(sizes: list[int], activation: str = "ReLU", dropout: float = 0.0):
    """The same MLP in both libraries; ours loads torch's initial weights."""
    ours, theirs = [], []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        ours.append(nn.Linear(fan_in, fan_out))
        theirs.append(torch.nn.Linear(fan_in, fan_out, dtype=torch.float64))
        if i < len(sizes) - 2:
            ours.append(getattr(nn, activation)())
            theirs.append(getattr(torch.nn, activation)())
            if dropout:
                ours.append(nn.Dropout(dropout))
                theirs.append(torch.nn.Dropout(dropout))
    model, ref = nn.Sequential(*ours), torch.nn.Sequential(*theirs)
    model.load_state_dict(ref.state_dict())
    return model, ref


# ---------------------------------------------------------------- Module basics
def test_parameters_names_and_zero_grad() -> None:
    model, ref = twin_mlp([3, 4, 2])
    names = [name for name, _ in model.named_parameters()]
    assert names == [name for name, _ in ref.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(p.requires_grad and p.is_leaf for p in model.parameters())
    model(bc.tensor(np.ones((2, 3)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert len(model) == 3 and isinstance(model[1], nn.ReLU)
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(model)


def test_train_eval_propagate() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert model.training and model[1][0].training
    assert model.eval() is model
    assert not model.training and not model[1][0].training
    model.train()
    assert model[1][0].training


def test_linear_init_and_shapes() -> None:
    bc.manual_seed(0)
    layer = nn.Linear(100, 7)
    assert layer.weight.shape == (7, 100) and layer.bias.shape == (7,)
    w = layer.weight.data  # uniform in +-1/sqrt(100), like torch: std 0.1/sqrt(3)
    assert np.abs(w).max() <= 0.1 and abs(w.std() - 0.1 / np.sqrt(3)) < 0.005
    assert nn.Linear(3, 2, bias=False).parameters()[0].shape == (2, 3)
    assert len(nn.Linear(3, 2, bias=False).parameters()) == 1
    assert nn.Linear(3, 2, dtype=np.float32).weight.dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        layer.load_state_dict({"weight": np.zeros((100, 7)), "bias": np.zeros(7)})


def test_load_and_state_dict_round_trip() -> None:
    model, ref = twin_mlp([3, 2])
    state = model.state_dict()
    for name, value in ref.state_dict().items():
        assert_close(state[name], value, rtol=0)
    state["0.weight"][:] = 0  # a copy, not the parameter itself
    assert np.abs(model[0].weight.data).sum() > 0


@pytest.mark.parametrize("activation", ["ReLU", "Sigmoid", "Tanh"])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5),
       sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4))
def test_mlp_matches_torch(activation: str, seed: int, n: int, sizes: list[int]) -> None:
    torch.manual_seed(seed % 2**31)
    model, ref = twin_mlp(sizes, activation)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, sizes[0]))
    out, ref_out = model(bc.tensor(x)), ref(as_torch(x))
    assert_close(out, ref_out)
    upstream = rng.standard_normal(ref_out.shape)
    out.backward(upstream)
    ref_out.backward(torch.from_numpy(upstream))
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        assert_close(p.grad, q.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_modules(reduction: str, rng: np.random.Generator) -> None:
    logits, target = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    y = rng.standard_normal((4, 3))
    pairs = [
        (nn.CrossEntropyLoss(reduction)(bc.tensor(logits), target),
         torch.nn.CrossEntropyLoss(reduction=reduction)(as_torch(logits), as_torch(target))),
        (nn.MSELoss(reduction)(bc.tensor(logits), y),
         torch.nn.MSELoss(reduction=reduction)(as_torch(logits), as_torch(y))),
    ]
    for ours, theirs in pairs:
        assert_close(ours, theirs)


def test_activation_modules_match_functional(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3))
    for name in ("ReLU", "Sigmoid", "Tanh", "Softmax"):
        assert_close(getattr(nn, name)()(bc.tensor(x)), getattr(torch.nn, name)(
            **({"dim": -1} if name == "Softmax" else {}))(as_torch(x)))
    assert nn.Flatten()(bc.tensor(np.ones((2, 3, 4)))).shape == (2, 12)


# ---------------------------------------------------------------- Dropout
def test_dropout_train_vs_eval() -> None:
    x = bc.tensor(np.ones((200, 500)), requires_grad=True)
    drop = nn.Dropout(0.3)
    bc.manual_seed(1)
    y = drop(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 100,000 draws: 5 sigma is ~0.007
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    assert abs(y.data.mean() - 1.0) < 0.02  # the scaling keeps the expectation
    y.backward(np.full(x.shape, 2.0))
    np.testing.assert_allclose(x.grad.data, np.where(kept, 2 / 0.7, 0.0))
    drop.eval()
    assert drop(x) is x  # identity in eval mode
    bc.manual_seed(1)
    again = nn.Dropout(0.3)(x)
    np.testing.assert_array_equal(again.data, y.data)  # seeded: the same mask
    assert not np.array_equal(nn.Dropout(0.3)(x).data, y.data)  # fresh draw differs


def test_dropout_edge_probabilities() -> None:
    x = bc.tensor(np.ones(10), requires_grad=True)
    assert nn.Dropout(0.0)(x) is x
    assert np.all(nn.Dropout(1.0)(x).data == 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)(x)


# ---------------------------------------------------------------- optimizers
OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd-momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "sgd-dampening": ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    "sgd-nesterov-wd": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam-l2": ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw-strong": ("AdamW", dict(lr=0.02, weight_decay=0.5, eps=1e-6)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_matches_torch(name: str) -> None:
    cls, kwargs = OPTIMIZERS[name]
    torch.manual_seed(0)
    model, ref = twin_mlp([4, 5, 3], "Tanh")
    opt = getattr(bc.optim, cls)(model.parameters(), **kwargs)
    ref_opt = getattr(torch.optim, cls)(ref.parameters(), **kwargs)
    rng = np.random.default_rng(10)
    for _ in range(6):
        x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
        opt.zero_grad()
        ref_opt.zero_grad()
        bc.functional.cross_entropy(model(bc.tensor(x)), y).backward()
        torch.nn.functional.cross_entropy(ref(as_torch(x)), as_torch(y)).backward()
        opt.step()
        ref_opt.step()
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        assert_close(p, q)
    assert not np.allclose(model[0].weight.data, twin_mlp([4, 5, 3])[0][0].weight.data)


def test_optimizer_skips_parameters_without_grad_and_rejects_empty() -> None:
    p = nn.Parameter(np.ones(2))
    bc.optim.SGD([p], lr=1.0).step()
    np.testing.assert_array_equal(p.data, [1.0, 1.0])
    with pytest.raises(ValueError, match="empty"):
        bc.optim.Adam([])


def test_training_reduces_the_loss_in_float32() -> None:
    bc.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16, dtype=np.float32), nn.ReLU(),
                          nn.Linear(16, 2, dtype=np.float32))
    rng = np.random.default_rng(11)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    opt = bc.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(bc.tensor(x)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == np.float32 for p in model.parameters())
