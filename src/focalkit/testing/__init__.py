"""Testing helpers for focalkit and for users' own tests.

:mod:`focalkit.testing.reference` is an independent float64 NumPy implementation of both losses and
their gradients (no torch), written from the paper's formulas (with Poly-1 and PiecewiseGamma;
:mod:`focalkit.testing.reference_family` adds the asymmetric, quality and varifocal losses); focalkit's tests compare every
backend against it, and users can do the same for their own wrappers:

    >>> import numpy as np
    >>> from focalkit.testing import reference
    >>> round(float(reference.sigmoid_focal_loss(np.array([0.0]), np.array([1.0]), alpha=None).sum()), 4)
    0.1733
"""

from focalkit.testing import reference, reference_family

__all__ = ["reference", "reference_family"]
