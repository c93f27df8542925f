"""Experiments: scenario files -> runner (local or Dask) -> benchmark JSON -> report, compare.

Load on first use; needs the ``experiments`` extra (pandas, matplotlib, psutil, tqdm;
dask[distributed] for sweeps on a cluster).
"""
