"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` (stacked, optionally bidirectional) and their one-step cells.

A recurrent network reads a sequence one step at a time and carries a state h_t from step to step, so the same
weights process every position and the state summarizes what came before. PyTorch's API, parameter names, gate
order and init, so a PyTorch ``state_dict`` loads by name:

    weight_ih_l{k}  (G H, I_k)    weight_hh_l{k}  (G H, H)    bias_ih_l{k}, bias_hh_l{k}  (G H)    (+ "_reverse")
    G = 1 (RNN), 4 (LSTM: i f g o), 3 (GRU: r z n);  I_0 = input_size, I_k = H x directions above
    init: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))

Each layer and direction runs as one op over the whole sequence (ops/recurrent.py): one GEMM for all input
projections, a GEMM and one fused elementwise pass per step, backpropagation through time in the op's backward.

Shapes (L layers, D = 2 if bidirectional else 1, H = hidden_size):
    input (T, B, I) or (B, T, I) with ``batch_first``, or (T, I) unbatched, or a ``PackedSequence``
    h_0, h_n (L D, B, H) (unbatched: (L D, H));  output (T, B, D H) ((B, T, D H) with ``batch_first``)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.nn import functional as F
from dlbasics.nn import init
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter
from dlbasics.nn.utils.rnn import PackedSequence, packed_rows
from dlbasics.ops.movement import cat, stack
from dlbasics.ops.recurrent import gather_rows, recurrence, scatter_rows
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _check_sizes(name: str, input_size: int, hidden_size: int) -> None:
    if not (isinstance(input_size, int) and isinstance(hidden_size, int)) or input_size <= 0 or hidden_size <= 0:
        raise ValueError(f"{name}: input_size and hidden_size must be positive integers, got {input_size!r} and "
                         f"{hidden_size!r}")


