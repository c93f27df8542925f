"""sl.lab.serve on the running loop, the Player widget, and LivePlot, with real WHEP viewers."""

from __future__ import annotations

import asyncio
import socket
import time
import warnings

import pytest

import streamlab as sl
import streamlab.lab as lab
from streamlab.lab.serve import LoopBlockedWarning, running_servers
from streamlab.testing import source_threads, until

SOURCE = "synthetic://?size=640x480&fps=30&objects=2"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_serve_returns_at_once_and_keeps_serving() -> None:
    started = time.monotonic()
    served = lab.serve(SOURCE, name="t1", analyze=["motion"])
    assert time.monotonic() - started < 0.5
    assert served.state == "starting"
    await served.ready()
    assert served.state == "serving" and served.url.startswith("http://127.0.0.1:")
    assert "serving" in served._repr_html_()
    client = await sl.WhepClient(served.whep_url()).connect()
    received = await client.wait_frames(20)
    assert received.codes > 0
    assert any(m.get("analysis") for m in received.messages)
    assert served.settings()["overlay"] is False, "the Player draws the boxes"
    await client.close()
    await served.stop()
    assert not listening(served.server.port or 0)


async def test_serving_again_replaces_the_previous_server_cleanly() -> None:
    first = lab.serve(SOURCE, name="t2")
    await first.ready()
    port = first.server.port or 0
    tasks_before = len(asyncio.all_tasks())
    second = lab.serve(SOURCE, name="t2")
    await second.ready()
    assert first.state == "stopped" and second.state == "serving"
    assert running_servers()["t2"] is second
    assert not listening(port)
    assert len(source_threads()) == 1
    assert len(asyncio.all_tasks()) <= tasks_before + 1
    await second.stop()
    await asyncio.sleep(0.1)
    assert source_threads() == []
    assert "t2" not in running_servers()


async def test_update_changes_what_viewers_receive_and_bad_values_are_one_line() -> None:
    served = lab.serve(SOURCE, name="t3", quality="fixed:640x360")
    await served.ready()
    client = await sl.WhepClient(served.whep_url()).connect(read_codes=False)
    await client.wait_frames(10)
    applied = await served.update(quality="fixed:320x180")
    assert applied["quality"] == "fixed:320x180"
    frames = client.received.frames
    await client.wait_frames(frames + 30)
    assert (240, 180) in client.received.sizes
    with pytest.raises(sl.ConfigError) as error:
        await served.update(target_fps=0)
    assert "\n" not in str(error.value)
    with pytest.raises(sl.ConfigError):
        lab.serve(SOURCE, name="t3b", target_fps=1000)
    assert "t3b" not in running_servers()
    await client.close()
    await served.stop()


async def test_serve_a_running_pipeline_and_leave_it_running() -> None:
    pipeline = await sl.Pipeline(SOURCE, name="mine").start()
    served = lab.serve(pipeline, name="t4")
    await served.ready()
    player = served.player()
    client = await sl.WhepClient(served.whep_url()).connect(read_codes=False)
    await client.wait_frames(10)
    await client.close()
    await served.stop()
    assert pipeline.running, "a pipeline handed to serve keeps running"
    await pipeline.stop()
    assert player.stopped == "server stopped"


async def test_a_player_made_in_the_same_cell_as_serve_gets_the_bound_url() -> None:
    served = lab.serve(SOURCE, name="t9")
    player = served.player()  # before the server listens, as in one notebook cell
    assert "None" not in player.whep_url
    await served.ready()
    assert player.whep_url == served.whep_url()
    port = int(player.whep_url.split(":")[2].split("/")[0])
    assert port == served.server.port and port > 0
    client = await sl.WhepClient(player.whep_url).connect(read_codes=False)
    await client.wait_frames(5)
    await client.close()
    await served.stop()


async def test_players_show_a_stopped_pipeline() -> None:
    served = lab.serve(SOURCE, name="t8")
    await served.ready()
    player = served.player()
    await asyncio.sleep(0.6)
    assert player.stopped == ""
    await served.pipeline.stop()
    await until(lambda: player.stopped == "pipeline stopped", 0.8, "the Player shows it")
    await served.stop()


async def test_players_show_the_server_stopped_and_a_blocked_loop_warns_once() -> None:
    served = lab.serve(SOURCE, name="t5")
    await served.ready()
    player = served.player()
    assert player.whep_url == served.whep_url() and player.stopped == ""
    assert "createPlayer" in player._esm and "readFrameCode" in player._esm
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        time.sleep(1.3)  # noqa: ASYNC251 - a cell that blocks the kernel's loop
        await asyncio.sleep(0.3)
        time.sleep(1.3)  # noqa: ASYNC251
        await asyncio.sleep(0.3)
    blocked = [w for w in caught if issubclass(w.category, LoopBlockedWarning)]
    assert len(blocked) == 1 and "asyncio.sleep" in str(blocked[0].message)
    await served.stop()
    assert player.stopped == "server stopped"
    assert served.player().stopped == "server stopped"


async def test_liveplot_follows_a_served_stream() -> None:
    served = lab.serve(SOURCE, name="t6", analyze=["motion"])
    await served.ready()
    client = await sl.WhepClient(served.whep_url()).connect(read_codes=False)
    plot = lab.LivePlot(served, metrics=("fps", "latency", "stages", "lag", "kbps", "drops"),
                        hz=4)  # fmt: skip
    await asyncio.sleep(1.0)
    await served.update(quality="fixed:320x180")
    for _ in range(100):  # ~2 Hz when idle; slower on a busy machine, never stuck
        if plot.renders >= 4:
            break
        await asyncio.sleep(0.1)
    assert plot.renders >= 4
    assert plot.image.value[:4] == b"\x89PNG"
    data = plot.data()
    metrics = set(data["metric"])
    assert {"fps", "latency", "lag", "kbps", "stages", "marker"} <= metrics
    fps_out = data[(data.metric == "fps") & (data.series == "out")]["value"]
    assert fps_out.max() >= 10
    assert any("320x180" in s for s in data[data.metric == "marker"]["series"])
    await client.close()
    await served.stop()
    await asyncio.sleep(0.6)
    assert "stopped" in plot.state_view.value
    await plot.stop()
    with pytest.raises(ValueError, match="unknown metric"):
        lab.LivePlot(served, metrics=("fps", "nope"))


async def test_whep_answers_the_notebook_page_across_origins_but_not_any_page() -> None:
    import aiohttp

    served = lab.serve(SOURCE, name="t7", token="secret")
    await served.ready()
    url = served.whep_url()
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        notebook = {"Origin": "http://127.0.0.1:8888", **preflight}
        async with http.options(url, headers=notebook) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8888"
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        async with http.options(url, headers={"Origin": "https://evil.example", **preflight}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
        async with http.post(
            url,
            data="v=0",
            headers={"Origin": "http://localhost:8888", "Content-Type": "application/sdp"},
        ) as r:
            assert r.status == 401, "the token still applies"
            assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:8888"
    await served.stop()


@pytest.mark.parametrize("after_s", [0.0, 0.001, 0.01, 0.05])
async def test_stop_right_after_serve_stops_cleanly(after_s: float) -> None:
    served = lab.serve(SOURCE, name="early")
    await asyncio.sleep(after_s)  # the source thread may be starting in another thread
    await served.stop()
    assert served.state == "stopped"
    await asyncio.sleep(0.1)
    assert source_threads() == [], "no source left running"
