"""Recommendation blocks: the service under the template tags and the API.

:func:`recommender.serving.service.recommend` fills a block; the modules here are its parts,
each an overridable class loaded with Oscar's ``get_class``: ``placements`` (where blocks go
and their fallback ladders), ``rungs`` (the ladder's candidate sources), ``rules`` (what a block
may show), ``cache`` (where computed blocks are kept) and ``tokens`` (signed click tokens).
This package imports none of them, so a fork's module may import the one it extends.
"""
