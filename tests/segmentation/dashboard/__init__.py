"""Tests of the segmentation's staff pages (``segmentation.dashboard``), with its admin and API."""
