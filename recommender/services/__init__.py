"""Services: the batch and serving logic that tasks, commands and views call.

``maintenance`` (event retention), ``training`` (export -> fit -> evaluate -> gate -> promote)
``models`` (live versions: lookup, loading, promotion, rollback) and ``personal_data`` (one
person's data: export and erasure).
"""

from recommender.services.maintenance import purge_old_events

__all__ = ["purge_old_events"]
