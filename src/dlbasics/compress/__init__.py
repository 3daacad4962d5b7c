"""Compression of trained models: low-rank (truncated SVD) factorization of fully connected layers.

    from dlbasics.compress import low_rank
    small, report = low_rank(model, energy=0.99)   # every nn.Linear -> its best rank-k approximation
    print(report.table())
"""

from dlbasics.compress.low_rank import (
    LayerReport,
    LowRankLinear,
    LowRankReport,
    compress_run,
    linear_layers,
    load_compressed,
    low_rank,
    recalibrate_batch_norm,
)

__all__ = ["LayerReport", "LowRankLinear", "LowRankReport", "compress_run", "linear_layers", "load_compressed",
           "low_rank", "recalibrate_batch_norm"]
