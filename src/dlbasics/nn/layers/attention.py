"""Multi-head attention (Vaswani et al., 2017): project queries, keys and values into ``num_heads`` subspaces,
attend in each, softmax(Q K^T / sqrt(d)) V, and project the heads' outputs, side by side, back to the model's
width. Each head can look for something else; together they cost what one full-width attention does."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlbasics import dtypes
from dlbasics.nn import init
from dlbasics.nn.layers.linear import Linear
from dlbasics.nn.module import Module
from dlbasics.nn.parameter import Parameter
from dlbasics.ops import linear, softmax
from dlbasics.ops.attention import attend
from dlbasics.ops.nn_ops import dropout as _dropout_op
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor

Mask = Tensor | np.ndarray | None


class MultiheadAttention(Module):
    """out = concat(head_1, ..., head_h) W_o^T + b_o,  head_i = softmax(Q_i K_i^T / sqrt(d) + mask) V_i,
    with [Q | K | V] = [query W_q^T | key W_k^T | value W_v^T] + in_proj_bias, d = embed_dim / num_heads.

    query (L, N, E), key and value (S, N, E); (N, L, E) and (N, S, E) with ``batch_first``; unbatched (L, E)
    and (S, E). Returns (output shaped as query, weights (N, L, S) averaged over heads, (N, H, L, S) with
    ``average_attn_weights=False``, or None with ``need_weights=False``).

    Parameters as PyTorch's: ``in_proj_weight`` (3E, E) = [W_q; W_k; W_v] (xavier_uniform_), ``in_proj_bias``
    (3E) (zeros), ``out_proj`` a Linear(E, E) (its bias zeros). ``dropout`` drops attention weights in training,
    drawn from ``generator`` (a seed or Generator; by default the one ``dl.manual_seed`` sets). Keys and values
    of other widths (kdim, vdim) and PyTorch's add_bias_kv / add_zero_attn are not supported.

    Masks, as PyTorch: ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N * num_heads, L, S), bool with
    True = may NOT attend (the opposite of ``F.scaled_dot_product_attention``), or float (added to the scores).
    ``is_causal`` is a hint that ``attn_mask`` is the causal mask, which it then need not read. With
    ``need_weights`` the weights are computed step by step, as PyTorch does (a query with every key masked gets
    NaN there, and zeros through the fused op otherwise, both as PyTorch).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype: Any = None,
                 generator: Seed = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise AssertionError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads "
                                 f"{num_heads}")
        for name, dim in (("kdim", kdim), ("vdim", vdim)):
            if dim is not None and dim != embed_dim:
                raise ValueError(f"MultiheadAttention: {name}={dim} differs from embed_dim={embed_dim}; keys and "
                                 "values of another width are not supported (project them to embed_dim first)")
        if add_bias_kv or add_zero_attn:
            raise ValueError("MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = self.vdim = embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.generator = None if generator is None else get_generator(generator)
        dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dt))
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * embed_dim, dt))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dt)
        self.reset_parameters()

    def reset_parameters(self, generator: Seed = None) -> None:
        """PyTorch's: in_proj_weight xavier_uniform_, both biases zero (out_proj.weight keeps Linear's init)."""
        init.xavier_uniform_(self.in_proj_weight, generator=generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Mask = None,
                need_weights: bool = True, attn_mask: Mask = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        batched = self._check(query, key, value, key_padding_mask, attn_mask)
        if not batched:  # one sequence: a batch of one in the (L, N, E) layout
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _framed(key_padding_mask, (1, -1))
        bf = self.batch_first and batched
        n = query.shape[0 if bf else 1]
        length, source = query.shape[1 if bf else 0], key.shape[1 if bf else 0]
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: is_causal=True needs attn_mask too (the hint says what it is); "
                               "make it with nn.Transformer.generate_square_subsequent_mask(L)")
        causal = is_causal and key_padding_mask is None and not need_weights
        blocked, bias = self._merged_masks(None if causal else attn_mask, key_padding_mask, n, length, source,
                                           query.dtype)
        p = self.dropout if self.training else 0.0
        heads = self._heads(query, key, value, bf)  # [QKV] (3, N, H, L, d), or [Q, K, V] each (N, H, ., d)
        weights = None
        if need_weights:
            q, k, v = (heads[0][0], heads[0][1], heads[0][2]) if len(heads) == 1 else heads
            out, weights = self._attention_weights(q, k, v, blocked, bias, p)
        else:
            out = attend(heads, blocked, bias, causal, None, p, self.generator, packed=len(heads) == 1)
        # (N, H, L, d) -> (N, L, E) or (L, N, E)
        out = out.permute(0, 2, 1, 3) if bf else out.permute(2, 0, 1, 3)
        out = self.out_proj(out.reshape(*out.shape[:2], self.embed_dim))
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(1)
            weights = weights.squeeze(0) if weights is not None else None
        return out, weights

    def _heads(self, query: Tensor, key: Tensor, value: Tensor, bf: bool) -> list[Tensor]:
        """The projections split into heads: [QKV] (3, N, H, L, d) from one GEMM for self-attention (query,
        key and value the same tensor), else [Q, K, V], each (N, H, length, d)."""
        e, h, d = self.embed_dim, self.num_heads, self.head_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:
            qkv = linear(query, w, b)  # (L, N, 3E) or (N, L, 3E)
            qkv = qkv.reshape(*qkv.shape[:2], 3, h, d)  # (., ., 3, H, d)
            return [qkv.permute(2, 0, 3, 1, 4) if bf else qkv.permute(2, 1, 3, 0, 4)]  # (3, N, H, L, d)
        out = []
        for i, x in enumerate((query, key, value)):
            y = linear(x, w[i * e:(i + 1) * e], b[i * e:(i + 1) * e] if b is not None else None)
            y = y.reshape(*y.shape[:2], h, d)  # (., ., H, d)
            out.append(y.permute(0, 2, 1, 3) if bf else y.permute(1, 2, 0, 3))  # (N, H, length, d)
        return out

    def _attention_weights(self, q: Tensor, k: Tensor, v: Tensor, blocked: np.ndarray | None,
                           bias: Tensor | None, p: float) -> tuple[Tensor, Tensor]:
        """PyTorch's need_weights path, step by step: W = dropout(softmax(Q K^T / sqrt(d) + mask)), out = W V;
        returns (out (N, H, L, d), W (N, H, L, S))."""
        scores = (q * math.sqrt(1.0 / self.head_dim)) @ k.transpose(-2, -1)
        if blocked is not None:
            bias = _float_mask(blocked, q.dtype)
        if bias is not None:
            scores = scores + bias
        with np.errstate(invalid="ignore"):  # a query with every key masked gives NaN weights, as PyTorch's
            w = softmax(scores, -1)
        if p > 0:
            u = get_generator(self.generator).random(w.shape, dtype=np.float32 if w.dtype == np.float32
                                                     else np.float64)
            w = _dropout_op(w, u, p) if p < 1 else w * 0.0
        return w @ v, w

    def _merged_masks(self, attn_mask: Mask, key_padding_mask: Mask, n: int, length: int, source: int,
                      dtype: np.dtype) -> tuple[np.ndarray | None, Tensor | None]:
        """attn_mask and key_padding_mask in the frame of the scores (N, H, L, S), as one mask: ``blocked``
        (True = may not attend) where both are bool, else the float ``bias`` they add up to (bool ones as
        -inf / 0)."""
        masks, names = [], []
        if attn_mask is not None:
            m = _array(attn_mask)
            if m.ndim == 2 and m.shape != (length, source):
                raise RuntimeError(f"{self._name()}: the shape of the 2D attn_mask is {m.shape}, but should be "
                                   f"{(length, source)}")
            if m.ndim == 3 and m.shape != (n * self.num_heads, length, source):
                raise RuntimeError(f"{self._name()}: the shape of the 3D attn_mask is {m.shape}, but should be "
                                   f"{(n * self.num_heads, length, source)}")
            masks.append(_framed(attn_mask, (1, 1, length, source) if m.ndim == 2
                                 else (n, self.num_heads, length, source)))
            names.append("attn_mask")
        if key_padding_mask is not None:
            m = _array(key_padding_mask)
            if m.shape != (n, source):
                raise AssertionError(f"{self._name()}: expected key_padding_mask of shape {(n, source)}, got "
                                     f"{m.shape}")
            masks.append(_framed(key_padding_mask, (n, 1, 1, source)))
            names.append("key_padding_mask")
        for name, m in zip(names, masks):
            kind = _array(m).dtype
            if kind != np.bool_ and kind.kind != "f":
                raise AssertionError(f"{self._name()}: only bool and floating types of {name} are supported, "
                                     f"got {kind}")
        if not masks:
            return None, None
        if all(_array(m).dtype == np.bool_ for m in masks):
            blocked = _array(masks[0])
            return (blocked | _array(masks[1]) if len(masks) == 2 else blocked), None
        floats = [_float_mask(m, dtype) for m in masks]
        bias = floats[0] if len(floats) == 1 else floats[0] + floats[1]
        if bias.dtype != dtype:
            raise RuntimeError(f"{self._name()}: float masks must have the query's dtype {dtype}, got {bias.dtype}")
        return None, bias

    def _check(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Mask, attn_mask: Mask) -> bool:
        """PyTorch's shape checks (AssertionError as there); whether the input is batched."""
        name = self._name()
        if query.ndim not in (2, 3):
            raise AssertionError(f"{name}: query should be unbatched 2D or batched 3D, got {query.shape}")
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise AssertionError(f"{name}: for a {query.ndim}-D query, key and value must be {query.ndim}-D too, "
                                 f"got {key.shape} and {value.shape}")
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.embed_dim:
            raise AssertionError(f"{name}: expected embedding dimension {self.embed_dim}, got query {query.shape} "
                                 f"and key {key.shape}")
        if key.shape != value.shape:
            raise AssertionError(f"{name}: key shape {key.shape} does not match value shape {value.shape}")
        batch_dim = 0 if self.batch_first else 1
        if query.ndim == 3 and query.shape[batch_dim] != key.shape[batch_dim]:
            raise AssertionError(f"{name}: query {query.shape} and key {key.shape} differ in batch size "
                                 f"(dim {batch_dim}, batch_first={self.batch_first})")
        if key_padding_mask is not None and _array(key_padding_mask).ndim != query.ndim - 1:
            raise AssertionError(f"{name}: for a {query.ndim}-D query, key_padding_mask must be None or "
                                 f"{query.ndim - 1}-D, got {_array(key_padding_mask).shape}")
        if attn_mask is not None:
            m = _array(attn_mask)
            if m.ndim not in (2, 3):
                raise AssertionError(f"{name}: attn_mask must be None, 2-D or 3-D, got {m.shape}")
            if query.ndim == 2 and m.ndim == 3 and m.shape != (self.num_heads, query.shape[0], key.shape[0]):
                raise AssertionError(f"{name}: expected attn_mask of shape "
                                     f"{(self.num_heads, query.shape[0], key.shape[0])}, got {m.shape}")
        return query.ndim == 3

    def _name(self) -> str:
        return f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads})"

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")


def _array(mask: Any) -> np.ndarray:
    return mask.data if isinstance(mask, Tensor) else np.asarray(mask)


def _framed(mask: Any, shape: tuple[int, ...]) -> Any:
    """A mask reshaped to ``shape``: an array stays an array, a tensor (which may want a gradient) a tensor."""
    return mask.reshape(shape) if isinstance(mask, Tensor) else np.asarray(mask).reshape(shape)


def _float_mask(mask: Any, dtype: np.dtype) -> Tensor:
    """A mask as an additive tensor: bool True (may not attend) -> -inf, False -> 0; a float one as it is."""
    if isinstance(mask, Tensor) and mask.dtype != np.bool_:
        return mask
    m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if m.dtype == np.bool_:
        m = np.where(m, -np.inf, 0).astype(dtype)
    return Tensor._make(m, False, None)
