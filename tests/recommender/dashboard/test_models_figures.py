"""Every figure of the "Recommendation models" page against the rows this test wrote.

The runs and versions are written directly with known metrics (the live one with real model
files, so it loads); each cell is worked out from those rows in plain Python. Metric names are
words, their code names in tooltips; a kind with one version is a point on the plot.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.utils import timezone
from oscar.core.loading import get_model

from recommender import artifacts
from recommender.abstract_models import ModelKind, VersionStatus
from recommender.ml.popularity import TrendingRecommender
from recommender.services import versions
from tests.figures import assert_possible, parse, tables
from tests.helpers import make_product

pytestmark = pytest.mark.django_db

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")
URL = "/dashboard/recommendations/models/"
ZONE = "Asia/Tokyo"
WORDS = "share of next products found in the top 20"
DASH = "\u2013"  # an en dash: no figure


def _metrics(hr, mrr, ndcg, coverage, pop, live=None, cases=120, p=None):
    m = {
        "gate_metric": "hr@20",
        "n_cases": cases,
        "candidate": {"hr@20": hr, "mrr@20": mrr, "ndcg@20": ndcg, "coverage@20": coverage},
        "popularity": {"hr@20": pop},
    }
    if live is not None:
        m["live"] = {"hr@20": live}
    if p is not None:
        m["gate"] = {"p_value": p}
    return m


@pytest.fixture
def shop(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.TIME_ZONE = ZONE
    versions.forget_loaded()
    products = [make_product(f"Mug {i}") for i in range(3)]
    first = TrainingRun.objects.create(
        as_of=datetime(2026, 5, 1, 22, 30, tzinfo=UTC),
        status="succeeded",
        trigger="nightly",
        counts={"log": {"purchases": 1200, "views": 5400, "basket_additions": 800, "people": 310}},
        timings={"total": 42.5, "export": 3.25},
        peak_rss_mb=512.0,
    )
    second = TrainingRun.objects.create(as_of=datetime(2026, 5, 2, 22, 30, tzinfo=UTC), status="succeeded")
    rows = {
        "retired": ModelVersion.objects.create(
            run=first,
            kind=ModelKind.TRENDING,
            model_name="trending",
            status=VersionStatus.RETIRED,
            reason="beats popularity",
            metrics=_metrics(0.25, 0.1, 0.15, 0.4, 0.2, cases=120, p=0.5),
            timings={"fit": 1.5},
            data_end=first.as_of,
        ),
        "live": ModelVersion.objects.create(
            run=second,
            kind=ModelKind.TRENDING,
            model_name="trending",
            status=VersionStatus.LIVE,
            reason="beats popularity",
            metrics=_metrics(0.3125, 0.125, 0.2, 0.5, 0.2, live=0.25, cases=96, p=0.125),
            timings={"fit": 2.0},
            data_end=second.as_of,
            promoted_at=datetime(2026, 5, 3, 1, 0, tzinfo=UTC),
        ),
        "rejected": ModelVersion.objects.create(
            run=second,
            kind=ModelKind.ALSO_VIEWED,
            model_name="itemknn",
            status=VersionStatus.REJECTED,
            reason="not better than popularity",
            metrics=_metrics(0.05, 0.02, 0.03, 0.1, 0.06, cases=40),
        ),
    }
    for version in (rows["retired"], rows["live"]):  # real files: the live one loads, the retired one can come back
        model = TrendingRecommender()
        model.n_items_ = 3
        model.scores_ = np.array([3.0, 2.0, 1.0], dtype=np.float32)
        folder, files = artifacts.write(model, [p.pk for p in products], ModelKind.TRENDING, version.pk)
        ModelVersion.objects.filter(pk=version.pk).update(artifact_path=folder, files=files)
        version.refresh_from_db()
    yield rows, (first, second)
    versions.forget_loaded()


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("boss", "boss@example.com", "pw", is_staff=True))
    return client


def _pct(share):
    return f"{100 * share:.2f}"


def _local(when):
    return timezone.localtime(when, ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M")


def test_each_figure_of_the_models_page(staff, shop):
    rows, (first, _second) = shop
    html = staff.get(URL).content.decode()
    assert_possible(html)
    found = tables(html)
    # the live version: its gate metric in words (code in the tooltip), each figure in %
    live = rows["live"]
    row = next(r for r in found["live-versions"].rows if r.attrs.get("data-kind") == ModelKind.TRENDING)
    cells = row.by_class()
    m = live.metrics
    assert cells["gate-metric"] == WORDS and f'<span title="hr@20">{WORDS}</span>' in html
    assert cells["candidate"] == f"{_pct(m['candidate']['hr@20'])} %"  # 31.25 %
    assert cells["popularity"] == f"{_pct(m['popularity']['hr@20'])} %"
    assert cells["live"] == f"{_pct(m['live']['hr@20'])} %"
    texts = row.texts()
    assert _local(live.data_end) in texts and _local(live.promoted_at) in texts  # in the shop's zone
    # every version: each metric of its row
    for version in rows.values():
        cells = next(r for r in found["versions"].rows if r.attrs.get("data-version") == str(version.pk)).by_class()
        m = version.metrics
        assert cells["cases"] == str(m["n_cases"])
        for cls, key in (("hr", "hr@20"), ("mrr", "mrr@20"), ("ndcg", "ndcg@20"), ("coverage", "coverage@20")):
            assert cells[cls] == _pct(m["candidate"][key]), cls
        assert cells["popularity-hr"] == _pct(m["popularity"]["hr@20"])
        assert cells["live-hr"] == (_pct(m["live"]["hr@20"]) if "live" in m else "-")
        assert cells["p"] == (f"{m['gate']['p_value']:.3f}" if "gate" in m else DASH)
        assert cells["fit"] == (f"{version.timings['fit']}" if version.timings else DASH)
    # the runs: their counts, seconds and dates in the shop's zone
    run = next(r for r in found["runs"].rows if r.attrs.get("data-run") == str(first.pk))
    cells = run.by_class()
    c = first.counts["log"]
    read = f"{c['purchases']} purchases, {c['views']} views, {c['basket_additions']} basket additions"
    assert cells["read"] == f"{read}, {c['people']} people"
    assert (cells["seconds"], cells["export"], cells["peak"]) == ("42.5", "3.25", "512.0")
    assert _local(first.as_of) in run.texts() and _local(first.created) in run.texts()
    # code names only in tooltips: the visible text says what the metrics are
    visible = " ".join(parse(html).text)
    assert not re.search(r"(?i)\b(hr|mrr|ndcg|coverage)@\d+", visible)
    assert f"{WORDS} (%)" in html  # the plot's axis (the SVG's text)


def test_one_version_is_a_point_on_a_sensible_axis(staff, shop):
    rows, _runs = shop
    ModelVersion.objects.exclude(pk=rows["live"].pk).delete()
    html = staff.get(URL).content.decode()
    plot = html[html.index("Candidates over runs") : html.index('id="versions"')]
    ticks = re.findall(r"<!-- (\S+) -->", plot)
    # one version of one kind: the x axis is that version ("1"), not -0.04 to 0.04 around it
    assert "1" in ticks and not [t for t in ticks if t.startswith("\u2212") or re.fullmatch(r"\d\.\d\d", t)], ticks


def test_the_confirmation_page_shows_what_changes(staff, shop):
    rows, _runs = shop
    live, retired = rows["live"], rows["retired"]
    page = staff.get(f"{URL}{retired.pk}/promote/").content.decode()
    assert_possible(page)
    assert f"v{retired.pk} (trending) will serve the “Trending now” blocks instead of v{live.pk}" in page
    shown = {r.cells[0].text: r.by_class() for r in tables(page)["confirm-versions"].rows}
    assert shown[f"v{retired.pk}"]["candidate"] == "25.00 %" and shown[f"v{live.pk}"]["candidate"] == "31.25 %"
    assert shown[f"v{retired.pk}"]["popularity"] == "20.00 %"
    assert ModelVersion.objects.get(pk=live.pk).status == VersionStatus.LIVE  # looking changes nothing
