"""Graph rewrites on the float IR, one module each, run in this order by `run_passes`."""

from __future__ import annotations

from tinyconv.ir import Graph
from tinyconv.passes import absorb_flatten_transpose, collapse_transpose, fold_batchnorm, fuse_activation, fuse_bias, remove_noops


def run_passes(g: Graph) -> None:
    fold_batchnorm.run(g)  # BN into the producing conv / gemm, else a Mul + Add
    fuse_bias.run(g)  # MatMul + Add(const) → fully connected with bias
    fuse_activation.run(g)  # Relu / Clip into the producer's clamp
    collapse_transpose.run(g)  # rank-5 channel shuffles → 4-D transposes
    remove_noops.run(g)  # identity reshapes and transposes the layout tracking left behind
    absorb_flatten_transpose.run(g)  # Flatten(NCHW) + Gemm: permute the weights, drop the transpose
    remove_noops.run(g)
    g.prune()
