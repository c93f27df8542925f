"""Config: env overrides, ranges, one clear line per bad value."""

from __future__ import annotations

import pytest

import streamlab as sl


def test_defaults_match_the_seed() -> None:
    config = sl.load_config()
    assert config.rtsp_timeout_ms == 15000
    assert config.rtsp_buffer_size == 1
    assert config.target_fps == 10
    assert config.frame_skip_interval == 5
    assert config.analysis_frame_interval == 30
    assert config.detection_frame_interval == 60


def test_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_TARGET_FPS", "25")
    monkeypatch.setenv("STREAMING_BUFFERING", "drop_oldest:3")
    config = sl.load_config()
    assert config.target_fps == 25
    assert config.buffering == "drop_oldest:3"


def test_code_overrides_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_TARGET_FPS", "25")
    assert sl.load_config(target_fps=7).target_fps == 7


@pytest.mark.parametrize(
    ("field", "value", "range_text"),
    [
        ("rtsp_timeout_ms", 999, "between 1000 and 60000"),
        ("rtsp_buffer_size", 11, "between 1 and 10"),
        ("target_fps", 0, "between 1 and 30"),
        ("frame_skip_interval", 21, "between 1 and 20"),
        ("analysis_frame_interval", 9, "between 10 and 120"),
        ("detection_frame_interval", 301, "between 30 and 300"),
    ],
)
def test_out_of_range_is_one_clear_line(field: str, value: int, range_text: str) -> None:
    with pytest.raises(sl.ConfigError) as info:
        sl.load_config(**{field: value})
    message = str(info.value)
    assert field in message
    assert range_text in message
    assert "\n" not in message


def test_bad_env_value_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_TARGET_FPS", "99")
    with pytest.raises(sl.ConfigError, match="STREAMING_TARGET_FPS"):
        sl.load_config()


def test_unknown_strategy_lists_the_choices() -> None:
    with pytest.raises(sl.ConfigError) as info:
        sl.load_config(buffering="fastest")
    assert "latest" in str(info.value)
    assert "drop_oldest:N" in str(info.value)


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(sl.ConfigError, match="unknown setting"):
        sl.load_config(target_fsp=3)


def test_config_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError):
        sl.load_config(target_fps=-1)
