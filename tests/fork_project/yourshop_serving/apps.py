from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "tests.fork_project.yourshop_serving"
    label = "recommender_serving"  # the label the blocks' classes are loaded by
