"""Model files in a folder of the test's own."""

from __future__ import annotations

import pytest

from recommender.services import versions


@pytest.fixture
def model_storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    versions.forget_loaded()
    yield tmp_path / "media"
    versions.forget_loaded()
