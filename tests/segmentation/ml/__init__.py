"""Tests of ``segmentation.ml``: no database, no Django settings (see ``tests/conftest.py``)."""
