"""Scenario files: TOML with ``[defaults]``, ``[matrix]`` and ``[[scenario]]`` tables.

A scenario is one configuration to measure. Keys the runner understands itself are in
``RUN_KEYS``; every other key is a pipeline/delivery setting passed to the server as is
(``codec``, ``quality``, ``buffering``, ``skipping``, ``analyze``, ``network``,
``stage_delay_ms`` ...). ``[matrix]`` (file-wide) and ``matrix = {...}`` inside a scenario
expand lists into their cross product, over ``[defaults]``; a key a scenario sets itself is
not expanded by the file-wide matrix.

Every mistake in a file is one line naming the file, the scenario and the key.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlab.errors import ConfigError

VIEWERS = ("aiortc", "chromium")
BASELINES = ("restreamer", "ffmpeg", "pyav")
RUN_KEYS = frozenset(
    {"name", "source", "duration_s", "warmup_s", "viewers", "viewer", "cpu_load", "baseline",
     "repeat", "group", "measure_quality", "save_video"}
)  # fmt: skip
# settings the lead's delivery work adds; accepted here, the server says if it cannot apply them
PENDING_SETTINGS = frozenset({"network", "stage_delay_ms"})
CAMERA = re.compile(r"^camera:(\d+)x(\d+)@(\d+)((?:,[a-z_]+=[^,]+)*)$")
NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]=,:/%+ ]+$")


@dataclass(frozen=True)
class CameraSpec:
    """``camera:WxH@FPS[,gop=N,profile=P]`` — the built-in RTSP test camera."""

    width: int
    height: int
    fps: int
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> CameraSpec:
        match = CAMERA.match(text.strip())
        if not match:
            raise ConfigError(f"camera source must look like camera:1280x720@30, got {text!r}")
        width, height, fps = (int(match.group(i)) for i in (1, 2, 3))
        if not (16 <= width <= 3840 and 16 <= height <= 2160 and 1 <= fps <= 60):
            raise ConfigError(f"camera {text!r}: size 16..3840x16..2160 and fps 1..60 only")
        pairs = [part.split("=", 1) for part in match.group(4).split(",") if part]
        return cls(width, height, fps, tuple((key, value) for key, value in pairs))

    @property
    def key(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.options)
        return f"camera:{self.width}x{self.height}@{self.fps}{extra}"


@dataclass(frozen=True)
class Scenario:
    """One configuration to measure (``params`` is everything but its name)."""

    name: str
    source: str
    duration_s: float = 10.0
    warmup_s: float = 3.0
    viewers: int = 1
    viewer: str = "aiortc"
    cpu_load: int = 0
    baseline: str = ""
    repeat: int = 0  # 0 = as the run says (--repeat)
    group: str = ""
    measure_quality: bool = True  # reference frames on the server; PSNR/SSIM per frame at
    # aiortc viewers, on a canvas sample a second at Chromium viewers
    save_video: bool = False  # the first aiortc viewer's scored pairs as FFV1 (and VMAF on them)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def network(self) -> str:
        return str(self.settings.get("network", ""))

    @property
    def system(self) -> str:
        """Who serves: ``streamlab`` or the baseline's name."""
        return self.baseline or "streamlab"

    def params(self) -> dict[str, Any]:
        """Every parameter but the name, flat: what reports label and compare matches by."""
        params: dict[str, Any] = {
            "system": self.system, "source": self.source, "duration_s": self.duration_s,
            "viewers": self.viewers, "viewer": self.viewer, "cpu_load": self.cpu_load,
        }  # fmt: skip
        for key, value in sorted(self.settings.items()):
            params[key] = ",".join(value) if isinstance(value, list) else value
        params.setdefault("network", "")
        if not self.measure_quality:  # only when off: results from before it still match
            params["measure_quality"] = False
        return params

    def to_dict(self) -> dict[str, Any]:
        """A plain table that ``Scenario.from_table`` reads back (for Dask and side files)."""
        table: dict[str, Any] = {
            "name": self.name, "source": self.source, "duration_s": self.duration_s,
            "warmup_s": self.warmup_s, "viewers": self.viewers, "viewer": self.viewer,
            "cpu_load": self.cpu_load, "baseline": self.baseline, "repeat": self.repeat,
            "group": self.group, "measure_quality": self.measure_quality,
            "save_video": self.save_video,
        }  # fmt: skip
        table.update(self.settings)
        return table

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, where: str = "scenario") -> Scenario:
        """Validate one flat table; raises one ConfigError line naming ``where`` and the key."""
        data = dict(table)
        name = data.pop("name", None)
        label = f"{where} {name!r}" if name else where
        if not isinstance(name, str) or not name.strip() or not NAME.match(name):
            raise ConfigError(f"{label}: 'name' must be a non-empty string of letters, digits, "
                              "- _ . : / = , % + [ ] or spaces")  # fmt: skip
        source = data.pop("source", None)
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f"{label}: 'source' is required (synthetic://, a file, "
                              "camera:WxH@FPS or rtsp://)")  # fmt: skip
        if source.startswith("camera:"):
            try:
                CameraSpec.parse(source)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {exc}") from None
        run = {k: data.pop(k) for k in list(data) if k in RUN_KEYS}
        _check_number(label, run, "duration_s", float, 0.5, 7200.0)
        _check_number(label, run, "warmup_s", float, 0.0, 600.0)
        _check_number(label, run, "viewers", int, 0, 64)
        _check_number(label, run, "cpu_load", int, 0, 64)
        _check_number(label, run, "repeat", int, 0, 100)
        viewer = run.get("viewer", "aiortc")
        if viewer not in VIEWERS:
            choices = ", ".join(VIEWERS)
            raise ConfigError(f"{label}: viewer must be one of {choices}, got {viewer!r}")
        baseline = run.get("baseline", "") or ""
        if baseline not in ("", *BASELINES):
            raise ConfigError(f"{label}: baseline must be one of {', '.join(BASELINES)} "
                              f"(or absent), got {baseline!r}")  # fmt: skip
        if baseline and source.startswith("synthetic:"):
            raise ConfigError(f"{label}: baseline {baseline!r} needs a camera:, rtsp:// or file "
                              "source (it cannot read synthetic://)")  # fmt: skip
        if not isinstance(run.get("group", ""), str):
            raise ConfigError(f"{label}: 'group' must be a string")
        if not isinstance(run.get("measure_quality", True), bool):
            raise ConfigError(f"{label}: 'measure_quality' must be true or false")
        _check_settings(label, data)
        _check_save_video(label, {**run, "source": source}, data)
        return cls(name=name.strip(), source=source.strip(), settings=data, **run)


