"""Scenarios on Dask: ``local:N`` (a LocalCluster) or ``tcp://HOST:8786`` (a running one).

Each worker offers one ``scenario`` resource and every task asks for it, so a worker runs
one scenario at a time; a scenario starts its own server, camera and load processes on that
worker's machine. Results come back as plain dicts and are gathered in submission order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from streamlab.errors import ConfigError
from streamlab.experiments.runner import RunResult, run_seconds, run_table
from streamlab.experiments.scenario import Scenario

RESOURCE = "scenario"
LOCAL = re.compile(r"^local(?::(\d+))?$")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError("--dask needs dask[distributed]: pip install 'streamlab[experiments]'"
                          ) from None  # fmt: skip
    return distributed


@contextmanager
def client_for(spec: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``local:N`` or a scheduler address; closed afterwards."""
    distributed = _distributed()
    match = LOCAL.match(spec.strip())
    if match:
        workers = int(match.group(1) or 1)
        if not 1 <= workers <= 64:
            raise ConfigError(f"--dask local:N needs 1 <= N <= 64, got {spec!r}")
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            resources={RESOURCE: 1}, dashboard_address=None, host="127.0.0.1",
        )  # fmt: skip
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if not spec.startswith(("tcp://", "tls://")):
        raise ConfigError(f"--dask must be local:N or tcp://HOST:PORT, got {spec!r}")
    try:
        client = distributed.Client(spec, timeout="10s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {spec}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


def run_on(
    spec: str, scenarios: list[Scenario], repeat: int = 1, *, progress: bool = True
) -> list[RunResult]:
    """Every scenario and repeat as a Dask task (one per worker at a time), with a tqdm bar."""
    from tqdm.auto import tqdm

    distributed = _distributed()
    plan = [(s, r) for s in scenarios for r in range(s.repeat or repeat)]
    with client_for(spec) as client:
        resources = {RESOURCE: 1}
        futures = [
            client.submit(
                run_table, s.to_dict(), r, resources=resources, pure=False, key=f"scenario-{i}-{r}"
            )
            for i, (s, r) in enumerate(plan)
        ]
        order = {f.key: i for i, f in enumerate(futures)}
        gathered: list[dict[str, Any] | None] = [None] * len(futures)
        total = sum(run_seconds(s) for s, _ in plan)
        with tqdm(total=round(total), unit="s", disable=not progress, desc="dask") as bar:
            for future in distributed.as_completed(futures):
                index = order[future.key]
                gathered[index] = future.result()
                bar.update(round(run_seconds(plan[index][0])))
    return [RunResult.from_dict(g) for g in gathered if g is not None]
