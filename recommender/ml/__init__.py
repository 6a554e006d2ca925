"""Pure recommendation models and their evaluation.

Nothing in this package imports Django: models see integer item indices and
NumPy arrays, never ORM objects. The Django side maps product ids to indices.
"""