def _check_number(
    label: str, run: dict[str, Any], key: str, kind: type, low: float, high: float
) -> None:
    if key not in run:
        return
    value = run[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (kind is int and not isinstance(value, int))
    ):
        raise ConfigError(f"{label}: {key} must be a{'n integer' if kind is int else ' number'}, "
                          f"got {value!r}")  # fmt: skip
    if not low <= value <= high:
        raise ConfigError(f"{label}: {key} = {value!r} must be between {low:g} and {high:g}")
    run[key] = kind(value)


def _check_save_video(label: str, run: dict[str, Any], settings: dict[str, Any]) -> None:
    """``save_video`` saves what an aiortc viewer scored: refused where nothing is scored."""
    save = run.get("save_video", False)
    if not isinstance(save, bool):
        raise ConfigError(f"{label}: 'save_video' must be true or false")
    if not save:
        return
    source = str(run.get("source", ""))
    camera = source.startswith(("camera:", "rtsp://", "rtsps://"))
    tapped = run.get("baseline") == "restreamer" or settings.get("codec") == "passthrough"
    reasons = (
        (not run.get("measure_quality", True), "measure_quality is false"),
        (run.get("viewer", "aiortc") != "aiortc", "the viewer is chromium"),
        (run.get("viewers", 1) == 0, "viewers = 0"),
        (tapped and not camera, "a reference tap needs a camera source (camera: or rtsp://)"),
        (bool(run.get("baseline")) and run.get("baseline") != "restreamer",
         f"the {run.get('baseline')} baseline has no viewer to score"),
    )
    why = next((reason for failed, reason in reasons if failed), "")
    if why:
        raise ConfigError(f"{label}: save_video needs scored frames (measure_quality, an "
                          "aiortc viewer of streamlab or the restreamer; passthrough and the "
                          f"restreamer from a camera), but {why}")  # fmt: skip


