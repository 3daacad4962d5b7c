"""Recurrent ops: one layer in one direction over the whole sequence as one ``Function`` (forward: the time loop;
backward: backpropagation through time, the same loop in reverse), and the row gathers that pack and unpack
variable-length batches.

Why one op per sequence and not one per step: an LSTM built from primitives makes about 35 autograd nodes a time
step, each a few microseconds of Python for a few thousand values. Here a step is two calls - one GEMM and one
fused elementwise pass (kernels/recurrent.py) - forward and backward, and everything that does not depend on the
recurrence is batched over all time steps:

    forward:   P = X W_ih^T                 one GEMM for all T steps, before the loop   (T B, G H)
               per step t: S = W_hh h_{t-1}^T (GEMM), then the gate math on P_t + S^T + b  (B, G H) -> h_t
    backward:  per step (in reverse): dP_t from the gate math, dh_{t-1} = dP_t W_hh   (GEMM)
               dX = dP W_ih,  dW_ih = dP^T X,  dW_hh = dP^T H_prev                 three GEMMs after the loop

G is the number of gate blocks: 1 (RNN), 4 (LSTM: i f g o), 3 (GRU: r z n), in PyTorch's order. The GEMMs are
most of the time: for the char-LSTM (2 x 256, batch 12, 64 steps) 8 large ones of about 2.2 ms and 256 per-step
ones of about 70 us make 36 of its 44 ms; the kernels about 3 ms, the Python of the loops about 1 ms.

Variable lengths follow PyTorch's packed sequences: the batch is sorted by length (longest first) and
``batch_sizes[t]`` rows are active at step t, always the first ones, so each step runs on a prefix of the rows.
Outputs past a row's length are zero; its final state is the one at its last valid step (for the reverse direction,
which starts at each row's own last step, the state after step 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlbasics import kernels
from dlbasics.autograd.function import Function
from dlbasics.kernels.recurrent import gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward, rnn_forward
from dlbasics.ops._blas import gemm
from dlbasics.tensor import Tensor

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


class Recurrence(Function):
    """One recurrent layer, one direction, all T steps.

    Inputs: x (T, B, I), w_ih (G H, I), w_hh (G H, H), then b_ih, b_hh (G H) if ``has_bias``, then h0 (B, H) and,
    for the LSTM, c0 (B, H) if ``has_state`` (else zeros). ``batch_sizes`` (T,): rows active per step, non-increasing
    (None: all B). Output: one array (T + 1, B, H) - the outputs h_t (T rows), then h_n - and for the LSTM one more
    row, c_n. (A ``Function`` has one output, so the final states ride along; the layer slices them off.)
    """

    gates = 1
    cell = 0  # 1: a cell state beside h (LSTM)
    hidden_grad_apart = False  # the hidden projection's gradient differs from the input projection's (GRU)
    keeps_pre = True  # the backward reads the gate activations (the RNN's only need h)

    def forward(self, x, *params, has_bias, has_state, reverse, batch_sizes=None):
        w_ih, w_hh = params[0], params[1]
        b_ih, b_hh = (params[2], params[3]) if has_bias else (None, None)
        state = params[4 if has_bias else 2:]
        h0 = np.ascontiguousarray(state[0]) if has_state else None
        c0 = np.ascontiguousarray(state[1]) if has_state and self.cell else None
        T, B, _ = x.shape
        H, G, dt = w_hh.shape[1], self.gates, x.dtype
        self.T, self.B, self.H, self.reverse, self.has_bias = T, B, H, reverse, has_bias
        self.bs = [B] * T if batch_sizes is None else [int(n) for n in batch_sizes]
        # each row's length (lengths[b] = steps with more than b rows active); None when every row runs all T
        self.lengths = None if batch_sizes is None else (np.asarray(self.bs)[:, None] > np.arange(B)).sum(0)
        self.order = range(T - 1, -1, -1) if reverse else range(T)
        self.kernel = kernels.use(T * B * G * H)  # the kernels beat NumPy at every step size (kernels/recurrent.py)

        x2 = np.ascontiguousarray(x).reshape(T * B, -1)
        pre = np.empty((T, B, G * H), dt)  # preactivations, then (in place) the gate activations
        gemm(x2, w_ih.T, pre.reshape(T * B, G * H), beta=0.0)  # all steps' input projections: one GEMM
        # the biases are added per step by the kernel, in the pass that adds h W_hh^T (0.2 ms less than a pass here)
        bias = self._input_bias(b_ih, b_hh, H)
        self.bias = np.zeros(G * H, dt) if bias is None else bias

        out = np.empty((T + 1 + self.cell, B, H), dt)
        self.hw_buf = np.empty(G * H * B, dt)  # one step's W_hh h_prev^T, reused from step to step
        self._run(pre, out, w_hh, b_hh, h0, c0)
        self.hw_buf = None
        rows = np.arange(B)
        last = 0 if reverse else (T - 1 if self.lengths is None else (self.lengths - 1, rows))
        out[T] = out[last]  # h_n: the state at each row's last step
        if self.cell:
            out[T + 1] = self.c[last]

        needs = self.needs_input_grad
        self.x2 = x2 if needs[1] else None
        self.w_ih = w_ih if needs[0] else None
        self.w_hh, self.out, self.h0, self.c0 = w_hh, out, h0, c0
        self.pre = pre if self.keeps_pre else None
        self.x_shape = x.shape
        return out

    # ---- the per-step parts each cell defines -------------------------------------------------------------
    def _input_bias(self, b_ih, b_hh, H):
        """The bias added to the preactivations: b_ih + b_hh (the GRU keeps b_hn apart)."""
        return None if b_ih is None else b_ih + b_hh

    def _run(self, pre, out, w_hh, b_hh, h0, c0):
        raise NotImplementedError

    def _step_backward(self, t, n, g, dh, dc, need_prev):
        """Step t's gradients for its n active rows: dgi[t] (and dgh[t]) from dh + g[t] (and dc), then dh (and dc)
        become the gradients into the previous state (dh only if ``need_prev``)."""
        raise NotImplementedError

    def _prev(self, buf, init, t, n):
        """The state before step t of its n active rows: the previous step's rows of ``buf`` and, for rows that start
        at t (the reverse direction of a shorter row), the initial state ``init`` (None: zeros)."""
        tp = t + 1 if self.reverse else t - 1
        m = min(self.bs[tp], n) if 0 <= tp < self.T else 0
        if m == n:
            return buf[tp][:n]
        if m == 0:
            return None if init is None else init[:n]
        p = np.zeros((n, self.H), buf.dtype) if init is None else init[:n].copy()
        p[:m] = buf[tp][:m]
        return p

    def _hidden(self, w_hh, h_prev, n):
        """W_hh h_prev^T (G H, n), zeros where there is no previous state. Computed as (G H, H) @ (H, n) rather than
        h_prev W_hh^T (n, G H): OpenBLAS splits this orientation better over its threads - 65 vs 109 us for
        (12, 256) x (256, 1024) - and the kernels read it transposed."""
        if h_prev is None:
            return np.zeros((w_hh.shape[0], n), w_hh.dtype)
        return np.matmul(w_hh, h_prev.T, out=self.hw_buf[:w_hh.shape[0] * n].reshape(-1, n))

    def _prev_or_zeros(self, buf, init, t, n):
        p = self._prev(buf, init, t, n)
        return np.zeros((n, self.H), buf.dtype) if p is None else p

    # ---- backpropagation through time -------------------------------------------------------------------------
    def backward(self, g):
        g = np.ascontiguousarray(g)
        T, B, H, G = self.T, self.B, self.H, self.gates
        needs = self.needs_input_grad
        k = 5 if self.has_bias else 3  # position of h0 among the inputs
        need_h0 = len(needs) > k and (needs[k] or (self.cell and needs[k + 1]))
        dt = g.dtype
        self.dgi = np.empty((T, B, G * H), dt)  # gradients of the input projections
        # ... and of the hidden projections (the GRU's differ in the n block)
        self.dgh = np.empty_like(self.dgi) if self.hidden_grad_apart else self.dgi
        dh = g[T].copy()  # d h_n waits in each row until the row's last step comes
        dc = g[T + 1].copy() if self.cell else None
        steps = list(reversed(self.order))
        for s, t in enumerate(steps):
            n = self.bs[t]
            last = s == len(steps) - 1
            self._step_backward(t, n, g, dh, dc, not last or need_h0)
            if n < B:
                self.dgi[t][n:] = 0
                if self.dgh is not self.dgi:
                    self.dgh[t][n:] = 0
        return self._weight_grads(dh, dc, need_h0)

    def _weight_grads(self, dh, dc, need_h0):
        T, B, H = self.T, self.B, self.H
        needs = self.needs_input_grad
        dt = dh.dtype
        dgi2 = self.dgi.reshape(T * B, -1)
        dgh2 = dgi2 if self.dgh is self.dgi else self.dgh.reshape(T * B, -1)
        gx = gw_ih = gw_hh = None
        if needs[0]:
            gx = np.empty((T * B, self.x_shape[2]), dt)
            gemm(dgi2, self.w_ih, gx, beta=0.0)
            gx = gx.reshape(self.x_shape)
        if needs[1]:
            gw_ih = np.empty((dgi2.shape[1], self.x2.shape[1]), dt)
            gemm(dgi2.T, self.x2, gw_ih, beta=0.0)
        if needs[2]:  # dW_hh = sum_t dP_t^T h_{t-1}: the outputs shifted by one step, then the initial state
            gw_hh = (np.empty if T > 1 else np.zeros)((dgh2.shape[1], H), dt)
            if T > 1:
                cur, prev = (slice(0, T - 1), slice(1, T)) if self.reverse else (slice(1, T), slice(0, T - 1))
                gemm(self.dgh[cur].reshape(-1, dgh2.shape[1]).T, self.out[prev].reshape(-1, H), gw_hh, beta=0.0)
            if self.h0 is not None:
                if not self.reverse:
                    first = self.dgh[0]
                elif self.lengths is None:
                    first = self.dgh[T - 1]
                else:  # each row's first step in the reverse direction is its own last one
                    first = self.dgh[self.lengths - 1, np.arange(B)]
                gemm(first.T, self.h0, gw_hh, beta=1.0)
        grads = [gx, gw_ih, gw_hh]
        if self.has_bias:  # column sums as a GEMV (both cores); b_ih and b_hh share theirs unless the GRU's differ
            ones = np.ones(T * B, dt)
            db_ih = ones @ dgi2 if needs[3] or (needs[4] and dgh2 is dgi2) else None
            db_hh = (db_ih.copy() if dgh2 is dgi2 else ones @ dgh2) if needs[4] else None
            grads += [db_ih if needs[3] else None, db_hh]
        if len(needs) > len(grads):
            grads.append(dh if need_h0 else None)
            if self.cell:
                grads.append(dc)
        return tuple(grads)


class RNNSequence(Recurrence):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu);
    dP_t = dh_t (1 - h_t^2)  (relu: dh_t [h_t > 0])."""

    relu = False
    keeps_pre = False

    def _run(self, pre, out, w_hh, b_hh, h0, c0):
        step = rnn_forward.compiled if self.kernel else rnn_forward.numpy
        for t in self.order:
            n = self.bs[t]
            step(pre[t][:n], self._hidden(w_hh, self._prev(out, h0, t, n), n), self.bias, self.relu, out[t][:n])
            if n < self.B:
                out[t][n:] = 0

    def _step_backward(self, t, n, g, dh, dc, need_prev):
        step = rnn_backward.compiled if self.kernel else rnn_backward.numpy
        dp = self.dgi[t][:n]
        step(self.out[t][:n], self.relu, dh[:n], g[t][:n], dp)
        if need_prev:
            np.matmul(dp, self.w_hh, out=dh[:n])


