"""What the browser tests read off a page, and the steps every journey takes."""

from __future__ import annotations

from typing import Any


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
