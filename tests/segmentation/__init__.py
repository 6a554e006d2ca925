"""Tests of the ``segmentation`` app, one folder per source package."""
