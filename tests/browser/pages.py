"""What the browser tests read off a page, and the steps every journey takes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps


def block(page: Any, placement: str) -> Any:
    return page.locator(f'section[data-placement="{placement}"]')


def titles(page: Any, placement: str) -> list[str]:
    """Product titles of one recommendation block, in the order shown."""
    return block(page, placement).locator("h3 a").evaluate_all("links => links.map(a => a.title)")


def reasons(page: Any, placement: str) -> list[str]:
    return [r.strip() for r in block(page, placement).locator(".recommendation-reason").all_inner_texts()]


def card(page: Any, placement: str, title: str) -> Any:
    return block(page, placement).locator("li.recommendation").filter(has=page.locator(f'h3 a[title="{title}"]'))


def submit(button: Any) -> None:
    """Click a form's button and wait for the page the POST leads to."""
    with button.page.expect_navigation():
        button.click()


def log_in(page: Any, email: str, password: str = "pw") -> None:
    """Through Oscar's own login form."""
    page.goto("/accounts/login/")
    page.fill("#id_login-username", email)
    page.fill("#id_login-password", password)
    page.click("button[name=login_submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@contextmanager
def no_search_indexing() -> Iterator[None]:
    """Oscar turns on Haystack's realtime indexing: every product saved would be written to the
    shop's search index on disk. The journeys never search, so products are not indexed."""
    processor = apps.get_app_config("haystack").signal_processor
    processor.teardown()
    try:
        yield
    finally:
        processor.setup()
