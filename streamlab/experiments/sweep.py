"""``sl.lab.sweep(file_or_matrix)``: run scenarios from a notebook, get a DataFrame.

``file_or_matrix`` is a TOML path, or a dict shaped like a scenario file
(``{"defaults": {...}, "matrix": {...}, "scenario": [...]}``), or a flat dict of
settings whose list values form the matrix (``{"source": ..., "codec": ["vp8", "h264"]}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamlab.experiments import results, scenario
from streamlab.experiments.runner import RunResult, run_all


def scenarios_from(file_or_matrix: str | Path | Mapping[str, Any]) -> list[scenario.Scenario]:
    """The scenarios a sweep means (see the module docstring)."""
    if isinstance(file_or_matrix, (str, Path)):
        return scenario.load(file_or_matrix)
    data = dict(file_or_matrix)
    if {"defaults", "matrix", "scenario"} & set(data):
        return scenario.parse(data, where="sweep")
    fixed = {k: v for k, v in data.items() if not isinstance(v, list) or k == "analyze"}
    axes = {k: v for k, v in data.items() if k not in fixed}
    fixed.setdefault("name", "sweep")
    return scenario.parse({"scenario": [fixed], "matrix": axes}, where="sweep")


def sweep(
    file_or_matrix: str | Path | Mapping[str, Any], *, repeat: int = 1,
    dask: str | None = None, only: list[str] | None = None, out: str | Path | None = None,
    progress: bool = True,
) -> Any:  # fmt: skip
    """Run the scenarios (here, or on Dask with ``dask="local:2"``) → one row per repeat.

    With ``out`` (a ``.json`` path) the pytest-benchmark JSON and its samples are written
    too, ready for ``streamlab report`` / ``streamlab compare``; ``frame.attrs["runs"]``
    keeps the raw runs either way.
    """
    chosen = scenario.select(scenarios_from(file_or_matrix), only)
    runs: list[RunResult]
    if dask:
        from streamlab.experiments.dask import run_on

        runs = run_on(dask, chosen, repeat, progress=progress)
    else:
        runs = run_all(chosen, repeat, progress=progress)
    if out is not None:
        results.write(runs, out, source="sweep")
    frame = results.results_frame(runs)
    frame.attrs["runs"] = runs
    return frame
