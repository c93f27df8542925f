"""Which views of a widget are on screen, as the browser reports it (IntersectionObserver).

Kernels should not draw what nobody sees (jupyter_rfb's rule): a view reports
``{"type": "visible", "view": id, "value": bool}``; ``visible`` is None until any view has
reported (no front end, e.g. nbval), then whether at least one view is on screen.
"""

from __future__ import annotations

from typing import Any

import anywidget

from streamlab.lab.player import STATIC


class Views:
    """The visibility of each view of one widget, from its ``visible`` messages."""

    def __init__(self) -> None:
        self._views: dict[str, bool] = {}

    def note(self, content: Any) -> bool:
        """Record a ``visible`` message; returns whether it was one."""
        if not isinstance(content, dict) or content.get("type") != "visible":
            return False
        self._views[str(content.get("view"))] = bool(content.get("value"))
        return True

    @property
    def visible(self) -> bool | None:
        return any(self._views.values()) if self._views else None


class VisibilityProbe(anywidget.AnyWidget):
    """An invisible widget reporting whether its container (``.sl-visibility-root``) shows."""

    _esm = (STATIC / "visibility.js").read_text()

    def __init__(self) -> None:
        super().__init__()
        self.views = Views()
        self.on_msg(lambda _widget, content, _buffers: self.views.note(content))

    @property
    def visible(self) -> bool | None:
        return self.views.visible
