"""Each setting is declared once (``recommender/conf.py``, ``segmentation/conf.py``): README.md's
tables, the system checks and the training run's record of its settings all come from there."""

from __future__ import annotations

import difflib
import importlib.util

import pytest
from django.core import checks

from personalization_core.checks import check_settings_dict
from personalization_core.conf import AppSettings, Setting, settings_table
from tests.conftest import REPO

REGENERATE = "python scripts/settings_table.py --write"


def _script():
    spec = importlib.util.spec_from_file_location("settings_table", REPO / "scripts" / "settings_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_settings_tables_are_the_declarations():
    current = (REPO / "README.md").read_text()
    rendered = _script().render_readme(current)
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True), rendered.splitlines(keepends=True), "README.md", "declared"
        )
    )
    assert not diff, f"README.md's settings tables differ from the declarations; run `{REGENERATE}`:\n{diff}"


def test_every_declared_key_has_a_row():
    from recommender.conf import SETTINGS as RECOMMENDER_SETTINGS
    from segmentation.conf import SETTINGS as SEGMENTATION_SETTINGS

    for declared in (RECOMMENDER_SETTINGS, SEGMENTATION_SETTINGS):
        table = settings_table(declared)
        rows = [line.split(" | ")[0].removeprefix("| ").strip("`") for line in table.splitlines()[2:]]
        assert rows == [s.name for s in declared]
        assert all(s.doc and "\n" not in s.doc for s in declared)
        assert all(isinstance(s.default, s.type) for s in declared), "a default is not of its declared type"


def test_a_table_row_shows_type_default_and_doc():
    declared = [
        Setting("LIMIT", (int, type(None)), 5, "at most this many; `None`: no limit"),
        Setting("NAMES", (list, tuple), ["a"], "names with a | in the doc"),
        Setting("PATTERN", str, r"x|y", "a regex", shown_default="a regex of two letters"),
    ]
    assert settings_table(declared).splitlines() == [
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        "| `LIMIT` | int or None | `5` | at most this many; `None`: no limit |",
        '| `NAMES` | list or tuple | `["a"]` | names with a \\| in the doc |',
        "| `PATTERN` | str | a regex of two letters | a regex |",
    ]


def test_the_check_takes_keys_and_types_from_the_declarations(settings):
    app_settings = AppSettings("EXAMPLE_APP", [Setting("LIMIT", (int, type(None)), 5, "doc")])
    settings.EXAMPLE_APP = {"LIMIT": None}
    assert check_settings_dict(app_settings, "example") == []
    assert app_settings.LIMIT is None
    settings.EXAMPLE_APP = {"LIMIT": "5", "LIMTI": 5}
    errors = check_settings_dict(app_settings, "example")
    assert [(e.id, e.msg) for e in errors] == [
        ("example.E002", "EXAMPLE_APP['LIMIT'] is str, expected int or None."),
        ("example.E002", "Unknown setting EXAMPLE_APP['LIMTI']."),
    ]
    assert all(isinstance(e, checks.Error) for e in errors)
    with pytest.raises(ValueError, match="declared twice"):
        AppSettings("EXAMPLE_APP", [Setting("A", int, 1, "doc"), Setting("A", int, 2, "doc")])


def test_the_training_run_records_the_settings_declared_for_training(settings):
    from recommender.conf import SETTINGS
    from recommender.services.training import settings_snapshot

    settings.RECOMMENDER = {"EXCLUDED_UPCS": ("fee",), "BLOCK_LIMIT": 8}
    snapshot = settings_snapshot()
    assert list(snapshot) == [s.name for s in SETTINGS if s.training]
    assert snapshot["EXCLUDED_UPCS"] == ["fee"]  # JSON: a list
    assert "BLOCK_LIMIT" not in snapshot  # serving only: a new value needs no retraining
    assert "GATE_METRIC" in snapshot and "TRAINING_TIME_BUDGET_MINUTES" in snapshot
