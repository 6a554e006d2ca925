"""Tests of ``recommender.services``: serving, training and personal data, on the test database."""
