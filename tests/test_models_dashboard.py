"""The staff "Recommendation models" page, admin actions, and the training task on a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from oscar.core.loading import get_model

from recommender import tasks
from recommender.abstract_models import ModelKind, VersionStatus
from recommender.services import versions
from recommender.services.training import train_recommenders
from tests.test_celery import worker_queue  # noqa: F401  (fixture)
from tests.training_shop import AS_OF, build_shop

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")
LIGHT = {"NEXT_ITEM_MODEL": "hybrid", "MIN_HOLDOUT_CASES": 5}
URL = "/dashboard/recommendations/models/"


@pytest.fixture
def trained(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RECOMMENDER = LIGHT
    versions.forget_loaded()
    shop = build_shop()
    train_recommenders(AS_OF - timedelta(days=10), [ModelKind.ALSO_VIEWED, ModelKind.NEXT_ITEM])
    train_recommenders(AS_OF, [ModelKind.ALSO_VIEWED, ModelKind.NEXT_ITEM])
    yield shop
    versions.forget_loaded()


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(user)
    return client


def test_only_staff_reach_the_page(client, django_user_model, db):
    assert reverse("recommender_dashboard:recommender-models") == URL
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]
    shopper = django_user_model.objects.create_user("shopper", "s@example.com", "pw")
    client.force_login(shopper)
    assert client.get(URL).status_code in (302, 403)
    assert client.post(f"{URL}1/promote/").status_code in (302, 403)
    assert not ModelVersion.objects.exists()


def test_an_empty_shop_shows_how_to_train(staff):
    response = staff.get(URL)
    assert response.status_code == 200
    assert "No model trained yet" in response.content.decode()


def test_page_shows_live_versions_metrics_and_runs(staff, trained):
    page = staff.get(URL).content.decode()
    live = ModelVersion.objects.get(kind=ModelKind.NEXT_ITEM, status=VersionStatus.LIVE)
    assert f"v{live.pk}" in page and "hybrid" in page
    assert f"{100 * live.metrics['candidate']['hr@20']:.2f}" in page
    assert "<svg" in page  # the plot over runs
    assert page.count("Roll back to this") >= 1  # the earlier, retired versions


def test_product_preview_lists_five_similar_products(staff, trained):
    product = trained.products[6]
    page = staff.get(URL, {"product": product.upc}).content.decode()
    assert 'class="product-preview"' in page
    assert page.index(trained.pair_of(product).get_title()) > page.index("Customers who viewed this also viewed")
    assert staff.get(URL, {"product": "no such thing"}).content.decode().count("No such product") == 1


def test_customer_preview_shows_for_you_with_its_history(staff, trained):
    user = trained.users[3]
    page = staff.get(URL, {"customer": user.email}).content.decode()
    assert 'class="customer-preview"' in page and "From this history" in page
    assert "Product 06" in page and "Product 07" in page


def test_rollback_and_retire_buttons(staff, trained):
    live = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    earlier = ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.RETIRED).get()
    response = staff.post(f"{URL}{earlier.pk}/promote/", follow=True)
    assert response.status_code == 200 and "is live" in response.content.decode()
    earlier.refresh_from_db()
    live.refresh_from_db()
    assert earlier.status == VersionStatus.LIVE and earlier.promoted_by.username == "staff"
    assert live.status == VersionStatus.RETIRED
    staff.post(f"{URL}{earlier.pk}/retire/")
    assert not ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE).exists()
    # a version without files (rejected, failed, pruned) cannot be promoted
    ModelVersion.objects.filter(pk=live.pk).update(artifact_path="", files={})
    page = staff.post(f"{URL}{live.pk}/promote/", follow=True).content.decode()
    assert "has no files" in page


def test_admin_lists_versions_and_promotes(admin_client, trained):
    earlier = ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.RETIRED).get()
    changelist = reverse("admin:recommender_modelversion_changelist")
    assert admin_client.get(changelist).status_code == 200
    admin_client.post(changelist, {"action": "promote_versions", "_selected_action": [earlier.pk]})
    earlier.refresh_from_db()
    assert earlier.status == VersionStatus.LIVE
    assert admin_client.get(reverse("admin:recommender_trainingrun_changelist")).status_code == 200


@pytest.fixture
def worker_var(monkeypatch, tmp_path):
    """The worker started by ``worker_queue`` keeps its files (model storage) in a temporary folder."""
    monkeypatch.setenv("SHOP_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.mark.redis
@pytest.mark.postgres
def test_the_task_trains_on_a_real_worker(worker_var, worker_queue, settings):  # noqa: F811
    build_shop()
    media = str(worker_var / "media")
    result = tasks.train_recommenders.apply_async(
        kwargs={"as_of": AS_OF.date().isoformat(), "kinds": ["trending", "also_viewed"]}, queue=worker_queue
    ).get(timeout=300)
    run = TrainingRun.objects.get(pk=result["run"])
    assert result["status"] == run.status == "succeeded", run.error
    assert result["kinds"]["also_viewed"] == "live"
    version = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    settings.MEDIA_ROOT = media
    versions.forget_loaded()
    assert versions.load(version).product_ids
    # a second task while the first holds the lock is skipped, never run twice at once
    from recommender.locks import task_lock

    with task_lock("recommender.train_recommenders"):
        skipped = tasks.train_recommenders.apply_async(queue=worker_queue).get(timeout=60)
    assert skipped == {"skipped": "locked"}
