"""Tests of ``segmentation.services``: segmentation runs and their backtest, on the test database."""
