"""Tests of the order-history importer (``personalization_core.order_history``) and its commands."""
