"""What the benchmark scripts share: their rows written as JSON where ``--out`` says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_rows(out: str, rows: list[Any]) -> None:
    """``rows`` as indented JSON at ``out`` (its folder made); nothing when ``out`` is ""."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(rows, indent=1))
