"""Recurrent next-item models (GRU4Rec / NARM style); needs torch.

* :mod:`.network`: the network and the next-item distribution it gives after each prefix;
* :mod:`.batching`: sessions as padded tensors, batches of about equal size;
* :mod:`.inputs`: sessions and histories as compact item ids with their side information;
* :mod:`.training`: optimiser, epochs, validation and early stopping;
* :mod:`.inference`: the network's forward pass in NumPy, for scoring a few histories (serving)
  without torch's per-operator overhead;
* :mod:`.model`: :class:`SequenceRecommender` (the :class:`~recommender.ml.base.Recommender`:
  vocabulary, hyperparameter search, continuing on new sessions, scoring, persistence) and its
  registered cells ``gru`` and ``lstm``.
"""

from recommender.ml.sequence.model import UNSEEN_SCORE, GRURecommender, LSTMRecommender, SequenceRecommender
from recommender.ml.sequence.network import next_item_probs, time_features
from recommender.ml.sequence.training import Adam, torch_settings

__all__ = [
    "UNSEEN_SCORE",
    "Adam",
    "GRURecommender",
    "LSTMRecommender",
    "SequenceRecommender",
    "next_item_probs",
    "time_features",
    "torch_settings",
]
