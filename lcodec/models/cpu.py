"""Running a module on CPU at a chosen float precision, without touching the module itself."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["run_on_cpu"]


def run_on_cpu(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` on CPU with its floating parameters and buffers cast to ``x.dtype`` (widening
    float32 to float64 is exact); the module's own tensors stay where and as they are."""
    params = {k: (v.detach().cpu().to(x.dtype) if v.is_floating_point() else v.detach().cpu())
              for k, v in module.state_dict().items()}
    return functional_call(module, params, (x,))
