"""Dataset manifest: synthetic clips with ground truth; real clips listed in place."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.datasets import ROOT, Entry, load_manifest, sha256, write_synthetic


def test_manifest_lists_synthetic_and_real_entries() -> None:
    entries = load_manifest()
    kinds = {e.kind for e in entries}
    assert kinds == {"synthetic", "real"}
    for entry in entries:
        if entry.kind == "real":
            assert entry.location.startswith("../shared/datasets/")
            assert entry.details and "CC BY 4.0" in entry.details["credit"]


def test_real_clips_match_their_published_hashes() -> None:
    present = [e for e in load_manifest() if e.kind == "real" and e.available(ROOT)]
    if not present:
        pytest.skip("../shared/datasets is not here")
    for entry in present:
        assert entry.details is not None
        assert sha256(ROOT / entry.location) == entry.details["sha256"]


def test_a_synthetic_clip_round_trips_with_its_ground_truth(tmp_path: Path) -> None:
    entry = Entry("tiny", "synthetic", "synthetic://?size=320x240&fps=10&objects=2&seed=4", 12)
    video, truth = write_synthetic(entry, tmp_path)
    data = json.loads(truth.read_text())
    assert len(data["frames"]) == 12
    assert all(len(f["boxes"]) == 2 for f in data["frames"])
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 12
    assert [framecode.read(f).seq for f in frames] == list(range(12))
    scene = sl.SyntheticScene(320, 240, objects=2, seed=4)
    assert data["frames"][5]["boxes"] == [b.to_dict() for b in scene.boxes(5)]


def test_cli_list_and_bad_manifest(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "streamlab.cli", "datasets", "list"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0
    assert "lanes-640x480" in done.stdout
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "streamlab.cli", "datasets", "list",
                           "--manifest", str(bad)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert "malformed dataset manifest" in done.stderr
