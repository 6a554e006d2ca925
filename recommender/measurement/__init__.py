"""What recommendations earn: impressions, clicks, attributed order lines and the A/B holdout.

* :mod:`.assignment`: the running experiment and each person's arm;
* :mod:`.capture`: records impressions (one insert per page), clicks and attributed lines, under
  the rules of event capture (no bots, ``Sec-GPC: 1`` or missing consent; never an error out);
* :mod:`.report`: the staff report, aggregated in SQL, with the statistics of
  :mod:`recommender.ml.experiments`.
"""
