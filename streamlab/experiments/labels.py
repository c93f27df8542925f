"""Scenario labels: which parameters differ between rows, and how a parameter value reads."""

from __future__ import annotations

from typing import Any

import numpy as np

HIDDEN_PARAMS = {"duration_s", "source"}


def labels(rows: Any) -> list[str]:
    """Each row's label: the parameters that differ within ``rows`` (never a test id)."""
    params = [c for c in param_columns(rows) if rows[c].map(show).nunique() > 1]
    multi_run = rows["run"].nunique() > 1
    out = []
    for _, row in rows.iterrows():
        parts = [f"{c}={show(row[c])}" for c in params]
        if not parts:
            parts = [f"system={row.get('system', '?')}"]
        if multi_run:
            parts.insert(0, str(row["run"]))
        out.append(", ".join(parts))
    return out


def param_columns(rows: Any) -> list[str]:
    known = {"system", "viewers", "viewer", "cpu_load", "network", "codec", "quality",
             "buffering", "skipping", "analyze", "stage_delay_ms", "measure_quality"}  # fmt: skip
    from streamlab.config import StreamingConfig

    known |= set(StreamingConfig.model_fields)
    return [c for c in rows.columns if c in known and c not in HIDDEN_PARAMS]


def show(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "default"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "none" if value == "" else str(value)
