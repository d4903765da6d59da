"""DPT head that turns four hooked token maps into a pointmap and a confidence (fast3r-spec section 4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DPTHead", "postprocess"]


class _ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))), 3x3 convs with bias.

    The inner ReLU and the residual add run in place on fresh conv outputs (autograd-safe: a conv's
    backward needs its input, not its output), which saves two full-size tensors per unit.
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu_(self.conv1(F.relu(x)))).add_(x)


class _FusionBlock(nn.Module):
    """y = a (+ RCU1(b)); y = RCU2(y); bilinear x2 (align_corners); 1x1 conv."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.resConfUnit1 = _ResidualConvUnit(ch)  # unused by refinenet4 but present in the weights
        self.resConfUnit2 = _ResidualConvUnit(ch)
        self.out_conv = nn.Conv2d(ch, ch, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        y = a if b is None else self.resConfUnit1(b).add_(a)
        y = self.resConfUnit2(y)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(y)


class _Scratch(nn.Module):
    def __init__(self, layer_dims: list[int], feat: int) -> None:
        super().__init__()
        # registered once each (the published module also lists them as layer_rn.{0..3}: same tensors)
        self.layer1_rn = nn.Conv2d(layer_dims[0], feat, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(layer_dims[1], feat, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(layer_dims[2], feat, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(layer_dims[3], feat, 3, padding=1, bias=False)
        self.refinenet1 = _FusionBlock(feat)
        self.refinenet2 = _FusionBlock(feat)
        self.refinenet3 = _FusionBlock(feat)
        self.refinenet4 = _FusionBlock(feat)


class _Interpolate2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class _DPT(nn.Module):
    """The DPT adapter proper; its parameter names are the checkpoint's ``*.dpt.*`` keys.

    Runs in channels-last memory: a token map (B, T, C) in raster order *is* a channels-last
    (B, C, h, w) tensor, so it enters as a view without a transpose copy, and oneDNN's convolutions,
    transposed convolutions and bilinear upsampling then work on NHWC without reordering per layer.
    """

    def __init__(
        self, in_dims: Sequence[int], layer_dims: list[int], feat: int, last: int, out_ch: int
    ) -> None:
        super().__init__()
        d0, d1, d2, d3 = layer_dims
        c0, c1, c2, c3 = in_dims
        self.act_postprocess = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(c0, d0, 1), nn.ConvTranspose2d(d0, d0, 4, stride=4)),
                nn.Sequential(nn.Conv2d(c1, d1, 1), nn.ConvTranspose2d(d1, d1, 2, stride=2)),
                nn.Sequential(nn.Conv2d(c2, d2, 1)),
                nn.Sequential(nn.Conv2d(c3, d3, 1), nn.Conv2d(d3, d3, 3, stride=2, padding=1)),
            ]
        )
        self.scratch = _Scratch(layer_dims, feat)
        self.head = nn.Sequential(
            nn.Conv2d(feat, last, 3, padding=1),
            _Interpolate2x(),
            nn.Conv2d(last, last, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(last, out_ch, 1),
        )
        # conv weights kept channels-last too, or every call would reorder them (load_state_dict and
        # .to() preserve these strides; the checkpoint writer saves contiguous copies)
        # Module.to accepts memory_format (documented) but torch's overloads omit it
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, hooks: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        h, w = grid
        maps = []
        for x, post in zip(hooks, self.act_postprocess, strict=True):
            B, _T, C = x.shape
            nhwc = x.reshape(B, h, w, C).permute(0, 3, 1, 2)  # (B, C, h, w) view, channels-last strides
            maps.append(post(nhwc.contiguous(memory_format=torch.channels_last)))  # no-op if already so
        s = self.scratch
        l1, l2, l3, l4 = (
            s.layer1_rn(maps[0]),
            s.layer2_rn(maps[1]),
            s.layer3_rn(maps[2]),
            s.layer4_rn(maps[3]),
        )
        path = s.refinenet4(l4)[:, :, : l3.shape[2], : l3.shape[3]]  # odd h/2, w/2: crop back
        path = s.refinenet3(path, l3)
        path = s.refinenet2(path, l2)
        path = s.refinenet1(path, l1)
        return self.head(path)


class DPTHead(nn.Module):
    """Pointmap head: 4 token maps (B', T, C_k) -> raw (B', 4, H, W) with H = p*h, W = p*w.

    ``in_dim`` is the channel count C_k of each hooked map: one int for all four, or four ints. In
    Fast3R hook 0 is the encoder output (encoder width) and hooks 1-3 are fusion-decoder layers
    (decoder width), so a model whose widths differ has ``(C_enc, C_dec, C_dec, C_dec)``.
    """

    def __init__(
        self, in_dim: int | Sequence[int], layer_dims: list[int], feat: int = 256, last: int = 128
    ) -> None:
        super().__init__()
        in_dims = (in_dim,) * 4 if isinstance(in_dim, int) else tuple(in_dim)
        if len(in_dims) != 4:
            raise ValueError(f"in_dim must be one int or 4 ints (one per hook), got {in_dim!r}")
        self.dpt = _DPT(in_dims, layer_dims, feat, last, out_ch=4)

    def forward(self, hooks: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        return self.dpt(hooks, grid)


def postprocess(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw head output (B, 4, H, W) -> points (B, H, W, 3) and confidence (B, H, W), both float32.

    A channels-last ``raw`` makes the permute below a contiguous view.

    "exp" depth mode: a vector v with norm d becomes v / max(d, 1e-8) * (e^d - 1); confidence is 1 + e^c.
    Done in fp32 whatever the autocast dtype, because exp amplifies rounding.
    """
    raw = raw.float().permute(0, 2, 3, 1)
    xyz, c = raw[..., :3], raw[..., 3]
    d = xyz.norm(dim=-1, keepdim=True)
    pts = xyz / d.clamp(min=1e-8) * torch.expm1(d)
    return pts, 1.0 + c.exp()
