"""Result files as a report reads them: one table, raw samples per (run, name), the machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlab.experiments import results


@dataclass
class Loaded:
    """Result files as one table plus their raw samples keyed by (run, name)."""

    frame: Any
    samples: dict[tuple[str, str], list[dict[str, Any]]]
    machine: dict[str, Any]


def load(*paths: str | Path) -> Loaded:
    frame = results.frame(*paths)
    raw: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in paths:
        for name, runs in results.samples(path).items():
            raw[(Path(path).stem, name)] = runs
    machine = results.read(paths[0]).get("machine_info", {})
    return Loaded(frame, raw, machine)


def latencies_of(loaded: Loaded, row: Any) -> list[float]:
    runs = loaded.samples.get((row["run"], row["name"]), [])
    return [v for run in runs for v in run.get("latencies_ms", [])]


def series_of(loaded: Loaded, row: Any) -> list[dict[str, Any]]:
    runs = loaded.samples.get((row["run"], row["name"]), [])
    return runs[0].get("series", []) if runs else []
