"""Tests of the ``recommender`` app, one folder per source package."""
