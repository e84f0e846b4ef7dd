"""Set-up of the integration recipes' tests: torchvision made importable, one thread per test.

See ``integration_recipes.py`` for why ``prepare_torchvision`` is needed here (torchvision's CUDA-only wheel for
this torch); it runs before any test module imports timm, torchmetrics, transformers or Lightning.
"""

from __future__ import annotations

import pytest
import torch

from integration_recipes import prepare_torchvision

prepare_torchvision()


@pytest.fixture(autouse=True)
def _one_thread():
    """The recipes' models are tiny: one intra-op thread each (the suite runs two workers on two cores).

    Two threads per worker would oversubscribe the cores, and on a loaded machine OpenMP's barriers
    then make a small convolution 50 times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
