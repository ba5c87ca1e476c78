"""Fixed points of a learned autonomous vector field, found by an optimiser from many starting states.

Minimises q(h) = ||f(h)||^2 / 2 from every start at once (Adam on the batch), keeps the minima with
q below `tol`, and merges minima closer than `merge_dist` (each kept point is the first of its cluster).
Used to compare a NODE's fixed points with a known system's (the Lorenz origin and wing centres).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class FixedPoints:
    points: np.ndarray  # (k, dim) distinct fixed points, most often reached first
    speeds: np.ndarray  # (k,) q = ||f(h)||^2 / 2 at each
    counts: np.ndarray  # (k,) starts that converged to each


def find_fixed_points(field: Callable[[torch.Tensor], torch.Tensor], starts: np.ndarray, steps: int = 2000,
                      lr: float = 1e-2, tol: float = 1e-8, merge_dist: float = 1e-2) -> FixedPoints:
    """Distinct fixed points of `field` reached from `starts` (n, dim) by minimising ||f(h)||^2 / 2."""
    h = torch.tensor(np.asarray(starts, dtype=np.float32), requires_grad=True)
    opt = torch.optim.Adam([h], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        q = 0.5 * field(h).pow(2).sum(dim=1)
        q.sum().backward()
        opt.step()
    with torch.no_grad():
        q = (0.5 * field(h).pow(2).sum(dim=1)).numpy().astype(np.float64)
    found = h.detach().numpy().astype(np.float64)[q < tol]
    q = q[q < tol]
    points: list[np.ndarray] = []
    speeds: list[float] = []
    counts: list[int] = []
    for p, s in zip(found, q):
        dist = [np.linalg.norm(p - c) for c in points]
        if dist and min(dist) < merge_dist:
            counts[int(np.argmin(dist))] += 1
        else:
            points.append(p)
            speeds.append(float(s))
            counts.append(1)
    order = np.argsort(counts, kind="stable")[::-1]
    dim = np.asarray(starts).shape[1]
    return FixedPoints(np.array(points).reshape(-1, dim)[order], np.array(speeds)[order], np.array(counts)[order])
