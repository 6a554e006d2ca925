"""The staff "Recommendation models" page, admin actions, and the training task on a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, VersionStatus
from recommender.services.training import train_recommenders
from tests.training_shop import AS_OF, module_shop, shop_per_test

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")
URL = "/dashboard/recommendations/models/"


def _train_twice(shop) -> None:
    train_recommenders(AS_OF - timedelta(days=10), [ModelKind.ALSO_VIEWED, ModelKind.NEXT_ITEM])
    train_recommenders(AS_OF, [ModelKind.ALSO_VIEWED, ModelKind.NEXT_ITEM])


trained_shop = module_shop(_train_twice)


trained = shop_per_test()


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(user)
    return client


def test_only_staff_reach_the_page(client, django_user_model, db):
    assert reverse("recommender_dashboard:recommender-models") == URL
    versions_before = list(ModelVersion.objects.values_list("pk", "status"))
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]
    shopper = django_user_model.objects.create_user("shopper", "s@example.com", "pw")
    client.force_login(shopper)
    assert client.get(URL).status_code in (302, 403)
    assert client.post(f"{URL}1/promote/").status_code in (302, 403)
    assert list(ModelVersion.objects.values_list("pk", "status")) == versions_before


def test_an_empty_shop_shows_how_to_train(staff):
    ModelVersion.objects.all().delete()  # (the module's trained shop may be committed already)
    TrainingRun.objects.all().delete()
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
    user = trained.users[3]  # bought Product 06 and 07: in the history, never in the block
    page = staff.get(URL, {"customer": user.email}).content.decode()
    assert 'class="customer-preview"' in page and "From this history" in page
    block = page[page.index('class="customer-preview"') : page.index("From this history")]
    history = page[page.index("From this history") :]
    assert "Product 06" in history and "Product 07" in history
    assert ">Product 06</a>" not in block and ">Product 07</a>" not in block and "(model, v" in block


def test_the_page_names_the_recurrent_cell(staff, trained):
    version = ModelVersion.objects.get(kind=ModelKind.NEXT_ITEM, status=VersionStatus.LIVE)
    ModelVersion.objects.filter(pk=version.pk).update(model_name="blend", parameters={"network": "lstm"})
    assert "blend (LSTM)" in staff.get(URL).content.decode()


def test_rollback_and_retire_ask_for_confirmation_first(staff, trained):
    live = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    earlier = ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.RETIRED).get()
    page = staff.get(URL).content.decode()
    assert f'href="{URL}{earlier.pk}/promote/"' in page and f'href="{URL}{live.pk}/retire/"' in page
    # the button opens a page that says what changes; a POST without the box ticked changes nothing
    confirm = staff.get(f"{URL}{earlier.pk}/promote/").content.decode()
    assert "Roll back to this version" in confirm and f"instead of v{live.pk}" in confirm
    refused = staff.post(f"{URL}{earlier.pk}/promote/").content.decode()
    assert "Tick the box to confirm: nothing was changed." in refused
    assert ModelVersion.objects.get(pk=live.pk).status == VersionStatus.LIVE
    response = staff.post(f"{URL}{earlier.pk}/promote/", {"confirm": "on"}, follow=True)
    assert response.status_code == 200 and "is live" in response.content.decode()
    earlier.refresh_from_db()
    live.refresh_from_db()
    assert earlier.status == VersionStatus.LIVE and earlier.promoted_by.username == "staff"
    assert live.status == VersionStatus.RETIRED
    assert "stops serving" in staff.get(f"{URL}{earlier.pk}/retire/").content.decode()
    staff.post(f"{URL}{earlier.pk}/retire/")
    assert ModelVersion.objects.get(pk=earlier.pk).status == VersionStatus.LIVE  # not confirmed
    staff.post(f"{URL}{earlier.pk}/retire/", {"confirm": "on"})
    assert not ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE).exists()
    # a version without files (rejected, failed, pruned) cannot be promoted
    ModelVersion.objects.filter(pk=live.pk).update(artifact_path="", files={})
    page = staff.post(f"{URL}{live.pk}/promote/", {"confirm": "on"}, follow=True).content.decode()
    assert "has no files" in page


def test_admin_lists_versions_and_promotes(admin_client, trained):
    from django.contrib.messages import get_messages

    earlier = ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.RETIRED).get()
    current = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    changelist = reverse("admin:recommender_modelversion_changelist")
    response = admin_client.get(changelist)
    assert response.status_code == 200
    listed = response.context["cl"].result_list
    assert sorted(v.pk for v in listed) == sorted(ModelVersion.objects.values_list("pk", flat=True))
    page = response.content.decode()
    for version in listed:  # each row: its kind, model, status and the gate metric against popularity
        assert reverse("admin:recommender_modelversion_change", args=[version.pk]) in page
        candidate = f"hr@20 {100 * version.metrics['candidate']['hr@20']:.2f}"
        assert f'<td class="field-gate_value">{candidate}</td>' in page
        popularity = f"{100 * version.metrics['popularity']['hr@20']:.2f}"
        assert f'<td class="field-popularity_value">{popularity}</td>' in page
    response = admin_client.post(changelist, {"action": "promote_versions", "_selected_action": [earlier.pk]})
    assert response.status_code == 302
    earlier.refresh_from_db()
    current.refresh_from_db()
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"{earlier} is live."]
    assert earlier.status == VersionStatus.LIVE and earlier.promoted_by.is_superuser
    assert current.status == VersionStatus.RETIRED
    runs = admin_client.get(reverse("admin:recommender_trainingrun_changelist"))
    assert runs.status_code == 200
    listed_runs = sorted(run.pk for run in runs.context["cl"].result_list)
    assert len(listed_runs) == 2 and listed_runs == sorted(TrainingRun.objects.values_list("pk", flat=True))


def test_a_live_version_whose_files_fail_to_load_is_shown_with_since_when(staff, trained, settings):
    from pathlib import Path

    from recommender.services import versions
    from recommender.serving.blocks import Visitor
    from recommender.serving.service import recommend

    live = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    assert "load-problem" not in staff.get(URL).content.decode()
    tensors = Path(settings.MEDIA_ROOT) / live.artifact_path / "model.safetensors"
    intact = tensors.read_bytes()
    try:
        tensors.write_bytes(intact[:-8])
        versions.forget_loaded()
        # a shopper's page meets the damage first: the fallback answers, the time is recorded
        block = recommend(None, "also_viewed", product=trained.products[6], visitor=Visitor(None, ""))
        assert block.items and block.items[0].rung != "also_viewed"
        page = staff.get(URL).content.decode()
        assert 'class="text-danger load-problem"' in page and "checksum" in page
        versions.forget_loaded()
        page_again = staff.get(URL).content.decode()  # another process: the same first time
        since = page[page.index("fail to load since") :][:40]
        assert since in page_again
    finally:
        tensors.write_bytes(intact)
        versions.forget_loaded()
    assert "load-problem" not in staff.get(URL).content.decode()
