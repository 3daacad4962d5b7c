"""``DistributedDataParallel``: one model replica per rank, gradients averaged over the ranks (PyTorch's
``torch.nn.parallel.DistributedDataParallel``).

    dist.init_process_group("mpi")
    model = DistributedDataParallel(build_model())      # rank 0's weights everywhere
    for x, y in loader:                                 # this rank's shard of each global batch
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        model.sync_gradients()                          # the one extra line: average the gradients
        optimizer.step()

dlbasics' autograd has no gradient hooks (the engine writes the leaves' ``.grad`` at the very end of
``backward``), so the all-reduce that PyTorch starts from inside backward is the explicit
``sync_gradients()`` here, called between ``backward()`` and ``optimizer.step()``. With gradient
accumulation, call it once, before the step.

The gradients travel in a few flat buckets of at most ``bucket_cap_mb`` each, one ``Allreduce`` per
bucket, rather than one per parameter: an all-reduce costs a latency plus a bandwidth term, and a ResNet's
hundred small tensors would pay the latency a hundred times.

**BatchNorm** keeps per-rank statistics, as in PyTorch's DDP (there is no SyncBatchNorm): in training each
rank normalises with the mean and variance of its own B samples, not of the global batch, so a BatchNorm
model does not match one process with batch R*B exactly. Its running statistics are buffers, which
``broadcast_buffers`` (default, as PyTorch) copies from rank 0 before every training forward: every rank
holds rank 0's running statistics, updated once by its own last batch, and rank 0's are the ones a
checkpoint saves. ``sync_buffers()`` makes them identical everywhere, e.g. before a sharded evaluation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from dlbasics import distributed as dist
from dlbasics.autograd import is_grad_enabled
from dlbasics.errors import ConfigError
from dlbasics.nn.module import IncompatibleKeys, Module
from dlbasics.tensor import Tensor


class _Bucket:
    """Same-dtype tensors laid end to end in one flat array, plus ``extra`` slots after them."""

    def __init__(self, tensors: list[Tensor], extra: int = 0) -> None:
        self.tensors = tensors
        self.dtype = tensors[0].data.dtype
        bounds = np.cumsum([0, *(t.data.size for t in tensors)]).tolist()
        self.size = bounds[-1]  # elements that hold the tensors' values; the extra slots follow
        self.flat = np.empty(self.size + extra, dtype=self.dtype)
        # (tensor, its values in the flat array in the tensor's shape): views, so packing is one copy each
        self.views = [(t, self.flat[a:b].reshape(t.data.shape)) for t, a, b in zip(tensors, bounds, bounds[1:])]

    def check(self, t: Tensor, view: np.ndarray) -> None:
        if t.data.dtype != self.dtype or t.data.shape != view.shape:
            raise ConfigError(f"DistributedDataParallel: a parameter or buffer changed from {view.shape} {self.dtype} "
                              f"to {t.data.shape} {t.data.dtype} after the model was wrapped; change the model first, "
                              "then wrap it")

    def pack_data(self) -> np.ndarray:
        for t, view in self.views:
            self.check(t, view)
            np.copyto(view, t.data)
        return self.flat

    def unpack_data(self) -> None:
        for t, view in self.views:
            np.copyto(t.data, view)


def _bucketize(tensors: Iterable[Tensor], cap_bytes: int) -> list[list[Tensor]]:
    """Split ``tensors`` (in order) into groups of one dtype of at most ``cap_bytes`` each; a tensor larger
    than the cap is a group of its own."""
    done: list[list[Tensor]] = []
    open_: dict[np.dtype, list[Tensor]] = {}
    filled: dict[np.dtype, int] = {}
    for t in tensors:
        dt = t.data.dtype
        if open_.get(dt) and filled[dt] + t.data.nbytes > cap_bytes:
            done.append(open_.pop(dt))
        if dt not in open_:
            open_[dt], filled[dt] = [], 0
        open_[dt].append(t)
        filled[dt] += t.data.nbytes
    return done + [group for group in open_.values() if group]


def _description(module: Module, cap_bytes: int) -> str:
    """Everything that must agree across ranks for the buckets to line up."""
    parts = [f"p {n} {p.data.shape} {p.data.dtype} {p.requires_grad}" for n, p in module.named_parameters()]
    parts += [f"b {n} {b.data.shape} {b.data.dtype}" for n, b in module.named_buffers()]
    parts.append(f"cap {cap_bytes}")
    return "\n".join(parts)


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training: calls go to ``module``; ``sync_gradients()`` averages.

    At construction rank 0's parameters and buffers are broadcast to every rank (building the model from
    the same seed everywhere is still the way to get the same architecture and the same random state),
    after checking that every rank built a model with the same parameter names, shapes and dtypes.

    ``sync_gradients()`` after ``loss.backward()`` sets every parameter's gradient to the mean over the R
    ranks, ``grad = (1/R) * sum_r grad_r``: with each rank's loss the mean over its B samples, that is the
    gradient of the mean loss over the global batch of R*B samples, so R ranks take the same steps as one
    process with batch R*B (up to float rounding). A parameter no rank has a gradient for keeps ``None``.

    Args:
        module: the model, built the same way on every rank.
        bucket_cap_mb: the largest bucket in MiB (a larger parameter gets a bucket of its own).
        broadcast_buffers: copy rank 0's buffers (BatchNorm's running statistics) to every rank before each
            forward in training mode with gradients on; evaluation under ``no_grad`` runs no collective, so
            ranks may evaluate different numbers of batches.

    ``state_dict()`` and ``load_state_dict()`` are the inner module's, without a ``module.`` prefix, so a
    checkpoint loads into the bare model. Requires ``dlbasics.distributed.init_process_group()``.
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25, broadcast_buffers: bool = True) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a dl.nn.Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, int | float) or not bucket_cap_mb > 0:
            raise ConfigError(f"DistributedDataParallel: bucket_cap_mb must be a positive number, "
                              f"got {bucket_cap_mb!r}")
        self.world_size = dist.get_world_size()  # raises if there is no process group
        self.module = module
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.broadcast_buffers = bool(broadcast_buffers)
        cap = max(1, int(self.bucket_cap_mb * 2**20))
        if self.world_size > 1:
            self._check_same_model(cap)
        # each gradient bucket ends with one slot per parameter: 1 if this rank has its gradient; summed in the
        # same all-reduce, it says which parameters some rank used, without a collective of its own
        trainable = [p for p in module.parameters() if p.requires_grad]
        self._grad_buckets = [_Bucket(group, extra=len(group)) for group in _bucketize(trainable, cap)]
        self._buffer_buckets = [_Bucket(group) for group in _bucketize(module.buffers(), cap)]
        for bucket in [_Bucket(group) for group in _bucketize(module.parameters(), cap)] + self._buffer_buckets:
            dist.broadcast(bucket.pack_data(), src=0)
            bucket.unpack_data()

    def _check_same_model(self, cap: int) -> None:
        if not dist.same_on_every_rank(_description(self.module, cap)):
            raise ConfigError("DistributedDataParallel: the ranks built different models (parameter or buffer "
                              "names, shapes or dtypes, or bucket_cap_mb differ); build the same model on every rank")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self.training and is_grad_enabled():
            self.sync_buffers()
        return self.module(*args, **kwargs)

    def sync_gradients(self) -> None:
        """Average the parameters' gradients over the ranks, in place: call after ``backward()``, before
        ``optimizer.step()``, on every rank. One ``Allreduce`` per bucket; nothing at all in a world of one."""
        if self.world_size == 1:
            return
        for bucket in self._grad_buckets:
            used = bucket.flat[bucket.size:]
            for i, (p, view) in enumerate(bucket.views):
                if p.grad is None:
                    view.fill(0)
                    used[i] = 0
                else:
                    bucket.check(p, view)
                    np.copyto(view, p.grad)
                    used[i] = 1
            dist.all_reduce(bucket.flat)
            bucket.flat[:bucket.size] /= self.world_size
            for i, (p, view) in enumerate(bucket.views):
                if used[i] == 0:  # no rank used it: leave it None, so the optimizer skips it everywhere
                    continue
                if p.grad is None:  # other ranks used it, this one did not: its gradient here is 0
                    p.grad = np.empty_like(p.data)
                np.copyto(p.grad, view)

    def sync_buffers(self) -> None:
        """Copy rank 0's buffers (BatchNorm's running statistics) to every rank: one ``Bcast`` per bucket."""
        if self.world_size == 1:
            return
        for bucket in self._buffer_buckets:
            dist.broadcast(bucket.pack_data(), src=0)
            bucket.unpack_data()

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """The inner module's state dict (no ``module.`` prefix): what saving ``ddp.module`` gives."""
        return self.module.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        return self.module.load_state_dict(state_dict, strict)

    def extra_repr(self) -> str:
        sizes = ", ".join(str(b.size) for b in self._grad_buckets)
        return f"world_size={self.world_size}, gradient buckets of {sizes} elements"


__all__ = ["DistributedDataParallel"]
