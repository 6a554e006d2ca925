"""Malformed input from staff (and files) is a clear 4xx or error, never a 500 nor a silent misread.

Everything goes through the real views with Django's test client, with ``DEBUG`` off (as
pytest-django runs) and ``raise_request_exception`` off, so a server error would show as a
500 and as an ERROR record of the ``django.request`` logger, which every test asserts there is
none of.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oscar.core.loading import get_model
from oscar.test.factories import UserFactory

from segmentation import services
from segmentation.params import MAX_INT, ORDERINGS
from segmentation.testing import make_order
from tests.helpers import BROWSER

pytestmark = pytest.mark.django_db

API = "/api/segmentation/memberships/"
SEGMENT = "/dashboard/segments/segment/"
OVERVIEW = "/dashboard/segments/"
EVIL_EMAIL = "=cmd|'/Ccalc'!A0@example.com"
HYPOTHESIS = settings(
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def server_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """ERROR records of ``django.request`` (a 500 logs one, with its traceback)."""
    caplog.set_level(logging.WARNING, logger="django.request")
    records: list[logging.LogRecord] = []
    yield records
    records.extend(r for r in caplog.records if r.name == "django.request" and r.levelno >= logging.ERROR)
    assert not records, [r.getMessage() for r in records]


@pytest.fixture
def run(settings: Any) -> Any:
    """One segmentation run over a few customers, one of them with a formula for an e-mail."""
    settings.SEGMENTATION = {"BACKTEST_ENABLED": False}
    users = [UserFactory(email=f"c{i}@example.com") for i in range(5)] + [UserFactory(email=EVIL_EMAIL)]
    for i, user in enumerate(users):
        for n in range(1 + i % 3):
            make_order(user=user, total=20 + 7 * i + n, placed=f"2024-0{1 + n + i % 3}-1{i}")
    make_order(guest_email="+44@example.com", total=12, placed="2024-05-02")
    return services.run_segmentation(date(2024, 6, 30))


@pytest.fixture
def staff(client: Any, server_errors: list) -> Any:
    client.force_login(UserFactory(is_staff=True))
    client.raise_request_exception = False  # a crash is a 500 response, as a real server gives
    return client


# -- the table of malformed requests ------------------------------------------------------------

LONG_NUMBER = "9" * 30
BAD_INTEGERS = ["²", "٣", "1\x00", "\x00", "1.0", " 1", LONG_NUMBER, "0x10", "1e3", "-0-1"]
MALFORMED_GET = [
    *[(API, {"run": v}) for v in [*BAD_INTEGERS, "current\x00", "x" * 100, "-1"]],
    *[(API, {"user": v}) for v in [*BAD_INTEGERS, "0", "-5", str(MAX_INT + 1)]],
    *[(API, {"cluster": v}) for v in [*BAD_INTEGERS, "--1", "-2"]],
    (API, {"segment": "x" * 65}),
    (API, {"segment": "Champions\x00"}),
    (API, {"guest_email": "a\x00@example.com"}),
    (API, {"guest_email": "x" * 255}),
    (API, {"churn_risk": "maybe"}),
    (API, {"churn_risk": "\x00"}),
    (API, {"page": "²"}),
    (API, {"page": "\x00"}),
    ("/api/segmentation/runs/%C2%B2/", {}),
    ("/api/segmentation/runs/%00/", {}),
    (f"/api/segmentation/runs/{LONG_NUMBER}/", {}),
    (SEGMENT, {"run": "²"}),
    (SEGMENT, {"run": "1\x00"}),
    (SEGMENT, {"run": LONG_NUMBER}),
    (SEGMENT, {"name": "x" * 65}),
    (SEGMENT, {"name": "Champions\x00"}),
    (SEGMENT, {"churn": "2"}),
    (SEGMENT, {"cluster": "²"}),
    (SEGMENT, {"r": "6"}),
    (SEGMENT, {"f": "٣"}),
    (SEGMENT, {"m": "0"}),
    (SEGMENT, {"q": "\x00"}),
    (SEGMENT, {"q": "x" * 300}),
    (SEGMENT, {"order": "--monetary"}),
    (SEGMENT, {"order": "-pk"}),
    (SEGMENT, {"order": "user__password"}),
    (SEGMENT, {"order": "monetary\x00"}),
    (SEGMENT, {"page": "²"}),
    (SEGMENT, {"format": "xlsx"}),
    (SEGMENT, {"format": "csv", "name": "x" * 65}),
    (OVERVIEW, {"run": "²"}),
    (OVERVIEW, {"run": "\x00"}),
    (OVERVIEW, {"run": LONG_NUMBER}),
    (f"{OVERVIEW}customer/{LONG_NUMBER}/", {}),
    (f"{OVERVIEW}customer/%D9%A3/", {}),  # an Arabic-Indic 3 is not user 3
    ("/api/recommendations/trending/", {"limit": "٣"}),
    ("/api/recommendations/trending/", {"product": "1\x00"}),
    ("/api/recommendations/trending/", {"product": LONG_NUMBER}),
    (f"{OVERVIEW}guest/", {"email": "a\x00@example.com"}),
    (f"{OVERVIEW}guest/", {"email": "x" * 300}),
    (f"{OVERVIEW}behaviour/", {"format": "csv", "table": "\x00"}),
]


def test_malformed_requests_are_4xx_with_the_reason(staff: Any, run: Any) -> None:
    assert len(MALFORMED_GET) >= 66
    answers = {(url, repr(params)): staff.get(url, params).status_code for url, params in MALFORMED_GET}
    assert {key: code for key, code in answers.items() if not 400 <= code < 500} == {}
    r = staff.get(SEGMENT, {"order": "--monetary", "r": "²"})
    assert r.status_code == 400 and "order" in r.content.decode() and "r:" in r.content.decode()
    r = staff.get(API, {"user": "²"})
    assert r.status_code == 400 and "user" in r.json()


def test_good_requests_still_work(staff: Any, run: Any) -> None:
    member = run.memberships.filter(user__isnull=False).first()
    assert staff.get(API, {"run": run.pk, "user": member.user_id, "churn_risk": "false"}).status_code == 200
    every = staff.get(API, {"run": "all", "segment": member.segment, "cluster": ""}).json()["results"]
    assert every and all(m["segment"] == member.segment for m in every)
    for order in ORDERINGS:
        r = staff.get(SEGMENT, {"order": order, "name": "", "churn": "", "r": " ", "format": "csv"})
        assert r.status_code == 200 and len(b"".join(r.streaming_content).splitlines()) == 1 + run.n_customers
    assert staff.get(SEGMENT, {"order": "-monetary", "churn": "1", "q": "example"}).status_code == 200
    html = staff.get(OVERVIEW, {"wi_r": "²", "wi_f": "1", "wi_m": "10"}).content.decode()
    assert "Give whole days since the last order" in html  # the what-if form says what it wants


def test_offer_form_rejects_what_the_database_would_refuse(staff: Any, run: Any) -> None:
    ConditionalOffer = get_model("offer", "ConditionalOffer")
    url = reverse("segmentation_dashboard:segmentation-create-offer")
    for data in (
        {"segment": "x" * 65},
        {"segment": "a\x00"},
        {"segment": "Champions", "percent": "NaN"},
        {"segment": "Champions", "percent": "1e400"},
        {"segment": "Champions", "percent": "²"},
    ):
        r = staff.post(url, data)
        assert r.status_code == 302 and r["Location"] == OVERVIEW, data
    assert "No offer created: segment: Ensure" in staff.get(OVERVIEW).content.decode()
    assert not ConditionalOffer.objects.exists()


def test_admin_filters_refuse_nul(client: Any, server_errors: list) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    client.raise_request_exception = False
    for url in ("customersegment", "segmentationrun", "segmenttarget"):
        assert client.get(f"/admin/segmentation/{url}/", {"segment": "\x00", "q": "a"}).status_code == 400
        assert client.get(f"/admin/segmentation/{url}/", {"q": "a"}).status_code == 200


def _basic(credentials: bytes) -> str:
    import base64

    return "Basic " + base64.b64encode(credentials).decode()


def test_a_nul_character_anywhere_gets_400_never_500(client: Any, server_errors: list) -> None:
    """NUL in Basic credentials, a query string or a header reaches no view (PostgreSQL refuses NUL
    in text: these were 500s there)."""
    client.raise_request_exception = False
    for url in ("/api/recommendations/for_you/", "/api/schema/", "/api/segmentation/runs/"):
        response = client.get(url, HTTP_AUTHORIZATION=_basic(b"a\x00b:x"), HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 400 and b"Basic credentials" in response.content
        assert client.get(url, HTTP_AUTHORIZATION=_basic(b"ab:x"), HTTP_USER_AGENT=BROWSER).status_code in (401, 403)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for url, params in (
        ("/dashboard/recommendations/models/", {"product": "\x00"}),
        ("/dashboard/recommendations/models/", {"customer": "a\x00"}),
        ("/admin/recommender/event/", {"visitor_id": "\x00"}),
        ("/catalogue/", {"q": "mug\x00"}),
    ):
        assert client.get(url, params).status_code == 400, (url, params)
        assert client.get(url).status_code == 200, url
    assert client.get("/catalogue/", HTTP_X_CUSTOM="a\x00b").status_code == 400


# -- property tests: open-ended parameter values through the real views ------------------------


STAFF_QUERIES = [
    ("/dashboard/recommendations/models/", "product"),
    ("/dashboard/recommendations/models/", "customer"),
    ("/admin/recommender/event/", "visitor_id"),
    ("/admin/recommender/event/", "q"),
    ("/admin/recommender/modelversion/", "q"),
]


@HYPOTHESIS
@given(value=st.text(max_size=300))
def test_the_staff_pages_answer_any_query_string_without_a_server_error(
    client: Any, server_errors: list, value: str
) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    client.raise_request_exception = False
    for url, key in STAFF_QUERIES:
        assert client.get(url, {key: value}).status_code in (200, 400), (url, key, value)


INTEGER_TEXT = st.one_of(
    st.text(max_size=14),
    st.from_regex(r"\A-?[0-9]{1,14}\Z"),
    st.sampled_from(["²", "٣", "१२", "1.0", "+1", "1\x00", "\x00", "", " ", "-1", "0"]),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
)
#: (url, parameter, smallest, largest)
INTEGER_PARAMETERS = [
    (API, "user", 1, MAX_INT),
    (API, "cluster", -1, MAX_INT),
    (SEGMENT, "cluster", -1, MAX_INT),
    (SEGMENT, "r", 1, 5),
    (SEGMENT, "page", 1, MAX_INT),
    (SEGMENT, "run", 1, MAX_INT),
]


def _get(client: Any, url: str, params: dict[str, str]) -> int:
    """The status of a GET; the segment page as its CSV export (the same parsing, no template to render)."""
    if url == SEGMENT:
        params = {**params, "format": "csv"}
    response = client.get(url, params)
    if response.streaming:
        b"".join(response.streaming_content)  # the query runs as the file is sent
    return response.status_code


def _integer_ok(value: str, low: int, high: int) -> bool:
    if value.strip() == "":
        return True  # not given
    return re.fullmatch(r"-?[0-9]+", value, re.ASCII) is not None and low <= int(value) <= high


@given(where=st.sampled_from(INTEGER_PARAMETERS), value=INTEGER_TEXT)
@HYPOTHESIS
def test_integer_parameters_are_ascii_digits_in_range(staff: Any, run: Any, where: tuple, value: str) -> None:
    url, name, low, high = where
    status = _get(staff, url, {name: value})
    if name == "run" and _integer_ok(value, low, high) and value.strip():
        assert status == (200 if int(value) == run.pk else 404), (value, status)
    else:
        assert status == (200 if _integer_ok(value, low, high) else 400), (name, value, status)


TEXT = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=70),
    st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=5), st.text(max_size=5)),
)
#: (url, parameter, longest)
TEXT_PARAMETERS = [(API, "segment", 64), (API, "guest_email", 254), (SEGMENT, "name", 64), (SEGMENT, "q", 254)]


@given(where=st.sampled_from(TEXT_PARAMETERS), value=TEXT)
@HYPOTHESIS
def test_text_parameters_without_nul_within_the_column(staff: Any, run: Any, where: tuple, value: str) -> None:
    url, name, longest = where
    text = value.strip()
    ok = text == "" or ("\x00" not in text and len(text) <= longest)
    status = _get(staff, url, {name: value})
    assert status == (200 if ok else 400), (name, value, status)


@given(value=st.one_of(st.text(max_size=20), st.sampled_from(ORDERINGS).map(lambda o: f"-{o}")))
@HYPOTHESIS
def test_ordering_is_an_exact_choice(staff: Any, run: Any, value: str) -> None:
    ok = value.strip() == "" or value in ORDERINGS
    assert _get(staff, SEGMENT, {"order": value}) == (200 if ok else 400), value


# -- CSV exports --------------------------------------------------------------------------------


def test_csv_cells_cannot_be_formulas(staff: Any, run: Any) -> None:
    r = staff.get(SEGMENT, {"format": "csv"})
    assert r.status_code == 200
    text = b"".join(r.streaming_content).decode()
    assert f"'{EVIL_EMAIL}" in text and ",=cmd" not in text
    assert "'+44@example.com" in text
    for line in text.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@", "\t")), line


def test_csv_file_name_cannot_break_the_header(staff: Any, run: Any) -> None:
    r = staff.get(SEGMENT, {"format": "csv", "name": 'Big "spenders"\r\nSet-Cookie: x=1'})
    assert r.status_code == 200
    header = r["Content-Disposition"]
    assert header.startswith("attachment; filename=") and "\r" not in header and "\n" not in header
    assert re.fullmatch(r'attachment; filename="segment-Big-spenders-Set-Cookie-x-1-\d{8}\.csv"', header), header
    assert "Set-Cookie" not in {k for k, _ in r.items()}


# -- the importer -------------------------------------------------------------------------------

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
GOOD = "536365,85123A,WHITE MUG,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            HEADER + GOOD + "536366,22633,HAND WARMER,7,12/1/2010 8:28,1,50,17850,United Kingdom\n",
            r"line 3 has 9 fields, expected 8 .*UnitPrice='1', CustomerID='50', Country='17850', then 'United Kingdom'",
        ),
        (
            HEADER + GOOD + "536367,22633,HAND WARMER,7,12/1/2010 8:28,1.85,17850\n",
            r"line 3 has 7 fields, expected 8 .*CustomerID='17850', Country missing",
        ),
        ("", r"the file is empty \(expected a header line: InvoiceNo"),
        (HEADER, r"a header but no data lines"),
        ("Invoice;Stock;Qty\n1;2;3\n", r"missing required column\(s\): InvoiceNo, StockCode"),
    ],
    ids=["extra-comma", "missing-field", "empty", "header-only", "wrong-columns"],
)
def test_importer_fails_clearly_and_writes_nothing(tmp_path: Path, content: str, message: str) -> None:
    Order = get_model("order", "Order")
    Product = get_model("catalogue", "Product")
    path = tmp_path / "online_retail.csv"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_online_retail", str(path), "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    assert not Order.objects.exists() and not Product.objects.exists()


# -- model files --------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["nan", "inf", "shape"])
def test_a_model_file_with_bad_weights_is_refused_and_the_fallback_serves(
    settings: Any, tmp_path: Path, server_errors: list, damage: str
) -> None:
    from oscar.test.factories import create_order

    from recommender import artifacts
    from recommender.abstract_models import ModelKind, VersionStatus
    from recommender.ml.popularity import TrendingRecommender
    from recommender.services import versions
    from tests.helpers import browser, make_product

    settings.MEDIA_ROOT = str(tmp_path)
    versions.forget_loaded()
    ModelVersion = get_model("recommender", "ModelVersion")
    products = [make_product(f"Mug {i}") for i in range(3)]
    sold = create_order().lines.get().product  # something for the best-sellers rung
    model = TrendingRecommender()
    model.n_items_ = 3
    model.scores_ = {
        "nan": np.full(3, np.nan, dtype=np.float32),
        "inf": np.full(3, np.inf, dtype=np.float32),
        "shape": np.ones(2, dtype=np.float32),  # the config says 3 items
    }[damage]
    version = ModelVersion.objects.create(kind=ModelKind.TRENDING, model_name="trending", status=VersionStatus.LIVE)
    folder, files = artifacts.write(model, [p.pk for p in products], ModelKind.TRENDING, version.pk)
    ModelVersion.objects.filter(pk=version.pk).update(artifact_path=folder, files=files)  # checksums match
    version.refresh_from_db()

    expected = {"nan": "NaN or never finite", "inf": "NaN or never finite", "shape": "scores"}[damage]
    with pytest.raises(artifacts.ArtifactError, match=expected):
        versions.load(version)
    for path in (tmp_path / folder).iterdir():
        path.unlink()  # a damaged version is not fetched again for a while: the same error, at once
    with pytest.raises(artifacts.ArtifactError, match=expected):
        versions.load(version)
    client = browser()
    client.raise_request_exception = False
    r = client.get(reverse("recommender-api:recommendations", kwargs={"placement": "trending"}))
    assert r.status_code == 200
    assert [(x["id"], x["source"]) for x in r.json()["results"]] == [(sold.pk, "best_sellers")]
    assert client.get("/catalogue/").status_code == 200
    versions.forget_loaded()