def _nonlinearity_mode(name: str, nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{name}: unknown nonlinearity {nonlinearity!r}; choose from 'tanh', 'relu'")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


class RNNBase(Module):
    """What ``RNN``, ``LSTM`` and ``GRU`` share: the parameters of L layers x D directions, and the forward that runs
    them layer by layer, with dropout between layers (training only, not after the last)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *, dtype: Any = None,
                 generator: Seed = None) -> None:
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size, hidden_size)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= dropout <= 1.0 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout is applied between recurrent layers, so dropout={dropout} does nothing "
                          "with num_layers=1", UserWarning, stacklevel=2)
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.generator = None if generator is None else get_generator(generator)  # dropout masks
        dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
        gh = _GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        self._weight_names: list[list[tuple[str, ...]]] = []
        for layer in range(num_layers):
            names = []
            for direction in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                fan_in = input_size if layer == 0 else hidden_size * dirs
                setattr(self, "weight_ih" + sfx, Parameter(np.empty((gh, fan_in), dt)))
                setattr(self, "weight_hh" + sfx, Parameter(np.empty((gh, hidden_size), dt)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(np.empty(gh, dt)))
                    setattr(self, "bias_hh" + sfx, Parameter(np.empty(gh, dt)))
                kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[:4 if bias else 2]
                names.append(tuple(k + sfx for k in kinds))
            self._weight_names.append(names)
        self.reset_parameters()

    def reset_parameters(self, generator: Seed = None) -> None:
        """PyTorch's init: every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator)

    def flatten_parameters(self) -> None:
        """PyTorch's cuDNN hook; the weights here are always ready (kept for scripts that call it)."""

    def _name(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"

    # ---- forward ----------------------------------------------------------------------------------------
    def forward(self, input: Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:
        name = self._name()
        dirs = 2 if self.bidirectional else 1
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            bs = np.asarray(batch_sizes.data if isinstance(batch_sizes, Tensor) else batch_sizes, np.int64)
            steps, batch = bs.size, int(bs[0])
            self._check_features(data, name)
            rows = packed_rows(bs, None, steps, batch_first=False)  # packed row -> (t, sorted b)
            x = scatter_rows(data, rows, steps * batch).reshape(steps, batch, self.input_size)
            batched = True
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, got {type(input).__name__}")
            if input.ndim not in (2, 3):
                raise ValueError(f"{name}: input must be 3-D (seq, batch, features) - batch first with "
                                 f"batch_first=True - or 2-D unbatched (seq, features), got shape {input.shape}")
            self._check_features(input, name)
            batched = input.ndim == 3
            x = input if batched else input.unsqueeze(1)  # (T, 1, I)
            if batched and self.batch_first:
                x = x.transpose(0, 1)  # (T, B, I)
            steps, batch = x.shape[0], x.shape[1]
            bs = sorted_indices = unsorted_indices = None
        if steps == 0:
            raise ValueError(f"{name}: input {x.shape} has no time steps")
        if x.dtype != self.weight_ih_l0.dtype:
            raise RuntimeError(f"{name}: input dtype {x.dtype} does not match the weights' {self.weight_ih_l0.dtype}; "
                               "convert one with .to()")
        h0, c0 = self._initial_state(hx, batch, batched, name)
        if sorted_indices is not None and h0 is not None:  # the packed batch runs sorted by length
            order = np.asarray(sorted_indices.data if isinstance(sorted_indices, Tensor) else sorted_indices)
            h0 = h0[:, order]
            c0 = c0[:, order] if c0 is not None else None

        finals_h, finals_c = [], []
        layer_in = x
        for layer, names in enumerate(self._weight_names):
            outs = []
            for direction, wnames in enumerate(names):
                k = layer * dirs + direction
                weights = [getattr(self, n) for n in wnames]
                if not self.bias:
                    weights += [None, None]
                res = recurrence(self.mode, layer_in, *weights, None if h0 is None else h0[k],
                                 None if c0 is None else c0[k], reverse=direction == 1, batch_sizes=bs)
                outs.append(res[:steps])  # (T, B, H)
                finals_h.append(res[steps])
                if self.mode == "LSTM":
                    finals_c.append(res[steps + 1])
            layer_in = outs[0] if dirs == 1 else cat(outs, 2)  # (T, B, D H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True, self.generator)
        h_n = stack(finals_h, 0)  # (L D, B, H)
        c_n = stack(finals_c, 0) if finals_c else None

        output: Any = layer_in
        if bs is not None:
            output = PackedSequence(gather_rows(layer_in.reshape(steps * batch, -1), rows), batch_sizes, sorted_indices,
                                    unsorted_indices)
            if unsorted_indices is not None:
                back = np.asarray(unsorted_indices.data if isinstance(unsorted_indices, Tensor) else unsorted_indices)
                h_n = h_n[:, back]
                c_n = c_n[:, back] if c_n is not None else None
        elif not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)

    def _check_features(self, x: Tensor, name: str) -> None:
        if x.ndim == 0 or x.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input {x.shape} has {x.shape[-1] if x.ndim else 0} features, expected "
                               f"input_size={self.input_size}")

    def _initial_state(self, hx: Any, batch: int, batched: bool, name: str) -> tuple[Tensor | None, Tensor | None]:
        """hx as (h0, c0) of shape (L D, B, H) each (c0 None but for the LSTM), or (None, None) for zeros."""
        if hx is None:
            return None, None
        dirs = 2 if self.bidirectional else 1
        if self.mode == "LSTM":
            if not (isinstance(hx, tuple | list) and len(hx) == 2):
                raise TypeError(f"{name}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            states = list(hx)
        else:
            states = [hx]
        expected = (self.num_layers * dirs, batch, self.hidden_size) if batched else (self.num_layers * dirs,
                                                                                      self.hidden_size)
        out = []
        for label, s in zip(("h_0", "c_0"), states):
            if not isinstance(s, Tensor):
                raise TypeError(f"{name}: {label} must be a Tensor, got {type(s).__name__}")
            if s.shape != expected:
                raise RuntimeError(f"{name}: expected {label} of shape {expected}, got {s.shape}"
                                   + ("" if batched else " (unbatched input takes an unbatched state)"))
            if s.dtype != self.weight_ih_l0.dtype:
                raise RuntimeError(f"{name}: {label} dtype {s.dtype} does not match the weights' "
                                   f"{self.weight_ih_l0.dtype}")
            out.append(s if batched else s.unsqueeze(1))
        return out[0], (out[1] if len(out) > 1 else None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN (Elman 1990, "Finding structure in time"): h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
    (or relu). The plain recurrence: its gradient through time is a product of T Jacobians, which vanishes or
    explodes over long spans - what the LSTM's gates were made to fix.

    ``nonlinearity`` comes fourth, as in PyTorch. ``forward(input, hx=None)`` -> (output, h_n)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 dtype: Any = None, generator: Seed = None) -> None:
        self.nonlinearity = nonlinearity
        super().__init__(_nonlinearity_mode("RNN", nonlinearity), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, dtype=dtype, generator=generator)


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory"; the forget gate: Gers et al.
    2000). A cell state c is carried by addition, c_t = f c_{t-1} + i g, so its gradient flows back through time
    scaled only by the forget gate instead of through a squashing Jacobian each step; h_t = o tanh(c_t).

        i, f, o = sigmoid(W_i. x_t + b_i. + W_h. h_{t-1} + b_h.),  g = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)

    ``forward(input, hx=None)`` with hx = (h_0, c_0) -> (output, (h_n, c_n))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *, dtype: Any = None,
                 generator: Seed = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype, generator=generator)


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
    Statistical Machine Translation"). Two gates instead of the LSTM's three and no separate cell: the update gate z
    interpolates between the old state and a candidate, whose view of the old state the reset gate r controls.

        r, z = sigmoid(W_i. x + b_i. + W_h. h + b_h.),  n = tanh(W_in x + b_in + r (W_hn h + b_hn))
        h' = (1 - z) n + z h

    ``forward(input, hx=None)`` -> (output, h_n)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *, dtype: Any = None,
                 generator: Seed = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype, generator=generator)


