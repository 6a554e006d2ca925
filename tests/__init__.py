"""The test suite. Its folders mirror the source tree: the tests of ``recommender/serving/``
are in ``tests/recommender/serving/``; those of the order-history importer
(``personalization_core/order_history/``) in ``tests/shop/importers/``, beside the demo's command
that wraps it.

* ``tests/recommender/ml/`` and ``tests/segmentation/ml/`` are the pure ML tests: no database, no
  Django settings (``conftest.PURE_ML``); they also run with ``-p no:django``.
* ``tests/system/`` holds the tests of whole flows across apps and processes (chaos, fuzzing,
  packaging, privacy), ``tests/browser/`` the real-browser journeys.
* Shared helpers stay here: ``conftest.py``, ``helpers.py``, ``training_shop.py``, ``redis_server.py``,
  ``worker_settings.py`` and the README's project, ``readme_project/``.
"""
