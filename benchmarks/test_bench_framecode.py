"""Frame-code burn and read cost per frame."""

from __future__ import annotations

import numpy as np
import pytest

from streamlab import framecode
from streamlab.sources.synthetic import SyntheticScene


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720)])
@pytest.mark.parametrize("op", ["burn", "read"])
def test_framecode_cost(benchmark, op: str, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    image, _ = SyntheticScene(width, height).render(0)
    framecode.burn(image, 1, 1_795_000_000_000)
    benchmark.group = "framecode"
    benchmark.extra_info.update(op=op, size=f"{width}x{height}")
    if op == "burn":
        benchmark(framecode.burn, image, 2, 1_795_000_000_033)
    else:
        code = benchmark(framecode.read, image)
        assert code.seq == 2 or code.seq == 1
    assert np.isfinite(benchmark.stats.stats.mean)
