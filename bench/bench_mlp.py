"""Train the same MLP (784-512-512-10, ReLU, batch 64, float32, SGD lr 0.01) in our engine
and in torch, interleaved step by step, and print ms/step for each and the ratio.

    python bench/bench_mlp.py [--steps 50] [--warmup 5]

Both libraries get the machine's cores: torch.set_num_threads, and numpy's BLAS through
threadpoolctl when it is installed (otherwise numpy's default, which the output says).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch

import backprop_course as bc

SIZES = (784, 512, 512, 10)


def build(seed: int = 0) -> tuple[bc.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:], strict=False):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    ref = torch.nn.Sequential(*layers[:-1])
    ours = bc.nn.Sequential(*[
        bc.nn.Linear(m.in_features, m.out_features, dtype=np.float32)
        if isinstance(m, torch.nn.Linear) else bc.nn.ReLU() for m in ref])
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def steppers(batch: int, seed: int = 0) -> tuple[Callable[[], float], Callable[[], float]]:
    ours, ref = build(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], batch)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    opt = bc.optim.SGD(ours.parameters(), lr=0.01)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.01)

    def ours_step() -> float:
        opt.zero_grad()
        loss = bc.functional.cross_entropy(ours(bc.tensor(x)), y)
        loss.backward()
        opt.step()
        return loss.item()

    def torch_step() -> float:
        ref_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ref(tx), ty)
        loss.backward()
        ref_opt.step()
        return loss.item()

    return ours_step, torch_step


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)

    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=cores)
        numpy_threads = f"{cores} (threadpoolctl)"
    except ImportError:
        limits = nullcontext()
        numpy_threads = "numpy default (threadpoolctl not installed)"

    with limits:
        ours_step, torch_step = steppers(args.batch)
        for _ in range(args.warmup):
            ours_step()
            torch_step()
        times: dict[str, list[float]] = {"ours": [], "torch": []}
        losses: dict[str, float] = {}
        for i in range(args.steps):  # alternate which goes first, to be fair
            order = [("ours", ours_step), ("torch", torch_step)]
            for name, step in order if i % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                losses[name] = step()
                times[name].append(time.perf_counter() - start)

    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    ratio = ms["ours"] / ms["torch"]
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {args.batch}, float32, SGD lr 0.01; "
          f"{args.steps} steps after {args.warmup} warm-up, interleaved")
    print(f"threads: torch {torch.get_num_threads()}, numpy {numpy_threads}")
    print(f"ours : {ms['ours']:8.2f} ms/step (median; mean "
          f"{1000 * statistics.mean(times['ours']):.2f}), final loss {losses['ours']:.4f}")
    print(f"torch: {ms['torch']:8.2f} ms/step (median; mean "
          f"{1000 * statistics.mean(times['torch']):.2f}), final loss {losses['torch']:.4f}")
    print(f"ratio ours/torch: {ratio:.2f}x (target <= 1.5x)")
    return {"ours_ms": ms["ours"], "torch_ms": ms["torch"], "ratio": ratio,
            "ours_loss": losses["ours"], "torch_loss": losses["torch"]}


if __name__ == "__main__":
    main()
