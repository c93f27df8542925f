"""Stream states: explicit table, invalid transitions raise, each transition is an event."""

from __future__ import annotations

import pytest

import streamlab as sl
from streamlab.events import StateChanged

S = sl.StreamState


def test_the_happy_path_emits_one_event_per_transition() -> None:
    bus = sl.EventBus()
    seen: list[tuple[str, str]] = []
    bus.subscribe(lambda e: seen.append((e.old, e.new)) if isinstance(e, StateChanged) else None)
    machine = sl.StreamStateMachine("cam", bus)
    for state in (S.CONNECTING, S.STREAMING, S.RECONNECTING, S.CONNECTING, S.STREAMING, S.STOPPED):
        machine.to(state)
    assert seen == [
        ("initializing", "connecting"),
        ("connecting", "streaming"),
        ("streaming", "reconnecting"),
        ("reconnecting", "connecting"),
        ("connecting", "streaming"),
        ("streaming", "stopped"),
    ]
    assert machine.state is S.STOPPED


@pytest.mark.parametrize(
    ("path", "bad"),
    [((), S.STREAMING), ((S.CONNECTING, S.STREAMING), S.CONNECTING), ((S.STOPPED,), S.STREAMING)],
)
def test_invalid_transitions_raise(path: tuple[sl.StreamState, ...], bad: sl.StreamState) -> None:
    machine = sl.StreamStateMachine("cam")
    for state in path:
        machine.to(state)
    with pytest.raises(sl.StateTransitionError, match="cannot go from"):
        machine.to(bad)
    assert machine.state is (path[-1] if path else S.INITIALIZING)


def test_every_state_has_a_row_and_stop_is_reachable() -> None:
    assert set(sl.TRANSITIONS) == set(S)
    for state, targets in sl.TRANSITIONS.items():
        if state is not S.STOPPED:
            assert S.STOPPED in targets


def test_a_failing_observer_does_not_break_transitions() -> None:
    bus = sl.EventBus()
    bus.subscribe(lambda e: 1 / 0)
    machine = sl.StreamStateMachine("cam", bus)
    machine.to(S.CONNECTING)
    assert machine.state is S.CONNECTING
