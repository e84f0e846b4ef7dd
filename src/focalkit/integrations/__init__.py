"""Glue for the libraries people train with.

* :mod:`focalkit.integrations.torchvision`: a drop-in for ``torchvision.ops.sigmoid_focal_loss``
  (torchvision's exact signature) and a class-index classification loss for torchvision's RetinaNet.

PyTorch Lightning, the Hugging Face ``Trainer``, timm and torchmetrics need no glue: their tested
recipes are in the documentation's Integrations pages (``docs/integrations/``). Nothing here imports
the library it serves, and ``import focalkit`` does not import this package.
"""
