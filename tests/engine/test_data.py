"""The offline data loaders and the engine-agnostic training loop: IDX files written here
(gzipped and raw), scikit-learn's bundled digits, mini-batches."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import backprop_course as bc
from backprop_course.data import (
    MNIST_FILES,
    MNIST_MEAN,
    MNIST_STD,
    batches,
    find_mnist,
    load_digits,
    load_mnist,
    mnist_files,
    read_idx,
    write_idx,
)
from backprop_course.train import evaluate, mlp, predict, train_epoch


def _raw_idx(array: np.ndarray, code: int) -> bytes:
    """An IDX file built by hand, independently of write_idx."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_uint8_images(tmp_path: Path, compress: bool) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    body = _raw_idx(images, 0x08)
    path = tmp_path / ("images.gz" if compress else "images")
    path.write_bytes(gzip.compress(body) if compress else body)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, images)


def test_read_idx_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"          # no .gz, but gzipped
    path.write_bytes(gzip.compress(_raw_idx(labels, 0x08)))
    np.testing.assert_array_equal(read_idx(path), labels)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_read_round_trip(tmp_path: Path, dtype: type) -> None:
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        out = read_idx(write_idx(tmp_path / name, array))
        assert out.dtype == np.dtype(dtype) and out.shape == array.shape
        np.testing.assert_array_equal(out, array)


def test_read_idx_big_endian(tmp_path: Path) -> None:
    values = np.array([1, 256, -2], dtype=">i4")
    (tmp_path / "v").write_bytes(_raw_idx(values, 0x0C))
    np.testing.assert_array_equal(read_idx(tmp_path / "v"), [1, 256, -2])


def test_read_idx_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    short = _raw_idx(np.zeros((4, 4), dtype=np.uint8), 0x08)[:-3]
    (tmp_path / "short").write_bytes(short)
    with pytest.raises(ValueError, match="holds only"):
        read_idx(tmp_path / "short")


def _fake_mnist(folder: Path, compress: bool, n_train: int = 12, n_test: int = 5,
                seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        body = _raw_idx(array, 0x08)
        name = MNIST_FILES[key] + (".gz" if compress else "")
        (folder / name).write_bytes(gzip.compress(body) if compress else body)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist(tmp_path: Path, compress: bool) -> None:
    arrays = _fake_mnist(tmp_path, compress)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path)
    assert x_train.shape == (12, 784) and x_test.shape == (5, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    expected = (arrays["train_images"].reshape(12, -1) / 255 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(x_train, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])
    raw = load_mnist(tmp_path, normalize=False, dtype=np.float64)[2]
    np.testing.assert_allclose(raw, arrays["test_images"].reshape(5, -1) / 255)
    assert raw.min() >= 0 and raw.max() <= 1


def test_load_mnist_missing_files_named(tmp_path: Path) -> None:
    _fake_mnist(tmp_path, compress=False)
    (tmp_path / MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path)
    assert "never downloads" in str(info.value)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path / "nowhere")


def test_load_mnist_mismatched_counts(tmp_path: Path) -> None:
    _fake_mnist(tmp_path, compress=False)
    (tmp_path / MNIST_FILES["train_labels"]).write_bytes(
        _raw_idx(np.zeros(3, dtype=np.uint8), 0x08))
    with pytest.raises(ValueError, match="labels"):
        load_mnist(tmp_path)


