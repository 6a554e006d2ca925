"""The staff report of what recommendations earn: page, CSV, API, experiment forms and commands.

The rows are written directly (a shop whose impressions, clicks, attributed lines and exposures are
known); each figure shown is checked against plain arithmetic on those rows, and each interval
against a direct statsmodels or SciPy call on the raw per-visitor values. The capture of those rows
through the shop's real views and checkout is tested in ``test_capture.py``.
"""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from oscar.core.loading import get_model
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from recommender.measurement import report as reports
from recommender.measurement.assignment import forget_running, running_experiment
from tests.figures import assert_possible

Experiment = get_model("recommender", "Experiment")
Exposure = get_model("recommender", "Exposure")
Impression = get_model("recommender", "Impression")
Click = get_model("recommender", "Click")
AttributedLine = get_model("recommender", "AttributedLine")
Order = get_model("order", "Order")
Line = get_model("order", "Line")

PAGE = "/dashboard/recommendations/report/"
API = "/api/recommendations/report/"

# per-visitor orders and revenue since first exposure (the Exposure rows)
CONTROL = [(0, "0"), (1, "20.00"), (0, "0"), (0, "0"), (2, "35.50"), (0, "0"), (0, "0"), (1, "12.00")]
TREATMENT = [
    (1, "25.00"),
    (0, "0"),
    (2, "60.00"),
    (1, "18.25"),
    (0, "0"),
    (1, "40.00"),
    (0, "0"),
    (3, "90.75"),
    (0, "0"),
    (1, "22.00"),
]


@pytest.fixture(autouse=True)
def _no_experiment_cached():
    forget_running()
    yield
    forget_running()


@dataclass
class Shop:
    experiment: Any
    day1: Any
    day2: Any
    #: (placement, arm) -> expected figures
    expected: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _order_lines(n: int) -> list[Any]:
    order = Order.objects.create(
        number=f"R{Order.objects.count() + 1}",
        currency="GBP",
        total_incl_tax=Decimal("1.00"),
        total_excl_tax=Decimal("1.00"),
        date_placed=timezone.now(),
    )
    return [
        Line.objects.create(
            order=order,
            partner_name="P",
            partner_sku=f"S{i}",
            title=f"Line {i}",
            quantity=1,
            num_allocated=0,
            line_price_incl_tax=Decimal("1.00"),
            line_price_excl_tax=Decimal("1.00"),
            line_price_before_discounts_incl_tax=Decimal("1.00"),
            line_price_before_discounts_excl_tax=Decimal("1.00"),
        )
        for i in range(n)
    ]


def _impressions(n: int, placement: str, arm: str, when: Any, experiment: Any) -> list[Any]:
    return [
        Impression(
            placement=placement,
            arm=arm,
            experiment=experiment,
            created=when,
            visitor_id=f"{i:032x}",
            product_ids=[1, 2, 3],
        )
        for i in range(n)
    ]


def _clicks(n: int, placement: str, arm: str, when: Any, experiment: Any) -> list[Any]:
    return [
        Click(
            impression_id=uuid.uuid4(),
            placement=placement,
            position=1 + i,
            arm=arm,
            experiment=experiment,
            created=when,
            visitor_id=f"{i:032x}",
        )
        for i in range(n)
    ]


def _exposures(experiment: Any, arm: str, values: list[tuple[int, str]], first_seen: Any) -> list[Any]:
    return [
        Exposure(
            experiment=experiment,
            person=f"v{arm}{i}",
            arm=arm,
            orders=orders,
            revenue=Decimal(revenue),
            first_seen=first_seen,
        )
        for i, (orders, revenue) in enumerate(values)
    ]


