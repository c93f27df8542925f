"""Experiments: scenario files -> runner (local or Dask) -> benchmark JSON -> report, compare.

Load on first use; needs the ``bench`` extra (pandas, matplotlib, psutil, tqdm,
pytest-benchmark; dask[distributed] for sweeps on a cluster).
"""
