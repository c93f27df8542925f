"""Optional layers and the extra that provides each: a missing one is one clear line."""

from __future__ import annotations

import importlib
from types import ModuleType

# top-level import name -> the extra of ``pip install streamlab[EXTRA]`` that brings it
PROVIDERS = {
    "pandas": "notebook",
    "matplotlib": "notebook",
    "ipywidgets": "notebook",
    "anywidget": "notebook",
    "jupyterlab": "notebook",
    "IPython": "notebook",
    "traitlets": "notebook",
    "pytest": "dev",
    "pytest_benchmark": "bench",
    "psutil": "bench",
    "dask": "bench",
    "distributed": "bench",
    "tqdm": "bench",
    "hypothesis": "dev",
}


class MissingExtraError(ImportError):
    """An optional layer needs a package that is not installed; the message names the extra."""

    def __str__(self) -> str:  # one line, whatever ImportError would add
        return str(self.msg)


def missing_extra(exc: ImportError, feature: str, extra: str | None = None) -> ImportError:
    """``exc`` as a MissingExtraError when a package of an extra is missing, else ``exc``.

    ``extra`` names the extra to suggest (default: the one that brings the package)."""
    top = (exc.name or "").split(".")[0]
    if top not in PROVIDERS:
        return exc
    extra = extra or PROVIDERS[top]
    return MissingExtraError(
        f"{feature} needs {top}: pip install 'streamlab[{extra}]'", name=exc.name
    )


def load(module: str, feature: str, extra: str | None = None) -> ModuleType:
    """Import ``module``; a missing optional package becomes a MissingExtraError."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(exc, feature, extra) from None
