"""2-D convolution, NCHW at the API, lowered to GEMMs in one of five ways chosen per layer.

x (N, C, H, W), w (O, C/groups, kh, kw) -> out (N, O, Ho, Wo), Ho = (H + pads - d (kh - 1) - 1) // s + 1:
    out[n, o, y, x] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, s y + d i, s x + d j]

Read ``reference.py`` first: im2col, one GEMM and col2im, forward and backward side by side with the chain rule in
its docstring. Every other lowering computes the same numbers faster for some geometry, and opens with when it is
chosen and why it is faster; the tests hold each of them equal to the reference (tests/ops/test_conv_lowerings.py):

    channels_last.py   im2col in cache-sized blocks, NHWC: grouped convolutions
    shifted.py         kh kw GEMMs on shifted rows, no im2col: most convolutions without groups
    planar.py          windows gathered from planes: few input channels (the CIFAR stem)
    toeplitz.py        one banded GEMM per kernel row: few channels on narrow images (LeNet)

``choose_lowering`` is the choice, one function: a layer's geometry in, the lowering that computes it out
(``conv2d(..., lowering=NAME)`` asks for a named one). docs/benchmarks.md has the measurements behind it.

Transposed (``ConvTranspose2d``, upsampling): no lowering of its own. It is the adjoint of the conv from its output
back to its input, so a lowering's three products serve it with the roles swapped: its forward is that conv's
col2im, its dx that conv's forward, its dW that conv's weight gradient.
"""

from __future__ import annotations

import numpy as np

from dlbasics.autograd.function import Function
from dlbasics.ops._layout import per_channel
from dlbasics.ops.conv.channels_last import ChannelsLast, weight_matrix
from dlbasics.ops.conv.geometry import Geometry, IntPair, out_size, pad_nhwc, pair
from dlbasics.ops.conv.planar import Planar
from dlbasics.ops.conv.reference import Reference
from dlbasics.ops.conv.shifted import Shifted
from dlbasics.ops.conv.toeplitz import Toeplitz
from dlbasics.tensor import Tensor

Lowering = Reference | ChannelsLast | Shifted | Planar | Toeplitz
# the names conv2d(lowering=...) takes; "shifted-one-pixel-per-row" is shifted without pairing the pixels of
# few-channel layers
LOWERINGS = ("reference", "channels_last", "shifted", "shifted-one-pixel-per-row", "planar", "toeplitz")


def check_lowering(name: str | None) -> None:
    if name is not None and name not in LOWERINGS:
        raise ValueError(f"conv2d: unknown lowering {name!r}; choose from {', '.join(LOWERINGS)}")


def choose_lowering(geo: Geometry, name: str | None = None) -> Lowering:
    """The lowering that computes the convolution ``geo`` describes.

    None: the one that pays: channels-last for grouped convs; else Toeplitz where ``Toeplitz.pays``, planar where
    ``Planar.pays``, shifted otherwise. A name (``LOWERINGS``) forces that one wherever it supports the geometry
    (groups need channels-last or the reference, planar needs stride 1), for tests and for measuring one against
    another."""
    check_lowering(name)
    if name == "reference":
        return Reference(geo)
    if geo.groups > 1 or name == "channels_last":
        return ChannelsLast(geo)
    if name == "toeplitz" or (name is None and Toeplitz.pays(geo)):
        return Toeplitz(geo)
    if Planar.supports(geo) and (name == "planar" or (name is None and Planar.pays(geo))):
        return Planar(geo)
    return Shifted(geo, pair_pixels=name != "shifted-one-pixel-per-row")


def choose_adjoint_lowering(geo: Geometry, name: str | None = None) -> Reference | Shifted | ChannelsLast:
    """The lowering of the conv ``geo`` (from a transposed conv's output back to its input) whose products run
    the transposed conv: Shifted without groups (its dx is a few GEMMs straight into the output's phases, no col2im
    adds), ChannelsLast with groups or when another lowering is named, or the reference."""
    check_lowering(name)
    if name == "reference":
        return Reference(geo)
    if geo.groups == 1 and name in (None, "shifted", "shifted-one-pixel-per-row"):
        return Shifted(geo, pair_pixels=name != "shifted-one-pixel-per-row")
    return ChannelsLast(geo)


class Conv2d(Function):
    """The conv op: ``choose_lowering`` picks the lowering for the layer's geometry (or the one named), which
    computes forward and the gradients; the bias is added by the lowering, along its output buffer's long rows."""

    def forward(self, x, w, b=None, *, stride, pads, dilation, groups, lowering=None):
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        ho = out_size(h, kh, stride[0], pads[0] + pads[1], dilation[0])
        wo = out_size(wd, kw, stride[1], pads[2] + pads[3], dilation[1])
        geo = Geometry(n, c, h, wd, o, kh, kw, ho, wo, groups, stride, pads, dilation)
        self.lowering = choose_lowering(geo, lowering)
        return self.lowering.forward(x, w, b, keep_input=self.needs_input_grad[1])

    def backward(self, grad):
        needs = self.needs_input_grad
        return self.lowering.grads(grad, needs[0], needs[1], len(needs) == 3 and needs[2])


