"""Tests of the recommender's staff dashboard (``recommender.dashboard``)."""