def test_mnist_dotted_names_and_find(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "m"
    _fake_mnist(folder, compress=True)
    for file in folder.iterdir():             # train-images.idx3-ubyte.gz spelling
        stem = file.name[:-3]
        dotted = stem[::-1].replace("-", ".", 1)[::-1]
        file.rename(folder / (dotted + ".gz"))
    assert set(mnist_files(folder)) == set(MNIST_FILES)
    assert find_mnist((str(tmp_path / "empty"), str(folder))) == folder
    assert find_mnist((str(tmp_path / "empty"),)) is None
    monkeypatch.setenv("BACKPROP_COURSE_MNIST", str(folder))
    assert find_mnist() == folder


def test_load_digits_shapes_and_determinism() -> None:
    x_train, y_train, x_test, y_test = load_digits(test_size=0.25, seed=0)
    assert x_train.shape == (1347, 64) and x_test.shape == (450, 64)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    assert x_train.dtype == np.float64 and y_train.dtype == np.int64
    assert set(np.unique(y_train)) == set(range(10)) and set(np.unique(y_test)) == set(range(10))
    np.testing.assert_allclose(x_train.mean(axis=0), 0, atol=1e-9)
    std = x_train.std(axis=0)
    assert np.all(np.isclose(std, 1) | np.isclose(std, 0))     # constant pixels stay 0
    again = load_digits(test_size=0.25, seed=0)
    for a, b in zip((x_train, y_train, x_test, y_test), again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = load_digits(test_size=0.25, seed=1)
    assert not np.array_equal(other[1], y_train)
    raw = load_digits(test_size=100, seed=0, standardize=False, dtype=np.float32)
    assert raw[2].shape == (100, 64) and raw[0].dtype == np.float32 and raw[0].max() == 16


def test_batches() -> None:
    x = np.arange(10)[:, None] * np.ones((1, 3))
    y = np.arange(10)
    plain = list(batches(x, y, 4))
    assert [len(b[1]) for b in plain] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in plain]), y)
    assert [len(b[1]) for b in batches(x, y, 4, drop_last=True)] == [4, 4]
    shuffled = list(batches(x, y, 3, rng=np.random.default_rng(0)))
    order = np.concatenate([b[1] for b in shuffled])
    assert sorted(order) == list(range(10)) and not np.array_equal(order, y)
    for xb, yb in shuffled:
        np.testing.assert_array_equal(xb[:, 0], yb)              # rows stay with labels
    again = np.concatenate([b[1] for b in batches(x, y, 3, rng=0)])
    np.testing.assert_array_equal(again, np.concatenate(
        [b[1] for b in batches(x, y, 3, rng=np.random.default_rng(0))]))
    with pytest.raises(ValueError):
        list(batches(x, y[:5], 2))
    with pytest.raises(ValueError):
        list(batches(x, y, 0))


def test_train_and_evaluate_both_engines() -> None:
    torch = pytest.importorskip("torch")
    x_train, y_train, x_test, y_test = load_digits(test_size=0.25, seed=0)
    torch.manual_seed(0)
    bc.manual_seed(0)
    theirs = mlp(64, 32, 10, 0.0, engine="torch")
    ours = mlp(64, 32, 10, 0.0, engine="bc")
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_allclose(predict(ours, x_test), predict(theirs, x_test), atol=1e-5)
    results = {}
    for name, model, opt in [("bc", ours, bc.optim.AdamW(ours.parameters(), lr=1e-2)),
                             ("torch", theirs, torch.optim.AdamW(theirs.parameters(), lr=1e-2))]:
        first = evaluate(model, x_test, y_test)
        losses = train_epoch(model, opt, x_train, y_train, 64, np.random.default_rng(0))
        assert len(losses) == 22
        results[name] = evaluate(model, x_test, y_test)
        assert results[name][0] < first[0] and results[name][1] > 0.8
    # no dropout, same start, same batches: float64 and float32 runs stay close
    assert abs(results["bc"][0] - results["torch"][0]) < 1e-3


def test_mlp_and_engine_errors() -> None:
    with pytest.raises(ValueError):
        mlp(4, engine="jax")
    with pytest.raises(TypeError):
        evaluate(object(), np.zeros((1, 2)), np.zeros(1, dtype=int))
    model = mlp(784, engine="bc")
    assert [p.shape for p in model.parameters()] == [
        (512, 784), (512,), (512, 512), (512,), (10, 512), (10,)]
