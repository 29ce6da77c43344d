"""Data sets for the training notebook, all offline: nothing here downloads.

``load_digits``  scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 inputs)
``load_mnist``   MNIST (28x28 = 784 inputs) from the four standard IDX files, if you have
                 them on disk (gzipped or not)
``read_idx``     one IDX file as a numpy array
``batches``      mini-batches of (x, y), shuffled by a generator

Every loader returns ``(x_train, y_train, x_test, y_test)`` with ``x`` of shape (N, D),
float, and ``y`` of shape (N,), int64 class labels.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# IDX type codes (the third byte of the magic number) -> big-endian numpy dtypes
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: The four files of MNIST, by the names LeCun's site (and torchvision's raw folder) use.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: MNIST's pixel mean and standard deviation (after scaling to [0, 1]), as in the decks.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

#: Where ``find_mnist`` looks when no path is given (``$BACKPROP_COURSE_MNIST`` first).
MNIST_SEARCH_PATHS = (
    "~/.cache/MNIST/raw",
    "~/.cache/mnist",
    "~/data/MNIST/raw",
    "~/data/mnist",
    "./data/MNIST/raw",
    "./data/mnist",
)


# --------------------------------------------------------------------------- IDX
def _open(path: Path) -> Any:
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the format MNIST ships in), gzipped or not.

    The header is two zero bytes, a type code (0x08 = uint8, ...), the number of
    dimensions, then each dimension as a big-endian uint32; the values follow, big-endian.

    Returns
    -------
    np.ndarray
        Shape given by the header, native byte order (uint8 for MNIST).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not IDX, or is shorter than its header says.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}")
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header < count * dtype.itemsize:
        raise ValueError(f"{path}: IDX header says shape {shape} ({count} values) but the "
                         f"file holds only {(len(raw) - header) // dtype.itemsize}")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzipped if ``compress``, or if the name ends in .gz).

    The inverse of :func:`read_idx`; handy for tests and for making a small MNIST-like set.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    code = codes[dtype]
    body = (bytes([0, 0, code, array.ndim])
            + np.asarray(array.shape, dtype=">u4").tobytes()
            + array.astype(IDX_DTYPES[code]).tobytes())
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


# ------------------------------------------------------------------------- MNIST
def _mnist_file(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder``, also as ``name.gz`` or with a dot for the last dash
    (``train-images.idx3-ubyte``, as some mirrors spell it)."""
    dotted = name[::-1].replace("-", ".", 1)[::-1]
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def mnist_files(path: str | os.PathLike) -> dict[str, Path]:
    """The four MNIST files in the folder ``path``.

    Raises
    ------
    FileNotFoundError
        Naming the files that are missing and what they should be called.
    """
    folder = Path(path).expanduser()
    found = {key: _mnist_file(folder, name) for key, name in MNIST_FILES.items()}
    missing = [MNIST_FILES[key] for key, file in found.items() if file is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST not found in {folder}: missing {', '.join(missing)} (each may also end "
            f"in .gz). This package never downloads; put the four IDX files from the MNIST "
            f"distribution in one folder and pass its path."
        )
    return {key: file for key, file in found.items() if file is not None}


def find_mnist(paths: tuple[str, ...] | None = None) -> Path | None:
    """The first folder holding all four MNIST files: ``$BACKPROP_COURSE_MNIST``, then
    :data:`MNIST_SEARCH_PATHS` (or ``paths``). None if there is none."""
    candidates = list(paths if paths is not None else MNIST_SEARCH_PATHS)
    if paths is None and os.environ.get("BACKPROP_COURSE_MNIST"):
        candidates.insert(0, os.environ["BACKPROP_COURSE_MNIST"])
    for candidate in candidates:
        folder = Path(candidate).expanduser()
        try:
            mnist_files(folder)
        except FileNotFoundError:
            continue
        return folder
    return None


def load_mnist(path: str | os.PathLike, normalize: bool = True,
               dtype: Any = np.float32) -> tuple[np.ndarray, ...]:
    """MNIST from the four IDX files in the folder ``path`` (gzipped or not).

    Parameters
    ----------
    path : folder with train-images-idx3-ubyte, train-labels-idx1-ubyte,
        t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz)
    normalize : scale pixels to [0, 1], then subtract 0.1307 and divide by 0.3081, as the
        decks' ``transforms.Normalize((0.1307,), (0.3081,))``; else just scale to [0, 1]
    dtype : float dtype of the images

    Returns
    -------
    x_train (60000, 784), y_train (60000,), x_test (10000, 784), y_test (10000,)
        (whatever counts the files hold); y is int64.
    """
    files = mnist_files(path)
    arrays = {key: read_idx(file) for key, file in files.items()}
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim < 2 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {split}: {images.shape[0]} images of shape "
                             f"{images.shape[1:]} but labels of shape {labels.shape}")
        x = images.reshape(len(images), -1).astype(dtype) / dtype(255)
        if normalize:
            x = (x - dtype(MNIST_MEAN)) / dtype(MNIST_STD)
        out += [x.astype(dtype, copy=False), labels.astype(np.int64)]
    return tuple(out)


# ------------------------------------------------------------------------ digits
def load_digits(test_size: float | int = 0.25, seed: int = 0, standardize: bool = True,
                dtype: Any = np.float64) -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled handwritten digits (8x8 images, 10 classes), split once.

    Parameters
    ----------
    test_size : fraction (or count) of the 1,797 images held out for testing
    seed : seed of the split (stratified by class): same seed, same split
    standardize : subtract the training set's per-pixel mean and divide by its standard
        deviation (pixels that are constant in training are only centred)
    dtype : float dtype of the images

    Returns
    -------
    x_train (N_train, 64), y_train (N_train,), x_test (N_test, 64), y_test (N_test,)
    """
    from sklearn.datasets import load_digits as _sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = _sklearn_digits()
    x = digits.data.astype(np.float64)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    if standardize:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return (x_train.astype(dtype), y_train, x_test.astype(dtype), y_test)


# ----------------------------------------------------------------------- batches
def batches(x: Any, y: Any, batch_size: int = 64,
            rng: np.random.Generator | int | None = None,
            drop_last: bool = False) -> Iterator[tuple[Any, Any]]:
    """Mini-batches ``(x[i], y[i])`` covering the data once (one epoch).

    Parameters
    ----------
    x, y : arrays (or anything indexable by an integer array) with the same first axis
    batch_size : examples per batch; the last batch may be smaller unless ``drop_last``
    rng : a numpy Generator (or a seed) to shuffle the order; None keeps the order
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} examples but y has {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if rng is None:
        order = np.arange(n)
    else:
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        order = rng.permutation(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]
        yield x[index], y[index]
