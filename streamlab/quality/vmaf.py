"""VMAF of a saved pair (``received.mkv`` against ``reference.mkv``), offline.

ffmpeg's ``libvmaf`` filter with its built-in model (``vmaf_v0.6.1``), run as a subprocess
with a timeout. Debian's ffmpeg is built without libvmaf; the static build of
``imageio-ffmpeg`` (``pip install 'streamlab[vmaf]'``) has it.

The frame code is left out by cropping the top band of the code's height (rounded up to an
even row) off both pictures: VMAF's features are computed over whole pictures, so the box
cannot be masked as PSNR masks it, and the band beside the box is lost with it (at 640x480
VMAF sees the bottom 352 of 480 rows).

``python -m streamlab.quality.vmaf FOLDER`` prints the ffmpeg command and the mean.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog

from streamlab import framecode
from streamlab.errors import StreamlabError
from streamlab.quality.pair import RECEIVED, REFERENCE

TIMEOUT_S = 300.0
LOG = "vmaf.json"  # libvmaf's per-frame log, written beside the pair
THREADS = 2

log = structlog.get_logger("streamlab.quality")


class VmafError(StreamlabError, RuntimeError):
    """ffmpeg could not score the pair (failed, timed out, or wrote no score)."""


@dataclass(frozen=True)
class VmafScore:
    """The mean VMAF (0..100) of a pair and each frame's score, in order."""

    mean: float
    frames: list[float]


def ffmpeg() -> str:
    """The path of imageio-ffmpeg's ffmpeg (built with libvmaf); ImportError without it."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise ImportError("VMAF needs imageio-ffmpeg: pip install 'streamlab[vmaf]'",
                          name=exc.name) from None  # fmt: skip
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def code_band(width: int) -> int:
    """Rows cropped off the top of a ``width``-wide picture: the code's height, even."""
    height = framecode.region(width)[3]
    return height + height % 2


def command(exe: str, width: int, *, exclude_code: bool = True, log: str = LOG) -> list[str]:
    """The ffmpeg command that scores the pair, run from the pair's folder."""
    band = code_band(width) if exclude_code else 0
    crop = f"crop=iw:ih-{band}:0:{band}"
    graph = (f"[0:v]{crop}[main];[1:v]{crop}[ref];"
             f"[main][ref]libvmaf=log_fmt=json:log_path={log}:n_threads={THREADS}")  # fmt: skip
    return [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", RECEIVED,
            "-i", REFERENCE, "-lavfi", graph, "-f", "null", "-"]  # fmt: skip


def picture_size(path: Path) -> tuple[int, int]:
    """Width and height of a video file's first video stream."""
    import av

    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return int(context.width), int(context.height)


def score(
    folder: str | Path, *, timeout_s: float = TIMEOUT_S, exclude_code: bool = True
) -> VmafScore:
    """VMAF of the pair in ``folder``; blocks (run it in a thread, never on an event loop)."""
    where = Path(folder)
    width, height = picture_size(where / REFERENCE)
    if exclude_code and code_band(width) >= height:
        raise VmafError(f"{width}x{height}: the code band leaves no picture to score")
    run = command(ffmpeg(), width, exclude_code=exclude_code)
    try:
        done = subprocess.run(run, cwd=where, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise VmafError(f"ffmpeg libvmaf took longer than {timeout_s:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise VmafError(f"ffmpeg libvmaf failed ({done.returncode}): {last}")
    try:
        data = json.loads((where / LOG).read_text())
        frames = [float(f["metrics"]["vmaf"]) for f in data["frames"]]
        mean = float(data["pooled_metrics"]["vmaf"]["mean"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VmafError(f"no VMAF in ffmpeg's log ({type(exc).__name__}: {exc})") from None
    return VmafScore(mean, frames)


def mean_or_none(folder: str | Path, *, timeout_s: float = TIMEOUT_S) -> float | None:
    """The pair's mean VMAF, or None with one log line saying why (imageio-ffmpeg not
    installed, no frames saved, ffmpeg failed or timed out). Blocks, like ``score``."""
    if not (Path(folder) / REFERENCE).is_file():
        log.warning("vmaf_skipped", reason="no frames were saved", folder=str(folder))
        return None
    try:
        return round(score(folder, timeout_s=timeout_s).mean, 2)
    except ImportError as exc:
        log.warning("vmaf_skipped", reason=str(exc))
    except (VmafError, OSError, ValueError) as exc:
        log.warning("vmaf_failed", reason=str(exc).splitlines()[0], folder=str(folder))
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m streamlab.quality.vmaf FOLDER``: the command, then the mean and frames."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m streamlab.quality.vmaf FOLDER", file=sys.stderr)
        return 2
    folder = Path(args[0])
    try:
        width, _ = picture_size(folder / REFERENCE)
        print(f"(cd {folder} && {' '.join(_quoted(command(ffmpeg(), width)))})")
        result = score(folder)
    except (ImportError, OSError, ValueError, VmafError) as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    print(f"vmaf_mean {result.mean:.2f} over {len(result.frames)} frames")
    return 0


def _quoted(parts: list[str]) -> list[str]:
    import shlex

    return [shlex.quote(part) for part in parts]


if __name__ == "__main__":
    raise SystemExit(main())
