"""The demo shop with a fork of the recommendation blocks (the README's "Change what a block
shows"): the app ``yourshop_serving`` is installed under the label ``recommender_serving``."""

from shop.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.fork_project.yourshop_serving.apps.ServingConfig"]  # noqa: F405
