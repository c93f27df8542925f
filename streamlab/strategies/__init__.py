"""Strategy families: buffering, skipping, quality, codec — each a registry of named specs."""

from __future__ import annotations

import importlib
from typing import Any

from streamlab.registry import Registry

FAMILIES: dict[str, tuple[str, str]] = {
    "buffering": ("streamlab.strategies.buffering", "buffering"),
    "skipping": ("streamlab.strategies.skipping", "skipping"),
    "quality": ("streamlab.strategies.quality", "quality"),
    "codec": ("streamlab.strategies.codec", "codecs"),
}


def registry_for(family: str) -> Registry[Any]:
    """The registry of one strategy family, by family name."""
    module_name, attribute = FAMILIES[family]
    registry: Registry[Any] = getattr(importlib.import_module(module_name), attribute)
    return registry