@pytest.fixture
def shop(db) -> Shop:
    """An experiment of three days with known blocks, clicks, attributed lines and exposures."""
    now = timezone.now()
    experiment = Experiment.objects.create(name="spring test", control_share=0.5, started=now - timedelta(days=3))
    day1, day2 = now - timedelta(days=2), now - timedelta(days=1)
    impressions = {  # (placement, arm): {day: count}
        ("also_viewed", "treatment"): {day1: 6, day2: 4},
        ("also_viewed", "control"): {day1: 3, day2: 2},
        ("also_bought", "treatment"): {day2: 8},
    }
    clicks = {
        ("also_viewed", "treatment"): {day1: 3, day2: 1},
        ("also_viewed", "control"): {day2: 1},
        ("also_bought", "treatment"): {day2: 2},
    }
    attributed = {  # (placement, arm): [(quantity, revenue)]
        ("also_viewed", "treatment"): [(2, "30.00"), (1, "12.50")],
        ("also_bought", "treatment"): [(1, "9.99")],
    }
    rows, click_rows = [], []
    for (placement, arm), days in impressions.items():
        for day, n in days.items():
            rows += _impressions(n, placement, arm, day, experiment)
    # outside the experiment's filter: before it started, and traffic of no experiment
    rows += _impressions(5, "also_viewed", "treatment", now - timedelta(days=10), experiment)
    rows += _impressions(7, "also_viewed", "", day2, None)
    Impression.objects.bulk_create(rows)
    for (placement, arm), days in clicks.items():
        for day, n in days.items():
            click_rows += _clicks(n, placement, arm, day, experiment)
    click_rows += _clicks(2, "also_viewed", "", day2, None)
    Click.objects.bulk_create(click_rows)
    lines = iter(_order_lines(4))
    AttributedLine.objects.bulk_create(
        [
            AttributedLine(
                line=next(lines),
                created=day2,
                placement=placement,
                experiment=experiment,
                arm=arm,
                quantity=q,
                revenue=Decimal(r),
                currency="GBP",
            )
            for (placement, arm), items in attributed.items()
            for q, r in items
        ]
        + [
            AttributedLine(
                line=next(lines), created=day2, placement="also_viewed", arm="", quantity=5, revenue=Decimal("50")
            )
        ]
    )
    Exposure.objects.bulk_create(
        _exposures(experiment, "control", CONTROL, day1) + _exposures(experiment, "treatment", TREATMENT, day1)
    )
    shop = Shop(experiment, day1, day2)
    for key in impressions:
        shown, clicked = sum(impressions[key].values()), sum(clicks.get(key, {}).values())
        bought = attributed.get(key, [])
        shop.expected[key] = {
            "impressions": shown,
            "clicks": clicked,
            "ctr": clicked / shown,
            "attributed_lines": len(bought),
            "click_to_order": len(bought) / clicked,
            "attributed_quantity": sum(q for q, _ in bought),
            "attributed_revenue": sum(float(r) for _, r in bought),
        }
    return shop


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("boss", "boss@example.com", "pw", is_staff=True))
    return client