class RNNReLUSequence(RNNSequence):
    """The Elman RNN with h_t = relu(...)."""

    relu = True


class LSTMSequence(Recurrence):
    """LSTM (Hochreiter & Schmidhuber 1997): i, f, o = sigmoid(.), g = tanh(.) of P_t = x_t W_ih^T + h_{t-1} W_hh^T + b;
    c_t = f c_{t-1} + i g,  h_t = o tanh(c_t). The cell state c is the 'constant error carousel': its gradient passes
    from step to step multiplied only by the forget gate, dc_{t-1} = dc_t f."""

    gates = 4
    cell = 1

    def _run(self, pre, out, w_hh, b_hh, h0, c0):
        T, B, H = self.T, self.B, self.H
        step = lstm_forward.compiled if self.kernel else lstm_forward.numpy
        self.c = c = np.empty((T, B, H), pre.dtype)
        self.tc = tc = np.empty((T, B, H), pre.dtype)  # tanh(c_t), kept for the backward
        for t in self.order:
            n = self.bs[t]
            step(pre[t][:n], self._hidden(w_hh, self._prev(out, h0, t, n), n), self.bias,
                 self._prev_or_zeros(c, c0, t, n), c[t][:n], tc[t][:n], out[t][:n])
            if n < B:
                out[t][n:] = 0

    def _step_backward(self, t, n, g, dh, dc, need_prev):
        step = lstm_backward.compiled if self.kernel else lstm_backward.numpy
        dp = self.dgi[t][:n]
        step(self.pre[t][:n], self._prev_or_zeros(self.c, self.c0, t, n), self.tc[t][:n], dh[:n], g[t][:n], dc[:n],
             dp)
        if need_prev:
            np.matmul(dp, self.w_hh, out=dh[:n])


