"""Tests of ``shop.importers``: the Online Retail reader, writer and command."""
