"""docs/integrations/torchmetrics.md: the example, and its AP against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from integration_recipes import need, run_page


def test_page_example_trains_and_average_precision_rises():
    need("torchmetrics")
    ns = run_page("torchmetrics")
    y_val = ns["y_val"]
    assert y_val.float().mean(0).min() > 0.003  # every label has positives in the validation split
    assert float(ns["ap_after"].min()) > 0.5
    assert float(ns["ap_after"].mean()) > float(ns["ap_before"].mean()) + 0.4

    # torchmetrics' per-label AP is the standard one: scikit-learn's on the same scores
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed (the experiments extra)")
    with torch.no_grad():
        probs = ns["model"](ns["x_val"]).sigmoid().numpy()
    expected = [metrics.average_precision_score(y_val[:, k].numpy(), probs[:, k]) for k in range(6)]
    np.testing.assert_allclose(ns["ap_after"].numpy(), expected, rtol=1e-4)