class GRUSequence(Recurrence):
    """GRU (Cho et al. 2014): r, z = sigmoid(.), n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h.
    The reset gate multiplies the hidden part of n only, so b_hn stays out of the input projection and W_hn h + b_hn
    is kept per step for the backward."""

    gates = 3
    hidden_grad_apart = True

    def _input_bias(self, b_ih, b_hh, H):
        if b_ih is None:
            return None
        bias = b_ih.copy()
        bias[:2 * H] += b_hh[:2 * H]
        return bias

    def _run(self, pre, out, w_hh, b_hh, h0, c0):
        T, B, H = self.T, self.B, self.H
        step = gru_forward.compiled if self.kernel else gru_forward.numpy
        self.ghn = ghn = np.empty((T, B, H), pre.dtype)  # W_hn h_{t-1} + b_hn, kept for the backward
        b_hn = b_hh[2 * H:] if b_hh is not None else np.zeros(H, pre.dtype)
        for t in self.order:
            n = self.bs[t]
            hp = self._prev(out, h0, t, n)
            hw = self._hidden(w_hh, hp, n)
            step(pre[t][:n], hw, self.bias, b_hn, np.zeros((n, H), pre.dtype) if hp is None else hp, ghn[t][:n],
                 out[t][:n])
            if n < B:
                out[t][n:] = 0

    def _step_backward(self, t, n, g, dh, dc, need_prev):
        step = gru_backward.compiled if self.kernel else gru_backward.numpy
        dq = self.dgh[t][:n]
        step(self.pre[t][:n], self.ghn[t][:n], self._prev_or_zeros(self.out, self.h0, t, n), dh[:n], g[t][:n],
             self.dgi[t][:n], dq)
        if need_prev:
            gemm(dq, self.w_hh, dh[:n], beta=1.0)  # dh_{t-1} = dh_t z + dgh W_hh


