"""A clean install as a new user makes it: the wheel, base dependencies only, in a fresh venv.

Builds the wheel from a copy of the sources (nothing is written into the checkout), installs
it without extras into a new venv, then runs ``streamlab --help``, ``streamlab probe`` and
``streamlab serve`` with a real WHEP viewer from this process.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from streamlab.camera.launcher import free_port
from streamlab.webrtc.client import WhepClient

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the streamlab wheel and its base dependencies only."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "streamlab", source / "streamlab", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("streamlab-*.whl"))
    env_dir = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run([*pip, "--python", str(python), "install", str(wheel)],
                               capture_output=True, text=True, timeout=180)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    return env_dir


def run(venv: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "streamlab"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=venv)  # fmt: skip


def test_no_extra_is_installed(venv: Path) -> None:
    check = "import importlib.util as u; print([m for m in ('pandas', 'matplotlib', " \
            "'ipywidgets', 'pytest') if u.find_spec(m)])"  # fmt: skip
    done = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True,
                          text=True, cwd=venv)  # fmt: skip
    assert done.stdout.strip() == "[]", "the fresh venv must hold base dependencies only"


def test_help_and_probe_work_with_base_dependencies(venv: Path) -> None:
    done = run(venv, "--help")
    assert done.returncode == 0, done.stderr
    for command in ("probe", "serve", "camera", "report"):
        assert command in done.stdout
    done = run(venv, "probe", "synthetic://?size=320x240&fps=30", "--frames", "20", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["frames"] == 20 and (report["width"], report["height"]) == (320, 240)


def test_import_is_core_only_and_extras_fail_in_one_line(venv: Path) -> None:
    script = (
        "import sys, streamlab as sl\n"
        "heavy = [m for m in ('aiortc', 'aiohttp', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert sl.Server.__name__ == 'Server'\n"
        "try:\n"
        "    sl.load_results\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, '|', exc)\n"
    )
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                          text=True, cwd=venv)  # fmt: skip
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.strip().split(" | ")
    assert kind == "MissingExtraError"
    assert message == "sl.load_results needs pandas: pip install 'streamlab[bench]'"
    done = run(venv, "report", "nothing.json")
    assert done.returncode == 2
    assert re.fullmatch(
        r"streamlab report: error: streamlab report needs \w+: "
        r"pip install 'streamlab\[bench\]'",
        done.stderr.strip(),
    ), done.stderr


async def test_serve_with_a_viewer(venv: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "streamlab"), "serve", "--source", "synthetic://?size=320x240&fps=30",
        "--name", "demo", "--port", str(port), cwd=venv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/"
    try:
        assert process.stdout is not None
        lines = [(await asyncio.wait_for(process.stdout.readline(), 60)).decode()
                 for _ in range(3)]  # fmt: skip
        assert any(f"whep: {base}whep/demo" in line for line in lines), lines
        async with aiohttp.ClientSession() as http:
            async with http.get(base) as page:
                assert page.status == 200 and "<html" in (await page.text()).lower()
            async with http.get(base + "healthz") as health:
                assert health.status in (200, 503)
                assert (await health.json())["streams"][0]["stream"] == "demo"
        client = await WhepClient(f"{base}whep/demo").connect()
        received = await client.wait_frames(20, within_s=30)
        assert await client.close() == 200
        assert received.codes >= 10
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
        stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr
