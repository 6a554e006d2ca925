from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "tests.fork_project.yourshop_training"
    label = "recommender_training"  # the label the promotion gate is loaded by