# ---- cells: one time step, for loops the caller writes (decoders, sampling) -----------------------------------
class RNNCellBase(Module):
    """One step of a recurrent layer: ``weight_ih`` (G H, I), ``weight_hh`` (G H, H), ``bias_ih``, ``bias_hh`` (G H),
    init U(-1/sqrt(H), 1/sqrt(H)). input (B, I) or (I,) unbatched; state (B, H) or (H,). The step is one fused op
    (the recurrent op over a sequence of length 1)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True, *, dtype: Any = None) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size)
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bias
        dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
        gh = _GATES[mode] * hidden_size
        self.weight_ih = Parameter(np.empty((gh, input_size), dt))
        self.weight_hh = Parameter(np.empty((gh, hidden_size), dt))
        if bias:
            self.bias_ih = Parameter(np.empty(gh, dt))
            self.bias_hh = Parameter(np.empty(gh, dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self, generator: Seed = None) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator)

    def _step(self, input: Tensor, states: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
        """The new state(s) after one step from ``states`` (None: zeros), in the input's batchedness."""
        name = f"{type(self).__name__}({self.input_size}, {self.hidden_size})"
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            shape = input.shape if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"{name}: input must be 2-D (batch, features) or 1-D unbatched (features), got {shape}")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input {input.shape} has {input.shape[-1]} features, expected "
                               f"input_size={self.input_size}")
        if input.dtype != self.weight_ih.dtype:
            raise RuntimeError(f"{name}: input dtype {input.dtype} does not match the weights' {self.weight_ih.dtype}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        given = []
        for s in states:
            if s is not None and s.shape != expected:
                raise RuntimeError(f"{name}: expected a state of shape {expected}, got {s.shape}")
            given.append(None if s is None else (s if batched else s.unsqueeze(0)))
        res = recurrence(self.mode, x.unsqueeze(0), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                         *given)  # (1 + states, B, H): the output step, h', c'
        new = tuple(res[1 + i] for i in range(len(states)))
        return new if batched else tuple(s.squeeze(0) for s in new)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return s


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu). ``forward(input, hx=None)`` -> h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", *,
                 dtype: Any = None) -> None:
        self.nonlinearity = nonlinearity
        super().__init__(_nonlinearity_mode("RNNCell", nonlinearity), input_size, hidden_size, bias, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, (hx,))[0]


class LSTMCell(RNNCellBase):
    """One LSTM step (Hochreiter & Schmidhuber 1997): c' = f c + i g, h' = o tanh(c').
    ``forward(input, hx=None)`` with hx = (h, c) -> (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is not None and not (isinstance(hx, tuple | list) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        h, c = self._step(input, (None, None) if hx is None else tuple(hx))
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step (Cho et al. 2014): h' = (1 - z) n + z h. ``forward(input, hx=None)`` -> h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, (hx,))[0]


__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase"]
