"""Retention settings (atlas_tasks.retention.config): the Go tool's hooks.retention keys and our retention section."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from atlas_tasks import ConfigError
from atlas_tasks.retention.config import FAILED, load_compact_settings, load_policy, parse_age


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("720h", 720 * 3600), ("1h30m", 5400), ("90s", 90), ("30d", 30 * 86400), ("2w", 14 * 86400), ("1.5h", 5400)],
)
def test_go_durations_and_days_parse(text: str, seconds: int) -> None:
    """Go durations (h, m, s, combined) and our d and w units give the expected timedelta."""
    assert parse_age(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "h", "-1h", "0h", "30 days", "1y"])
def test_other_durations_are_refused(text: str) -> None:
    """A number without a unit, a zero or negative age, or an unknown unit is a ValueError naming the text."""
    with pytest.raises(ValueError, match="duration"):
        parse_age(text)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_go_keys_set_ages_for_their_statuses(tmp_path: Path) -> None:
    """hooks.retention.completed/failed/abandoned set those statuses' ages (failed: the four failure ends)."""
    path = _write(tmp_path, "ai:\n  model: sonnet\nhooks:\n  retention:\n    completed: 720h\n    failed: 168h\n")
    policy = load_policy(path)
    assert policy.ages == {"completed": timedelta(hours=720), **dict.fromkeys(FAILED, timedelta(hours=168))}
    assert "interrupted" not in policy.ages and "abandoned" not in policy.ages
    assert policy.sources["completed"] == f"{path}: hooks.retention.completed"
    assert policy.keep_last is None


def test_our_section_wins_and_a_status_key_beats_its_group(tmp_path: Path) -> None:
    """retention.completed overrides Go's key; retention.ci_failed overrides retention.failed for that status."""
    path = _write(
        tmp_path,
        "hooks:\n  retention:\n    completed: 720h\nretention:\n  completed: 10d\n  failed: 3d\n  ci_failed: 1d\n"
        "  rejected: 2w\n  keep_last: 5\n",
    )
    policy = load_policy(path)
    assert policy.ages["completed"] == timedelta(days=10)
    assert policy.ages["ci_failed"] == timedelta(days=1) and policy.ages["gh_failed"] == timedelta(days=3)
    assert policy.ages["rejected"] == timedelta(weeks=2)
    assert policy.keep_last == 5 and policy.sources["keep_last"].endswith("retention.keep_last")
    assert policy.sources["completed"].endswith("retention.completed")


def test_a_missing_file_is_an_empty_policy_unless_required(tmp_path: Path) -> None:
    """No file: no settings (gc then needs options); a file the user named must exist."""
    assert load_policy(tmp_path / "none.yaml").empty
    with pytest.raises(ConfigError, match="no such file"):
        load_policy(tmp_path / "none.yaml", required=True)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("hooks: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "mapping"),
        ("hooks:\n  retention:\n    completed: soon\n", "hooks.retention.completed"),
        ("retention:\n  keep_last: -1\n", "retention.keep_last"),
        ("retention: 30d\n", "retention"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    """Unparsable YAML or a bad value is a ConfigError naming the file (and the key)."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_policy(path)
    assert str(path) in str(info.value)


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    """The Go tool's other settings and unknown retention keys do not matter."""
    path = _write(tmp_path, "git:\n  base_branch: main\nhooks:\n  max_checkpoints: 50\nretention:\n  colour: blue\n")
    assert load_policy(path).empty


@pytest.mark.parametrize(
    ("text", "keep", "size"),
    [
        ("retention:\n  compact:\n    keep_versions: 5\n    max_log_size: 512K\n", 5, 512 * 1024),
        ("retention:\n  compact:\n    max_log_size: 4096\n", None, 4096),
        ("retention:\n  completed: 30d\n", None, None),
        ("hooks:\n  retention:\n    completed: 720h\n", None, None),
    ],
)
def test_compact_settings_are_read_when_present(tmp_path: Path, text: str, keep: int | None, size: int | None) -> None:
    """retention.compact.keep_versions and .max_log_size are read (sizes in bytes or with units); absent: None."""
    settings = load_compact_settings(_write(tmp_path, text))
    assert (settings.keep_versions, settings.max_log_bytes) == (keep, size)
    assert set(settings.sources) == {k for k, v in (("keep_versions", keep), ("max_log_bytes", size)) if v}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("retention:\n  compact:\n    keep_versions: 0\n", "retention.compact.keep_versions"),
        ("retention:\n  compact:\n    keep_versions: true\n", "retention.compact.keep_versions"),
        ("retention:\n  compact:\n    max_log_size: lots\n", "retention.compact.max_log_size"),
        ("retention:\n  compact:\n    max_log_size: true\n", "retention.compact.max_log_size"),
        ("retention:\n  compact: 3\n", "retention.compact"),
    ],
)
def test_bad_compact_settings_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    """A bad compact setting is a ConfigError naming the file and the key."""
    with pytest.raises(ConfigError) as info:
        load_compact_settings(_write(tmp_path, text))
    assert key in str(info.value) and "config" in str(info.value)
