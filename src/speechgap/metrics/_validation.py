"""Input checks shared by the metrics: torch or numpy in, float64 numpy out, errors that name the argument."""

from __future__ import annotations

from typing import Any

import numpy as np

from speechgap.errors import ConfigError

NOT_FINITE = "argument '{name}': contains NaN or infinite values"


def as_array(
    value: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype: Any = np.float64,
    check_finite: bool = True,
) -> np.ndarray:
    """Convert ``value`` (numpy array, torch tensor, nested list) to a numpy array of ``dtype``.

    Torch tensors are moved to the CPU and detached first; bfloat16/float16 tensors are widened to float32
    by torch before numpy sees them (numpy has no bfloat16).

    ``check_finite=False`` skips the NaN/infinity scan, for a caller that checks while it reads the values
    anyway (it must then raise :data:`NOT_FINITE` itself).

    Raises:
        ConfigError: naming ``name`` when the number of dimensions is not ``ndim`` or values are not finite.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        tensor = value.detach().cpu()
        if tensor.is_floating_point() and tensor.element_size() < 4:
            tensor = tensor.float()
        value = tensor.numpy()
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"argument '{name}': cannot be read as a numeric array ({error})") from error
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if array.ndim not in allowed:
            wanted = " or ".join(str(d) for d in allowed)
            raise ConfigError(f"argument '{name}': expected {wanted} dimensions, got shape {array.shape}")
    if check_finite and np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ConfigError(NOT_FINITE.format(name=name))
    return array


def as_float_rows(value: Any, name: str) -> np.ndarray:
    """A ``(n, d)`` float64 matrix with at least one row and one column."""
    array = as_array(value, name, ndim=2)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ConfigError(
            f"argument '{name}': expected a non-empty (rows, dim) matrix, got shape {array.shape}"
        )
    return array


def as_layered(value: Any, name: str) -> np.ndarray:
    """A ``(layers, tokens, dim)`` float64 array with no empty axis."""
    array = as_array(value, name, ndim=3)
    if 0 in array.shape:
        raise ConfigError(
            f"argument '{name}': expected non-empty (layers, tokens, dim), got shape {array.shape}"
        )
    return array


def check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise when the last (feature) dimensions differ."""
    if a.shape[-1] != b.shape[-1]:
        raise ConfigError(
            f"argument '{name_a}' and argument '{name_b}': feature dimensions differ ({a.shape[-1]} vs {b.shape[-1]})"
        )
