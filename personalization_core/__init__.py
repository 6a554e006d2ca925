"""Infrastructure shared by the ``recommender`` and ``segmentation`` apps (not a Django app).

Both apps depend on this package; it depends on neither. What lives here:

* :mod:`personalization_core.conf`: :class:`~personalization_core.conf.Setting` (one key's name, type,
  default and doc) and :class:`~personalization_core.conf.AppSettings`, a namespaced settings dict
  (``settings.RECOMMENDER``, ``settings.SEGMENTATION``) merged over its declared defaults;
* :mod:`personalization_core.checks`: the system check of such a dict (known keys, value types);
* :mod:`personalization_core.locks`: the cache lock that keeps a periodic task from overlapping itself;
* :mod:`personalization_core.pgcopy`: PostgreSQL ``COPY`` of a query into a DataFrame and of a
  DataFrame into a table;
* :mod:`personalization_core.fields`: the strict integer query-parameter field of both apps' APIs;
* :mod:`personalization_core.numbers`: :func:`~personalization_core.numbers.finite_or_none`, a value
  as a finite float or None (run summaries, number filters);
* :mod:`personalization_core.install`: :func:`~personalization_core.install.personalize`, a shop's
  settings for both apps in one call; :mod:`personalization_core.urls`, their pages and APIs for one
  ``include``; :mod:`personalization_core.celery`, a Celery app for a shop that has none;
* :mod:`personalization_core.order_history`: the import of a shop's order history (a file of order
  lines, ``manage.py import_order_history``) and the shipped sample of the UCI Online Retail data.

It has no models, migrations or templates, so it is not in ``INSTALLED_APPS`` (its command,
``import_order_history``, is the ``recommender`` app's).
"""