_SEQUENCE_OPS = {"RNN_TANH": RNNSequence, "RNN_RELU": RNNReLUSequence, "LSTM": LSTMSequence, "GRU": GRUSequence}


def recurrence(mode: str, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
               b_hh: Tensor | None = None, h0: Tensor | None = None, c0: Tensor | None = None, *, reverse: bool = False,
               batch_sizes: Sequence[int] | np.ndarray | None = None) -> Tensor:
    """Run one recurrent layer over a sequence: ``mode`` in ``MODES``; x (T, B, I) time-major; h0, c0 (B, H) or None
    for zeros (c0 for "LSTM" only). Returns (T + 1, B, H) - outputs, then h_n - with c_n as one more row for "LSTM".

    ``reverse``: run from the last step to the first (the second direction of a bidirectional layer).
    ``batch_sizes``: active rows per step, non-increasing, the batch sorted longest first (a packed sequence's)."""
    if mode not in _SEQUENCE_OPS:
        raise ValueError(f"recurrence: unknown mode {mode!r}; choose from {MODES}")
    tensors = [x, w_ih, w_hh]
    if b_ih is not None:
        tensors += [b_ih, b_hh]
    if h0 is not None:
        tensors.append(h0)
        if mode == "LSTM":
            tensors.append(c0)
    op = _SEQUENCE_OPS[mode]
    return op.apply(*tensors, has_bias=b_ih is not None, has_state=h0 is not None, reverse=reverse,
                    batch_sizes=batch_sizes)


# ---- rows in and out of packed sequences ------------------------------------------------------------------------
class GatherRows(Function):
    """out = x[index] along dim 0 with distinct indices (so the backward is an assignment, not a scatter-add):
    dx = zeros, dx[index] = g."""

    def forward(self, x, index):
        self.index, self.shape = index, x.shape
        return x[index]

    def backward(self, g):
        gx = np.zeros(self.shape, g.dtype)
        gx[self.index] = g
        return gx


class ScatterRows(Function):
    """out (rows, ...) = ``fill``, then out[index] = x along dim 0 (distinct indices); dx = g[index]."""

    def forward(self, x, index, rows, fill):
        self.index = index
        out = np.full((rows, *x.shape[1:]), fill, x.dtype)
        out[index] = x
        return out

    def backward(self, g):
        return g[self.index]


def gather_rows(x: Tensor, index: np.ndarray) -> Tensor:
    """x[index] along dim 0, for distinct ``index`` values (a packed sequence's rows out of a padded batch)."""
    return GatherRows.apply(x, index=np.asarray(index, np.intp))


def scatter_rows(x: Tensor, index: np.ndarray, rows: int, fill: float = 0.0) -> Tensor:
    """A (rows, ...) tensor filled with ``fill`` holding x's rows at ``index`` (distinct): a padded batch out of a
    packed sequence's rows."""
    return ScatterRows.apply(x, index=np.asarray(index, np.intp), rows=rows, fill=fill)


__all__ = ["MODES", "GRUSequence", "GatherRows", "LSTMSequence", "RNNReLUSequence", "RNNSequence", "Recurrence",
           "ScatterRows", "gather_rows", "recurrence", "scatter_rows"]
