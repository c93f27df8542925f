import pytest

pytest_plugins = ["streamlab.testing"]


def pytest_collection_finish(session: pytest.Session) -> None:
    """A selected test module may start slow preparation early: its module-level
    ``prepare_in_background(config)`` runs once the run knows the module is selected."""
    if session.config.option.collectonly:
        return
    started: set[int] = set()
    for item in session.items:
        module = getattr(item, "module", None)
        prepare = getattr(module, "prepare_in_background", None)
        if prepare is not None and id(module) not in started:
            started.add(id(module))
            prepare(session.config)