def _arrays(values: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([o for o, _ in values], float), np.array([float(r) for _, r in values])


def _cells(html: str, row_attrs: str) -> dict[str, str]:
    """The cells (by class) of the table row whose opening tag holds ``row_attrs``."""
    match = re.search(rf"<tr {re.escape(row_attrs)}(?: [^>]*)?>(.*?)</tr>", html, re.S)
    assert match, f"no row {row_attrs}"
    return {m[0].split()[-1]: m[1].strip() for m in re.findall(r'<td class="num ([^"]+)">(.*?)</td>', match.group(1))}


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


# -- the figures ---------------------------------------------------------------------------------


def test_page_shows_each_placement_and_arm_figure(staff, shop):
    running = running_experiment()
    assert running == shop.experiment  # the page opens on it, over its span
    html = staff.get(PAGE).content.decode()
    for (placement, arm), e in shop.expected.items():
        cells = _cells(html, f'data-placement="{placement}" data-arm="{arm}"')
        assert cells["impressions"] == str(e["impressions"]) and cells["clicks"] == str(e["clicks"])
        assert cells["ctr"] == _pct(e["ctr"]) and cells["click-to-order"] == _pct(e["click_to_order"])
        assert cells["lines"] == str(e["attributed_lines"]) and cells["quantity"] == str(e["attributed_quantity"])
        assert cells["revenue"] == f"{e['attributed_revenue']:.2f}"
    total = _cells(html, 'class="total" data-placement="" data-arm="treatment"')
    assert total["impressions"] == "18" and total["clicks"] == "6" and total["ctr"] == _pct(6 / 18)
    assert total["revenue"] == "52.49"
    # the traffic of no experiment and the days before the experiment are not in its report
    assert 'data-arm=""' not in html and "outside any experiment" not in html
    assert html.count("<svg") == 2  # CTR per day; revenue per visitor per group
    assert "clicks per 100 blocks shown" in html and "revenue per visitor (GBP)" in html


def test_page_shows_no_impossible_figure(staff, shop):
    assert_possible(staff.get(PAGE).content.decode(), signed=True)  # changes carry their sign
    assert_possible(staff.get(PAGE, {"experiment": ""}).content.decode(), signed=True)


def test_page_shows_each_arm_figure_and_its_interval(staff, shop):
    html = staff.get(PAGE).content.decode()
    for arm, values in (("control", CONTROL), ("treatment", TREATMENT)):
        orders, revenue = _arrays(values)
        cells = _cells(html, f'data-arm="{arm}"')
        assert cells["visitors"] == str(len(values)) and cells["buyers"] == str(int((orders > 0).sum()))
        assert cells["orders"] == str(int(orders.sum())) and cells["revenue"] == f"{revenue.sum():.2f}"
        assert cells["conversion"] == _pct((orders > 0).mean())
        assert cells["orders-per-visitor"] == f"{orders.mean():.3f}"
        assert cells["revenue-per-visitor"] == f"{revenue.mean():.2f}"
        low, high = DescrStatsW(revenue).tconfint_mean()
        assert cells["revenue-interval"] == f"{low:.2f} to {high:.2f}"


def test_page_comparisons_match_statsmodels_on_the_raw_values(staff, shop):
    html = staff.get(PAGE).content.decode()
    (o_c, r_c), (o_t, r_t) = _arrays(CONTROL), _arrays(TREATMENT)
    # revenue per visitor: Welch's interval of the difference on the raw per-visitor values
    cells = _cells(html, 'data-metric="revenue per visitor"')
    low, high = CompareMeans.from_data(r_t, r_c).tconfint_diff(usevar="unequal")
    assert cells["diff-interval"] == f"{low:+,.2f} to {high:+,.2f}"
    assert cells["control"] == f"{r_c.mean():,.2f}" and cells["treatment"] == f"{r_t.mean():,.2f}"
    assert cells["uplift"] == f"{100 * (r_t.mean() / r_c.mean() - 1):+.1f} %"
    # conversion: Newcombe's interval of the difference of the shares with an order
    cells = _cells(html, 'data-metric="conversion rate"')
    x_c, x_t = int((o_c > 0).sum()), int((o_t > 0).sum())
    low, high = confint_proportions_2indep(x_t, len(o_t), x_c, len(o_c), method="newcomb")
    assert cells["diff-interval"] == f"{100 * low:+.2f} points to {100 * high:+.2f} points"
    # the sample size to detect +5 %, solved independently (equal arms: control share 0.5)
    p = x_c / len(o_c)
    n = math.ceil(NormalIndPower().solve_power(abs(proportion_effectsize(p * 1.05, p)), alpha=0.05, power=0.8, ratio=1))
    assert f"{n:,} in control, {n:,} in treatment ({2 * n:,} in all)" in html
    # eight and ten visitors: far too few; the page says so and claims nothing
    verdicts = re.findall(r'<td colspan="9" class="verdict">(.*?)</td>', html, re.S)
    assert len(verdicts) == 3 and all(v.startswith("Too early to conclude") for v in verdicts)
    assert "table-success" not in html


def test_api_returns_the_same_figures(staff, shop):
    data = staff.get(API).json()
    assert data["experiment"]["name"] == "spring test" and data["experiment"]["running"] is True
    assert data["start"] == (shop.experiment.started.date()).isoformat()
    rows = {(r["placement"], r["arm"]): r for r in data["placements"]}
    assert set(rows) == set(shop.expected)
    for key, e in shop.expected.items():
        for name, value in e.items():
            assert rows[key][name] == pytest.approx(value), (key, name)
    days = {(d["day"], d["placement"], d["arm"]): (d["impressions"], d["clicks"]) for d in data["days"]}
    assert days[(shop.day1.date().isoformat(), "also_viewed", "treatment")] == (6, 3)
    assert days[(shop.day2.date().isoformat(), "also_viewed", "control")] == (2, 1)
    arms = {a["arm"]: a for a in data["arms"]}
    for arm, values in (("control", CONTROL), ("treatment", TREATMENT)):
        orders, revenue = _arrays(values)
        assert arms[arm]["visitors"] == len(values) and arms[arm]["orders"] == orders.sum()
        assert arms[arm]["revenue_per_visitor"] == pytest.approx(revenue.mean())
        assert arms[arm]["conversion_rate"] == pytest.approx((orders > 0).mean())
        low, high = DescrStatsW(revenue).tconfint_mean()
        assert (arms[arm]["revenue_per_visitor_low"], arms[arm]["revenue_per_visitor_high"]) == pytest.approx(
            (low, high)
        )
    comparisons = {c["metric"]: c for c in data["comparisons"]}
    (o_c, r_c), (o_t, r_t) = _arrays(CONTROL), _arrays(TREATMENT)
    for metric, c, t in (("orders per visitor", o_c, o_t), ("revenue per visitor", r_c, r_t)):
        got = comparisons[metric]
        compare = CompareMeans.from_data(t, c)
        assert (got["diff_low"], got["diff_high"]) == pytest.approx(compare.tconfint_diff(usevar="unequal"))
        assert got["p_value"] == pytest.approx(compare.ttest_ind(usevar="unequal")[1])
        assert got["conclusive"] is False
        # the sample size: the spread of every visitor of the test, the control's mean
        everyone = np.concatenate([c, t])
        effect = c.mean() * 0.05 / everyone.std(ddof=1)
        n = math.ceil(NormalIndPower().solve_power(effect, alpha=0.05, power=0.8, ratio=1))
        assert got["sample_size"]["control"] == n
    assert data["verdict"] == comparisons["revenue per visitor"]["verdict"]


def test_csv_export_holds_the_placement_table_of_the_same_filter(staff, shop):
    page = staff.get(PAGE).content.decode()
    link = re.search(r'<a href="([^"]+)" id="report-csv">', page).group(1).replace("&amp;", "&")
    response = staff.get(link)
    assert response["Content-Type"] == "text/csv" and "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    got = {(r["placement"], r["arm"]): r for r in rows}
    assert set(got) == set(shop.expected)
    for key, e in shop.expected.items():
        for name, value in e.items():
            assert float(got[key][name]) == pytest.approx(value), (key, name)
    # all shoppers, the last 30 days: the traffic outside any experiment and the early impressions too
    response = staff.get(PAGE, {"experiment": "", "format": "csv"})
    got = {(r["placement"], r["arm"]): r for r in csv.DictReader(io.StringIO(response.content.decode()))}
    assert got[("also_viewed", "")]["impressions"] == "7" and got[("also_viewed", "")]["clicks"] == "2"
    assert got[("also_viewed", "treatment")]["impressions"] == "15"  # 10 in the experiment's span + 5 before


def test_filters_restrict_the_period_and_are_cached_per_filter(staff, shop):
    one_day = {"start": shop.day2.date().isoformat(), "end": shop.day2.date().isoformat()}
    data = staff.get(API, one_day).json()
    rows = {(r["placement"], r["arm"]): r for r in data["placements"]}
    assert rows[("also_viewed", "treatment")]["impressions"] == 4 and rows[("also_viewed", "treatment")]["clicks"] == 1
    # the exposures were first seen on day 1: none in this period
    assert {a["visitors"] for a in data["arms"]} == {0}
    assert all(c["verdict"].startswith("Not enough data") for c in data["comparisons"])
    Impression.objects.bulk_create(_impressions(3, "also_viewed", "treatment", shop.day2, shop.experiment))
    assert staff.get(API, one_day).json()["placements"] == data["placements"]  # cached for a minute
    flt = reports.make_filter(shop.day2.date(), shop.day2.date(), shop.experiment)
    fresh = reports.report(flt, use_cache=False)["placements"]
    assert next(r for r in fresh if (r["placement"], r["arm"]) == ("also_viewed", "treatment"))["impressions"] == 7
    assert staff.get(API, {"start": "2026-02-30"}).status_code == 400
    assert staff.get(API, {"experiment": "999999"}).status_code == 404
    page = staff.get(PAGE, {"start": "2026-05-02", "end": "2026-05-01"}).content.decode()
    assert "The first day is after the last day." in page


def test_a_clear_effect_is_called_once_the_planned_sample_is_reached(staff, db):
    """2,000 visitors, buyers 10 % in control and 20 % in treatment, the plan for +50 %."""
    experiment = Experiment.objects.create(name="big", control_share=0.5)
    rows = []
    for arm, buyers in (("control", 100), ("treatment", 200)):
        values = [(1, "30.00")] * buyers + [(0, "0")] * (1000 - buyers)
        rows += _exposures(experiment, arm, values, timezone.now())
    Exposure.objects.bulk_create(rows)
    data = staff.get(API, {"uplift": "50"}).json()
    conversion = next(c for c in data["comparisons"] if c["metric"] == "conversion rate")
    assert conversion["conclusive"] is True and conversion["verdict"].startswith("Conversion rate is higher")
    low, high = confint_proportions_2indep(200, 1000, 100, 1000, method="newcomb")
    assert (conversion["diff_low"], conversion["diff_high"]) == pytest.approx((low, high))
    html = staff.get(PAGE, {"uplift": "50"}).content.decode()
    assert "Conversion rate is higher with treatment" in html and "table-success" in html


def test_a_tiny_experiment_says_it_is_too_small(staff, db):
    experiment = Experiment.objects.create(name="tiny", control_share=0.1)
    Exposure.objects.bulk_create(
        _exposures(experiment, "control", [(1, "10")], timezone.now())
        + _exposures(experiment, "treatment", [(0, "0"), (1, "15")], timezone.now())
    )
    html = staff.get(PAGE).content.decode()
    assert "Not enough data to compare yet: 1 visitor in control" in html
    assert "The control group needs visitors with and without an order" in html
    assert "table-success" not in html
    # without any block shown the placement table and its plot say so
    assert "No block was shown in this period" in html


def test_without_experiment_only_the_placement_figures(staff, db):
    data = staff.get(API).json()
    assert data["experiment"] is None and data["arms"] == [] and data["comparisons"] == []
    today = timezone.localdate()
    assert (data["start"], data["end"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
    html = staff.get(PAGE).content.decode()
    assert "Personalised against best sellers" not in html and "No experiment is running" in html


# -- staff only ------------------------------------------------------------------------------


def test_only_staff_see_the_report_or_change_the_experiment(client, django_user_model, db):
    assert reverse("recommender_dashboard:recommender-report") == PAGE
    assert reverse("recommender-api:report") == API
    for url in (PAGE, f"{PAGE}?format=csv"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]
    start = {"start-name": "sneaky", "start-control_share": "0.5", "start-confirm": "on"}
    assert client.post(reverse("recommender_dashboard:recommender-experiment-start"), start).status_code == 302
    assert client.get(API).status_code in (401, 403)
    client.force_login(django_user_model.objects.create_user("shopper", "s@example.com", "pw"))
    assert client.get(PAGE).status_code in (302, 403)
    assert client.get(API).status_code == 403
    assert client.post(reverse("recommender_dashboard:recommender-experiment-start"), start).status_code in (302, 403)
    Experiment.objects.create(name="running")
    assert client.post(
        reverse("recommender_dashboard:recommender-experiment-end"), {"end-confirm": "on"}
    ).status_code in (
        302,
        403,
    )
    assert list(Experiment.objects.values_list("name", "ended")) == [("running", None)]


# -- starting and ending an experiment -------------------------------------------------------


def test_start_needs_the_confirmation_box(staff, settings):
    settings.RECOMMENDER = {"EXPERIMENT_CONTROL_SHARE": 0.2}
    url = reverse("recommender_dashboard:recommender-experiment-start")
    html = staff.get(PAGE).content.decode()
    assert 'name="start-control_share" value="0.2"' in html and 'name="csrfmiddlewaretoken"' in html
    response = staff.post(url, {"start-name": "summer", "start-control_share": "0.2"})
    assert response.status_code == 200 and "Tick the box to confirm" in response.content.decode()
    assert not Experiment.objects.exists()
    response = staff.post(url, {"start-name": "summer", "start-control_share": "0.2", "start-confirm": "on"})
    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert experiment.name == "summer" and experiment.control_share == 0.2 and experiment.ended is None
    assert running_experiment() == experiment
    page = staff.get(response["Location"]).content.decode()
    assert "Experiment “summer” started" in page and "has been running since" in page
    # the same name again is refused; a share outside 1-50 % too
    again = staff.post(url, {"start-name": "summer", "start-control_share": "0.2", "start-confirm": "on"})
    assert again.status_code == 200 and "exists already" in again.content.decode()
    wide = staff.post(url, {"start-name": "autumn", "start-control_share": "0.9", "start-confirm": "on"})
    assert wide.status_code == 200 and Experiment.objects.count() == 1


def test_end_needs_the_confirmation_box(staff, db):
    experiment = Experiment.objects.create(name="to end", control_share=0.1)
    url = reverse("recommender_dashboard:recommender-experiment-end")
    response = staff.post(url, {})
    assert response.status_code == 200 and "Tick the box to confirm" in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.ended is None
    response = staff.post(url, {"end-confirm": "on"})
    assert response.status_code == 302 and response["Location"].endswith(f"?experiment={experiment.pk}")
    experiment.refresh_from_db()
    assert experiment.ended is not None and running_experiment() is None
    assert "Experiment “to end” ended" in staff.get(response["Location"]).content.decode()
    assert staff.get(reverse("recommender_dashboard:recommender-experiment-end")).status_code == 405


def test_start_and_end_commands(db, settings):
    out = io.StringIO()
    call_command("start_experiment", "first", stdout=out)
    first = Experiment.objects.get(name="first")
    assert first.control_share == 0.1 and "started" in out.getvalue()  # EXPERIMENT_CONTROL_SHARE's default
    call_command("start_experiment", "second", "--control-share", "0.25", stdout=out)
    first.refresh_from_db()
    second = Experiment.objects.get(name="second")
    assert first.ended is not None and second.control_share == 0.25 and second.salt != first.salt
    call_command("end_experiment", stdout=out)
    second.refresh_from_db()
    assert second.ended is not None
    out = io.StringIO()
    call_command("end_experiment", stdout=out)
    assert "No experiment is running" in out.getvalue()


def test_the_ctr_chart_takes_the_lazy_titles_placements_have():
    """Placements' titles are lazy translations (the demo's are): the chart labels its lines with them."""
    from datetime import date

    from django.utils.translation import gettext_lazy

    from recommender.dashboard import charts

    days = [{"placement": "also_bought", "arm": "treatment", "day": date(2026, 12, 7), "impressions": 5, "clicks": 3}]
    svg = charts.ctr_per_day(days, {"also_bought": gettext_lazy("Customers who bought this also bought")})
    assert svg.startswith("<svg") and "Customers who bought this also bought" in svg
