"""Tests of ``recommender.ml``: no database, no Django settings (see ``tests/conftest.py``)."""
