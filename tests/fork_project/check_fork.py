"""Run by ``tests/recommender/serving/test_fork.py`` under ``tests.fork_project.settings``: the
fork's new placement and its replaced rung show through the shop's real views."""

from __future__ import annotations

import re

import pytest

from tests.helpers import add_to_basket, browser, checkout, make_product, view_product

pytestmark = pytest.mark.django_db


def test_a_forked_placement_and_rung_show_on_real_pages():
    products = [make_product(f"Fork product {n}") for n in range(8)]
    client = browser()
    add_to_basket(client, products[0])
    checkout(client, guest_email="buyer@example.com")  # a sale: best sellers has something to say
    # the new placement, through the API view: the shop's own rung, newest first
    data = client.get("/api/recommendations/new_in/").json()
    assert data["title"] == "New in the shop"
    assert [i["title"] for i in data["results"]][:3] == ["Fork product 7", "Fork product 6", "Fork product 5"]
    assert {i["reason"] for i in data["results"]} == {"Just arrived"}
    # the replaced rung, on a product page: the fallback blocks speak with the fork's words
    html = view_product(browser(), products[3]).content.decode()
    reasons = set(re.findall(r"recommendation-reason[^>]*>([^<]+)<", html))
    assert "A favourite of our regulars" in reasons and "One of our best sellers" not in reasons