def _check_settings(label: str, settings: dict[str, Any]) -> None:
    """Unknown or malformed settings fail here, before anything starts."""
    from streamlab.config import StreamingConfig, load_config

    known = set(StreamingConfig.model_fields)
    for key in settings:
        if key not in known and key not in PENDING_SETTINGS:
            raise ConfigError(f"{label}: unknown key {key!r} (not a scenario key nor a setting)")
    if isinstance(settings.get("analyze"), str):
        settings["analyze"] = [n.strip() for n in settings["analyze"].split(",") if n.strip()]
    checkable = {k: v for k, v in settings.items() if k in known}
    try:
        load_config(**checkable)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def expand(table: Mapping[str, Any], axes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cross product of ``axes`` lists over ``table``; expanded names carry the values."""
    if not axes:
        return [dict(table)]
    keys = list(axes)
    out = []
    for values in itertools.product(*(axes[k] for k in keys)):
        row = dict(table)
        row.update(zip(keys, values, strict=True))
        shown = ",".join(f"{k}={_show(v)}" for k, v in zip(keys, values, strict=True))
        row["name"] = f"{table.get('name', 'scenario')}[{shown}]"
        out.append(row)
    return out


def _show(value: Any) -> str:
    if value == "":
        return "none"
    return "+".join(map(str, value)) if isinstance(value, list) else str(value)


def _check_matrix(where: str, matrix: Any) -> dict[str, list[Any]]:
    if not isinstance(matrix, dict):
        raise ConfigError(f"{where}: [matrix] must be a table of lists")
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: matrix key {key!r} must be a non-empty list")
        if key == "name":
            raise ConfigError(f"{where}: 'name' cannot be a matrix key")
    return dict(matrix)


def parse(data: Mapping[str, Any], *, where: str = "scenarios") -> list[Scenario]:
    """Scenarios from a parsed TOML document (``defaults``, ``matrix``, ``scenario``)."""
    unknown = set(data) - {"defaults", "matrix", "scenario"}
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {', '.join(sorted(unknown))} "
                          "(use [defaults], [matrix], [[scenario]])")  # fmt: skip
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: [defaults] must be a table")
    matrix = _check_matrix(where, data.get("matrix", {}))
    tables = data.get("scenario")
    if tables is None:
        tables = [{"name": defaults.get("name", "scenario")}] if matrix else []
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{where}: no [[scenario]] tables")
    scenarios: list[Scenario] = []
    for index, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: scenario #{index} must be a table")
        own = dict(table)
        local = _check_matrix(f"{where} scenario #{index}", own.pop("matrix", {}))
        axes = {**{k: v for k, v in matrix.items() if k not in own}, **local}
        for row in expand({**defaults, **own}, axes):
            scenarios.append(Scenario.from_table(row, where=f"{where} scenario #{index}"))
    names = [s.name for s in scenarios]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: duplicate scenario name(s): {', '.join(duplicates)}")
    return scenarios


def load(path: str | Path) -> list[Scenario]:
    """Scenarios from a TOML file; raises one ConfigError line for any mistake."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"scenario file not found: {file}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc})") from None
    return parse(data, where=str(file))


def select(scenarios: Iterable[Scenario], only: Iterable[str] | None) -> list[Scenario]:
    """Scenarios whose name equals or starts with one of ``only`` (a name or its base)."""
    chosen = list(scenarios)
    wanted = [w for w in (only or []) if w]
    if not wanted:
        return chosen
    picked = [s for s in chosen if any(s.name == w or s.name.startswith(w + "[") for w in wanted)]
    if not picked:
        names = ", ".join(sorted({s.name.split("[", 1)[0] for s in chosen}))
        raise ConfigError(f"--only {' '.join(wanted)} matches no scenario (have: {names})")
    return picked