class ConvTranspose2d(Function):
    """Transposed convolution: x (N, C_in, H, W), w (C_in, C_out/g, kh, kw) -> out (N, C_out, Ho, Wo),
    Ho = (H - 1) s - 2 p + d (kh - 1) + output_padding + 1 (likewise Wo):
        out[n, o, s y - p + d i, s x - p + d j] += sum_c x[n, c, y, x] w[c, o, i, j]   (plus b[o] everywhere)

    It is the adjoint of the conv from (N, C_out, Ho, Wo) to (N, C_in, H, W) with the same w (as a conv weight,
    O = C_in, C/g = C_out/g), stride, padding and dilation: forward is that conv's input gradient of x, dx is the
    conv itself of dy, and dW is its weight gradient with dy as the input and x as the output gradient, all three
    the lowering's (Shifted without groups, ChannelsLast with). output_padding first keeps bottom rows (right
    columns) that the padding would crop; those past the full (H - 1) s + d (kh - 1) + 1 lie beyond every window and
    get only the bias."""

    def forward(self, x, w, b=None, *, stride, pads, dilation, groups, out_hw, lowering=None):
        n, c_in, h, wd = x.shape
        c_out = w.shape[1] * groups
        geo = Geometry(n, c_out, *out_hw, c_in, *w.shape[2:], h, wd, groups, stride, pads, dilation)
        self.lowering = lw = choose_adjoint_lowering(geo, lowering)
        self.reference, self.shifted = isinstance(lw, Reference), isinstance(lw, Shifted)
        if self.reference:  # the reference conv run backwards, by its own formulas
            out = lw.input_grad(x, w)
            self.w, self.x = w, x
            return out if b is None else out + b.reshape(-1, 1, 1)
        if self.shifted:
            lw.wf = lw._weights(w)
        else:
            lw.wm = weight_matrix(w, groups)
            lw.padded = (n, out_hw[0] + pads[0] + pads[1], out_hw[1] + pads[2] + pads[3], c_out)
        xm = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1, c_in)  # free when x is NHWC already
        out = lw._input_grad(xm)  # (N, Ho, Wo, C_out), a view of the sums
        if b is not None:
            if out.flags.c_contiguous:
                per_channel(np.add, out.reshape(-1, c_out), b, out.reshape(-1, c_out))
            else:
                np.add(out, b, out=out)
        self.w = w if self.needs_input_grad[0] or self.shifted else None
        self.xm = xm if self.needs_input_grad[1] else None
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad):
        needs = self.needs_input_grad
        lw, gx, gw, gb = self.lowering, None, None, None
        if self.reference:  # dx is the conv of dy; dW its weight gradient with x in the place of dy
            gx = lw.forward(grad, self.w, None) if needs[0] or needs[1] else None
            gw = lw.weight_grad(self.x) if needs[1] else None
            gb = grad.sum(axis=(0, 2, 3)) if len(needs) == 3 and needs[2] else None
            return gx if needs[0] else None, gw, gb
        if needs[0] or (needs[1] and self.shifted):  # Shifted's dW reads the rows its forward lays dy out in
            gx = lw.forward(grad, self.w, None, keep_input=needs[1])
        elif needs[1]:
            lw.xp = pad_nhwc(grad.transpose(0, 2, 3, 1), lw.geo.pads)
        if needs[1]:
            gw = lw.weight_grad(self.xm)
        if len(needs) == 3 and needs[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx if needs[0] else None, gw, gb


def conv_pads(padding: IntPair | str, kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair, "valid" or "same" (stride 1; extra on the bottom/right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1, got stride {stride}")
        th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pair(padding, "conv2d padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"conv2d: padding must be >= 0, got {padding!r}")
    return (ph, ph, pw, pw)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1, *,
           lowering: str | None = None) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch): input (N, C, H, W) or (C, H, W), weight
    (O, C/groups, kh, kw), bias (O,) -> (N, O, Ho, Wo). See the module docstring for the math.

    ``lowering`` (dlbasics only): compute it with the lowering of that name where it supports the geometry
    (``LOWERINGS``; "reference" always does); None takes the fastest (``choose_lowering``)."""
    check_lowering(lowering)
    if input.ndim == 3:
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups,
                      lowering=lowering).squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(f"conv2d: expected input (N, C, H, W) and weight (O, C/groups, kh, kw), "
                           f"got input {input.shape} and weight {weight.shape}")
    s, d = pair(stride, "conv2d stride"), pair(dilation, "conv2d dilation")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"conv2d: stride and dilation must be >= 1, got stride {stride}, dilation {dilation}")
    o, cg, kh, kw = weight.shape
    c = input.shape[1]
    if groups < 1 or c % groups or o % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both in_channels {c} and out_channels {o}")
    if cg * groups != c:
        raise RuntimeError(f"conv2d: input {input.shape} has {c} channels, but weight {weight.shape} with "
                           f"groups={groups} expects {cg * groups}")
    if bias is not None and bias.shape != (o,):
        raise RuntimeError(f"conv2d: bias {bias.shape} does not match weight {weight.shape}")
    pads = conv_pads(padding, (kh, kw), s, d)
    h, w = input.shape[2] + pads[0] + pads[1], input.shape[3] + pads[2] + pads[3]
    if d[0] * (kh - 1) + 1 > h or d[1] * (kw - 1) + 1 > w:
        raise RuntimeError(f"conv2d: kernel ({kh}, {kw}) with dilation {d} is larger than the padded input "
                           f"({h}, {w}) of input {input.shape}")
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*args, stride=s, pads=pads, dilation=d, groups=groups, lowering=lowering)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1, *, lowering: str | None = None) -> Tensor:
    """2-D transposed convolution (PyTorch's, note groups before dilation): input (N, C_in, H, W) or
    (C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,) -> (N, C_out, Ho, Wo). ``ConvTranspose2d``
    gives the math. ``lowering``: "reference" runs the reference conv backwards; "shifted" (the default without
    groups) or "channels_last" the products of that lowering."""
    check_lowering(lowering)
    if input.ndim == 3:
        return conv_transpose2d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation, lowering=lowering).squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(f"conv_transpose2d: expected input (N, C_in, H, W) and weight (C_in, C_out/groups, kh, "
                           f"kw), got input {input.shape} and weight {weight.shape}")
    if isinstance(padding, str):
        raise TypeError(f"conv_transpose2d: padding must be an int or a pair of ints, got {padding!r}")
    s, d = pair(stride, "conv_transpose2d stride"), pair(dilation, "conv_transpose2d dilation")
    p, op = pair(padding, "conv_transpose2d padding"), pair(output_padding, "conv_transpose2d output_padding")
    if min(s) < 1 or min(d) < 1:
        raise RuntimeError(f"conv_transpose2d: stride and dilation must be >= 1, got stride {stride}, "
                           f"dilation {dilation}")
    if min(p) < 0 or min(op) < 0:
        raise RuntimeError(f"conv_transpose2d: padding and output_padding must be >= 0, got padding {padding}, "
                           f"output_padding {output_padding}")
    if any(op[k] >= max(s[k], d[k]) for k in range(2)):
        raise RuntimeError(f"conv_transpose2d: output_padding {op} must be smaller than either stride {s} or "
                           f"dilation {d}")
    c_in, og, kh, kw = weight.shape
    if groups < 1 or c_in % groups:
        raise RuntimeError(f"conv_transpose2d: groups={groups} must divide in_channels {c_in} of weight "
                           f"{weight.shape}")
    if input.shape[1] != c_in:
        raise RuntimeError(f"conv_transpose2d: input {input.shape} has {input.shape[1]} channels, but weight "
                           f"{weight.shape} expects {c_in}")
    if bias is not None and bias.shape != (og * groups,):
        raise RuntimeError(f"conv_transpose2d: bias {bias.shape} does not match weight {weight.shape} with "
                           f"groups={groups} ({og * groups} output channels)")
    out_hw = tuple((input.shape[2 + k] - 1) * s[k] - 2 * p[k] + d[k] * ((kh, kw)[k] - 1) + op[k] + 1 for k in range(2))
    if min(out_hw) < 1:
        raise RuntimeError(f"conv_transpose2d: input {input.shape} with weight {weight.shape}, stride {s}, padding "
                           f"{p} and dilation {d} gives output size {out_hw}, which is too small")
    args = (input, weight) if bias is None else (input, weight, bias)
    return ConvTranspose2d.apply(*args, stride=s, pads=(p[0], p[0], p[1], p[1]), dilation=d, groups=groups,
                                 out_hw=out_hw, lowering=lowering)


__all__ = [
    "LOWERINGS",
    "Conv2d",
    "ConvTranspose2d",
    "Geometry",
    "IntPair",
    "Lowering",
    "choose_adjoint_lowering",
    "choose_lowering",
    "conv2d",
    "conv_pads",
    "conv_transpose2d",
    "pair",
]
