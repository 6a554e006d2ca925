"""The system checks of placements and rungs."""

from __future__ import annotations

from recommender.serving.checks import check_placements
from recommender.serving.placements import Placement
from recommender.serving.service import recommender


def test_the_shops_placements_pass():
    assert check_placements() == []


def test_a_placement_naming_an_undefined_rung_is_an_error(monkeypatch):
    broken = Placement("gifts", "Gifts", ("curated", "gift_ideas", "best_sellers"))
    monkeypatch.setitem(recommender().placements.by_name, "gifts", broken)
    errors = check_placements()
    assert [e.id for e in errors] == ["recommender.E022"]
    assert "'gifts'" in errors[0].msg and "gift_ideas" in errors[0].msg and "curated" not in errors[0].msg


def test_options_for_a_placement_that_does_not_exist_are_an_error(settings):
    settings.RECOMMENDER = {"PLACEMENT_OPTIONS": {"for_you": {"limit": 4}, "for_yuo": {"limit": 4}}}
    errors = check_placements()
    assert [e.id for e in errors] == ["recommender.E023"] and "for_yuo" in errors[0].msg
