"""The same layers with faster CPU kernels: same parameters, same values to float rounding.

- MAISI's group norm, when it keeps float32 (always on the CPU), is torch's group norm computed one
  group at a time in Python: torch's own ``GroupNorm`` replaces it (the demo VAE decode: 20-30% faster).
- PyTorch sends a convolution to its native im2col kernel instead of oneDNN when N*C*D*H of the input
  is at most 20,480, a rule made for 2D images that leaves a 3D volume's last axis out: the UNet's
  16- and 32-channel layers on a 28x28x40 latent ran 4-6x slower per FLOP than the wider ones.
  ``OneDnnConv3d`` always takes oneDNN on the CPU for float32 inference (one demo UNet pass on the
  256x256x128 benchmark's latent: 0.32 -> 0.11 s); with gradients, off the CPU, or in a torch build
  without oneDNN or without its private entry point, it is ``Conv3d``.
  A 1x1x1 convolution of one volume is a matrix product over channels, which oneDNN computes at a
  quarter of the speed (the demo VAE decoder's 16 -> 8 channel shortcut at 112x112x160: 57 -> 16 ms).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class OneDnnConv3d(nn.Conv3d):
    """``Conv3d`` that takes oneDNN for float32 CPU inference whatever the input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32
                or self.padding_mode != "zeros" or isinstance(self.padding, str)):
            return super().forward(x)
        if self.pointwise and x.shape[0] == 1 and x.is_contiguous():
            flat = x.view(x.shape[1], -1)
            weight = self.weight.view(self.out_channels, self.in_channels)
            out = torch.mm(weight, flat) if self.bias is None else torch.addmm(self.bias[:, None], weight, flat)
            return out.view(1, self.out_channels, *x.shape[2:])
        if not onednn_available():
            return super().forward(x)
        return torch.mkldnn_convolution(x, self.weight, self.bias, self.padding, self.stride,
                                        self.dilation, self.groups)

    @property
    def pointwise(self) -> bool:
        """A 1x1x1 kernel with unit stride, no padding and no groups: a matrix product over channels."""
        return (self.kernel_size == (1, 1, 1) and self.stride == (1, 1, 1) and self.padding == (0, 0, 0)
                and self.dilation == (1, 1, 1) and self.groups == 1)


def onednn_available() -> bool:
    """Whether this torch build has oneDNN and its private convolution entry point (builds for some platforms
    lack one or the other, and a private function can go in any release): else the public convolution."""
    return torch.backends.mkldnn.is_available() and callable(getattr(torch, "mkldnn_convolution", None))


def _replace(module: nn.Module, wanted: Callable[[nn.Module], bool], make: Callable[[nn.Module], nn.Module]) -> None:
    """Every child for which ``wanted`` holds becomes ``make(child)``, which carries the child's state over."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if wanted(child):
                setattr(parent, name, make(child))


def _group_norm(child) -> nn.GroupNorm:
    plain = nn.GroupNorm(child.num_groups, child.num_channels, child.eps, child.affine)
    plain.load_state_dict(child.state_dict())
    return plain


def _onednn_conv(child: nn.Conv3d) -> OneDnnConv3d:
    conv = OneDnnConv3d(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                        padding=child.padding, dilation=child.dilation, groups=child.groups,
                        bias=child.bias is not None, padding_mode=child.padding_mode)
    conv.load_state_dict(child.state_dict())
    return conv


def fast_kernels(module: nn.Module) -> nn.Module:
    """``module`` with float32 MAISI group norms and 3D convolutions swapped for the faster equivalents."""
    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import MaisiGroupNorm3D

    _replace(module, lambda m: isinstance(m, MaisiGroupNorm3D) and not m.norm_float16, _group_norm)
    _replace(module, lambda m: type(m) is nn.Conv3d, _onednn_conv)
    return module
