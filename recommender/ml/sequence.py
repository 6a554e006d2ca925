"""Recurrent next-item models (GRU4Rec / NARM style) on top of :mod:`recommender.ml.base`.

The network: item embedding (+ optional event-type, time and customer-segment
embeddings) -> one GRU or LSTM layer over the history -> a NARM-style readout
that combines the last hidden state with an attention-weighted sum of all hidden
states -> a projection into the item-embedding space. Scores are the (scaled
cosine, as in NISER) dot products with the *same* item embeddings used at the
input (tied weights).

Training follows the NARM / SR-GNN protocol: every prefix of every training
session is an example. Because the encoder is causal, one forward pass over a
session yields the representation of all its prefixes, so a session of length
``L`` gives ``L - 1`` examples for the price of one pass. The loss is softmax
cross-entropy over the catalogue (sampled, logQ-corrected, on large catalogues; see
``n_negatives``). Early stopping uses a
validation split carved from the *end* of the training data (the sessions are
assumed to be in time order), and a small hyperparameter search can be run on
that split within a time budget.

Items never seen in training cannot be recommended: they get a score below
every trained item. Unknown items in a history are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recommender.ml.base import ModelFileError, Recommender
from recommender.ml.data import SessionData
from recommender.ml.rules import transition_rules

#: score given to items the model cannot rank (never seen in training)
UNSEEN_SCORE = np.float32(-1e9)

N_HOURS, N_WEEKDAYS, N_MONTHS, N_GAPS = 24, 7, 12, 20


# --------------------------------------------------------------------------- helpers
@contextmanager
def torch_settings(num_threads: int | None, deterministic: bool):
    """Temporarily set the number of intra-op threads and deterministic algorithms."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    try:
        if num_threads:
            torch.set_num_threads(int(num_threads))
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def time_features(ts: np.ndarray) -> np.ndarray:
    """``(L, 4)`` int64: hour+1, weekday+1, month+1 (UTC) and a log2 gap bucket+1 per event (0 = padding)."""
    ts = np.asarray(ts, dtype=np.int64)
    out = np.zeros((len(ts), 4), dtype=np.int64)
    if len(ts) == 0:
        return out
    days = ts // 86400
    out[:, 0] = (ts % 86400) // 3600 + 1
    out[:, 1] = (days + 3) % 7 + 1  # 1970-01-01 was a Thursday -> Monday = 0
    months = ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
    out[:, 2] = months + 1
    gaps = np.diff(ts, prepend=ts[0]).clip(min=0)
    bucket = np.floor(np.log2(gaps + 1.0)).astype(np.int64).clip(0, N_GAPS - 2) + 1
    bucket[0] = N_GAPS  # "first event of the sequence"
    out[:, 3] = bucket
    return out


def conservative_ranks(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 + #items scoring strictly higher + #other items scoring equal; target < 0 -> rank inf."""
    valid = targets >= 0
    t = targets.clamp(min=0)
    tgt = logits.gather(1, t[:, None])
    higher = (logits > tgt).sum(1)
    equal = (logits == tgt).sum(1) - 1
    ranks = (1 + higher + equal).float()
    return torch.where(valid, ranks, torch.full_like(ranks, float("inf")))


def _prefix_items(x: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """Compact class (-1: padding or unknown) of every position of the history, one row for each
    selected prefix: ``(N, T)`` rows of ``x - 1`` repeated for the prefixes of the same history."""
    b, t = x.shape
    return x[:, None, :].expand(b, t, t).reshape(-1, t)[sel] - 1


def next_item_probs(net: _SequenceNet, items, x, lens, ev=None, tf=None, seg=None, last_only: bool = False):
    """Next-item probabilities over the active items (compact classes) after every real prefix of
    the padded batch ``x`` (rows in row-major order), or only after each whole history.
    ``items`` is ``net.item_matrix()``, computed once by the caller.

    Returns ``(probs (N, V), sel)`` where ``sel`` flags the ``B * T`` positions that were kept
    (``None`` with ``last_only``: one row per history).
    With the repeat mechanism the distribution is ``(1 - g) * softmax(explore) + g * repeat``.
    """
    hs = net.encode(x, lens, ev, tf, seg)
    t = x.shape[1]
    mask = torch.arange(t)[None, :] < lens[:, None]
    if last_only:  # the same numbers as the last prefix of the general path, without the T x T work
        return _last_probs(net, items, x, hs, mask, lens), None
    sel = mask.reshape(-1)
    feats = net.features_all(hs, mask)
    r = net.readout_all(feats).reshape(-1, net.proj.out_features)[sel]
    p = torch.softmax(net.query(r) @ items.T, -1)
    if net.repeat:
        att, gate = net.repeat_all(x, hs, mask, feats)
        seen = _prefix_items(x, sel)
        att = att.reshape(-1, t)[sel] * (seen >= 0)
        g = torch.sigmoid(gate.reshape(-1)[sel])[:, None]
        p = p.mul_(1 - g).scatter_add_(1, seen.clamp(min=0), g * att)
    return p, sel


def _last_probs(net: _SequenceNet, items, x, hs, mask, lens) -> torch.Tensor:
    """:func:`next_item_probs` after each whole history: attention queries from the last state only."""
    last = hs[torch.arange(hs.shape[0]), (lens - 1).clamp(min=0)]
    if net.readout == "last":
        feats = last
    else:
        alpha = net.att_v(torch.sigmoid(net.att_q(last)[:, None, :] + net.att_k(hs))).squeeze(-1)
        feats = torch.cat([last, torch.bmm((alpha * mask.to(alpha.dtype))[:, None, :], hs).squeeze(1)], -1)
    p = torch.softmax(net.query(net.readout_all(feats)) @ items.T, -1)
    if net.repeat:
        valid = mask & (x > 0)
        e = net.rep_v(torch.tanh(net.rep_q(last)[:, None, :] + net.rep_k(hs))).squeeze(-1)
        att = torch.softmax(e.masked_fill(~valid, -1e9), -1) * valid.to(e.dtype)
        g = torch.sigmoid(net.rep_gate(net.out_drop(feats)))
        p = p.mul_(1 - g).scatter_add_(1, (x - 1).clamp(min=0), g * att)
    return p


class Adam:
    """Adam (Kingma & Ba) with L2 weight decay, the same update as ``torch.optim.Adam``.

    A few lines of our own because constructing ``torch.optim.Adam`` imports ``torch._dynamo``,
    which costs several seconds of start-up on every training run (and in every test).
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2_sqrt = 1 - b1**self.t, (1 - b2**self.t) ** 0.5
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:
                continue
            g = p.grad if not self.weight_decay else p.grad.add(p, alpha=self.weight_decay)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / bc2_sqrt).add_(self.eps), value=-self.lr / bc1)


# --------------------------------------------------------------------------- network
class _SequenceNet(nn.Module):
    def __init__(
        self,
        n_vocab: int,
        cell: str,
        embedding_dim: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        readout_dropout: float,
        readout: str,
        tied: bool,
        scale: float | None,
        n_event_types: int,
        use_time: bool,
        n_segments: int,
        repeat: bool = False,
    ) -> None:
        super().__init__()
        d, h = embedding_dim, hidden_size
        self.readout, self.scale, self.tied, self.repeat = readout, scale, tied, repeat
        self.item_emb = nn.Embedding(n_vocab + 1, d, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=d**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.event_emb = nn.Embedding(n_event_types + 1, d, padding_idx=0) if n_event_types else None
        if use_time:
            self.time_embs = nn.ModuleList(
                nn.Embedding(n + 1, d, padding_idx=0) for n in (N_HOURS, N_WEEKDAYS, N_MONTHS, N_GAPS)
            )
            for e in self.time_embs:
                nn.init.normal_(e.weight, std=0.01)
        else:
            self.time_embs = None
        self.segment_emb = nn.Embedding(n_segments + 1, d, padding_idx=0) if n_segments else None
        for e in (self.event_emb, self.segment_emb):
            if e is not None:
                nn.init.normal_(e.weight, std=0.01)
        rnn_cls = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn_cls(d, h, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        self.in_drop = nn.Dropout(dropout)
        self.out_drop = nn.Dropout(readout_dropout)
        if readout == "attention":
            self.att_q = nn.Linear(h, h, bias=False)
            self.att_k = nn.Linear(h, h, bias=False)
            self.att_v = nn.Linear(h, 1, bias=False)
            self.proj = nn.Linear(2 * h, d, bias=False)
        elif readout == "last":
            self.proj = nn.Linear(h, d, bias=False)
        else:
            raise ValueError(f"unknown readout {readout!r}")
        self.out_emb = None if tied else nn.Embedding(n_vocab + 1, d)
        if repeat:  # RepeatNet-style: attention over the history's own items, and a repeat-or-explore gate
            self.rep_q = nn.Linear(h, h, bias=False)
            self.rep_k = nn.Linear(h, h, bias=False)
            self.rep_v = nn.Linear(h, 1, bias=False)
            self.rep_gate = nn.Linear(self.proj.in_features, 1)

    # inputs: x (B, T) compact item ids (0 = pad); ev (B, T) or None; tf (B, T, 4) or None; seg (B,) or None
    def encode(self, x, lengths, ev=None, tf=None, seg=None) -> torch.Tensor:
        e = self.item_emb(x)
        if self.event_emb is not None and ev is not None:
            e = e + self.event_emb(ev)
        if self.time_embs is not None and tf is not None:
            for k, emb in enumerate(self.time_embs):
                e = e + emb(tf[:, :, k])
        if self.segment_emb is not None and seg is not None:
            e = e + self.segment_emb(seg)[:, None, :]
        e = self.in_drop(e)
        if x.shape[0] == 1 or bool((lengths == x.shape[1]).all()):
            out = self.rnn(e)[0]
        else:
            packed = pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        return out

    def features_all(self, hs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Readout features of every prefix, before the projection: (B, T, h) or (B, T, 2h)."""
        if self.readout == "last":
            return hs
        q, k = self.att_q(hs), self.att_k(hs)
        alpha = self.att_v(torch.sigmoid(q[:, :, None, :] + k[:, None, :, :])).squeeze(-1)  # (B, T, T)
        t = hs.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=hs.device).tril()
        alpha = alpha * (causal[None] & mask[:, None, :]).to(alpha.dtype)
        return torch.cat([hs, torch.bmm(alpha, hs)], -1)

    def readout_all(self, feats: torch.Tensor) -> torch.Tensor:
        """Representations of every prefix, (B, T, d), from :meth:`features_all`."""
        return self.proj(self.out_drop(feats))

    def repeat_all(self, x: torch.Tensor, hs: torch.Tensor, mask: torch.Tensor, feats: torch.Tensor):
        """For every prefix ``t``: attention ``(B, T, T)`` over its own known items ``j <= t`` (rows sum to
        1, or to 0 when the prefix holds no known item) and the log-odds ``(B, T)`` of repeating one."""
        t = hs.shape[1]
        e = self.rep_v(torch.tanh(self.rep_q(hs)[:, :, None, :] + self.rep_k(hs)[:, None, :, :])).squeeze(-1)
        causal = torch.ones(t, t, dtype=torch.bool, device=hs.device).tril()
        valid = causal[None] & (mask & (x > 0))[:, None, :]
        att = torch.softmax(e.masked_fill(~valid, -1e9), -1) * valid.to(e.dtype)
        return att, self.rep_gate(self.out_drop(feats)).squeeze(-1)

    def item_rows(self, cand: torch.Tensor) -> torch.Tensor:
        """Output vectors of compact classes ``cand`` (0-based), normalised when scaled."""
        w = (self.item_emb if self.out_emb is None else self.out_emb).weight[cand + 1]
        return F.normalize(w, dim=-1) if self.scale else w

    def item_matrix(self) -> torch.Tensor:
        """Output item vectors (V, d) without the padding row, normalised when scaled."""
        w = (self.item_emb if self.out_emb is None else self.out_emb).weight[1:]
        return F.normalize(w, dim=-1) if self.scale else w

    def query(self, r: torch.Tensor) -> torch.Tensor:
        return F.normalize(r, dim=-1) * self.scale if self.scale else r


# --------------------------------------------------------------------------- batching
class _Batcher:
    """Turns sessions (compact ids) and their side information into padded tensors."""

    def __init__(self, seqs, events=None, tfeats=None, segs=None) -> None:
        self.seqs, self.events, self.tfeats, self.segs = seqs, events, tfeats, segs

    def make(self, idx: np.ndarray, drop_last: bool):
        """Padded inputs for sessions ``idx``; ``drop_last`` drops the final element (it is only a target)."""
        seqs = [self.seqs[i] for i in idx]
        cut = 1 if drop_last else 0
        lens = np.array([len(s) - cut for s in seqs], dtype=np.int64)
        t = max(int(lens.max()), 1)
        x = np.zeros((len(idx), t), dtype=np.int64)
        y = np.full((len(idx), t), -1, dtype=np.int64)
        ev = np.zeros((len(idx), t), dtype=np.int64) if self.events is not None else None
        tf = np.zeros((len(idx), t, 4), dtype=np.int64) if self.tfeats is not None else None
        for r, (i, s) in enumerate(zip(idx, seqs, strict=True)):
            n = lens[r]
            x[r, :n] = s[:n]
            if drop_last:
                y[r, :n] = s[1 : n + 1] - 1  # compact ids 1..V -> class 0..V-1; unknown (0) -> -1
            if ev is not None:
                ev[r, :n] = self.events[i][:n] + 1
            if tf is not None:
                tf[r, :n] = self.tfeats[i][:n]
        seg = torch.from_numpy(self.segs[idx]) if self.segs is not None else None
        to = torch.from_numpy
        return (
            to(x),
            to(lens.clip(min=1)),
            to(y),
            None if ev is None else to(ev),
            None if tf is None else to(tf),
            seg,
        )


def _token_batches(lengths: np.ndarray, tokens: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Group sessions of similar length so that each batch holds about ``tokens`` prediction targets."""
    tie = rng.random(len(lengths)) if rng is not None else np.arange(len(lengths))
    order = np.lexsort((tie, lengths))
    batches, start, acc = [], 0, 0
    for pos, i in enumerate(order):
        acc += max(int(lengths[i]) - 1, 1)
        if acc >= tokens:
            batches.append(order[start : pos + 1])
            start, acc = pos + 1, 0
    if start < len(order):
        batches.append(order[start:])
    if rng is not None:
        rng.shuffle(batches)
    return batches


# --------------------------------------------------------------------------- model
class SequenceRecommender(Recommender):
    """Recurrent (GRU / LSTM) next-item model with a NARM-style attention readout.

    Parameters (all stored by ``get_config``):

    cell: ``"gru"`` or ``"lstm"``. embedding_dim, hidden_size, num_layers: sizes.
    dropout: on the input embeddings; readout_dropout: before the projection.
    readout: ``"attention"`` (last hidden state + attention over all states) or ``"last"``.
    tied: score with the input item embeddings. scale: cosine-softmax temperature
    (NISER-style normalised scores); ``None`` for plain dot products.
    repeat: RepeatNet-style repeat mechanism: a second attention over the history's own items
    and a learned gate; the prediction is ``(1 - g) * softmax(explore scores) + g * repeat
    attention``. Shoppers often return to an item they looked at minutes ago (a quarter to
    two fifths of next clicks in the public click logs), which a softmax over the whole
    catalogue learns poorly.
    lr, weight_decay, batch_tokens (targets per batch), epochs, patience, lr_decay (per epoch): training.
    n_negatives: 0 = full softmax over all items; otherwise, for catalogues of more than
    ``4 * n_negatives`` items, a sampled softmax over the batch's targets plus ``n_negatives``
    items drawn by popularity**negative_alpha (logQ-corrected).
    max_len: only the last ``max_len`` events of a history are used.
    use_event_types / use_time / use_segments: optional inputs (switch on only if
    the data carries ``event_types`` / ``timestamps`` / ``segments``); n_event_types and
    n_segments size their embeddings (segments are clipped to ``0 .. n_segments - 1``).
    validation_fraction: share of the *last* training sessions held out for early
    stopping when ``fit`` gets no validation data (0 disables early stopping).
    max_validation_sessions: cap on sessions scored per validation pass.
    time_budget: seconds for the whole ``fit`` (search included); None = unlimited.
    search_space: list of dicts of hyperparameter overrides; when it has more than
    one entry, each is trained for ``search_epochs`` epoch(s) on the most recent
    ``search_fraction`` of the training split and the best on validation MRR@20 + HR@20 is then
    trained fully. The chosen overrides are in ``chosen_params_``.
    final_full_epochs: after sampled-softmax training, up to this many epochs with the full
    softmax (continuing from the best weights at the decayed learning rate), kept only while
    validation improves (``full_softmax_epochs_`` says how many were kept).
    refit: when ``fit`` carved the validation split itself, continue training on it after early
    stopping: one pass, from the best epoch's weights, at the learning rate halfway
    (geometrically) between the first and the best epoch's (see ``continue_training``). The
    validation sessions are the most recent ones, the closest to what comes next; a network that
    never learns them loses more than the early stopping gains.
    mix_rules: also learn sequential rules (``rules[a, b] += 1 / gap`` for ``b`` following ``a``
    within ``rules_window`` clicks, scored from the last item) and score items by the mixture
    ``(1 - w) * softmax(network) + w * normalised rules``; ``w`` is picked from ``rules_weights``
    on validation (0 keeps the network alone; the choice is in ``rules_weight_``). Without
    validation data the weight is 0 unless ``rules_weights`` holds a single value.
    seed, num_threads, deterministic, verbose: reproducibility and logging.
    """

    name: ClassVar[str] = "sequence"
    default_cell: ClassVar[str] = "gru"
    after_validation: ClassVar[str] = "continue"

    def __init__(
        self,
        cell: str | None = None,
        embedding_dim: int = 100,
        hidden_size: int = 100,
        num_layers: int = 1,
        dropout: float = 0.25,
        readout_dropout: float = 0.5,
        readout: str = "attention",
        tied: bool = True,
        scale: float | None = 16.0,
        repeat: bool = True,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        batch_tokens: int = 512,
        epochs: int = 12,
        patience: int = 2,
        lr_decay: float = 0.8,
        n_negatives: int = 2048,
        negative_alpha: float = 0.75,
        max_len: int = 50,
        use_event_types: bool = False,
        n_event_types: int = 3,
        use_time: bool = False,
        use_segments: bool = False,
        n_segments: int = 16,
        validation_fraction: float = 0.1,
        max_validation_sessions: int = 5000,
        time_budget: float | None = None,
        search_space: list[dict[str, Any]] | None = None,
        search_epochs: int = 1,
        search_fraction: float = 0.3,
        final_full_epochs: int = 0,
        refit: bool = True,
        mix_rules: bool = True,
        rules_window: int = 10,
        rules_weights: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
        seed: int = 0,
        num_threads: int | None = None,
        deterministic: bool = True,
        verbose: bool = False,
    ) -> None:
        self.cell = cell or self.default_cell
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', not {self.cell!r}")
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.readout_dropout = readout_dropout
        self.readout = readout
        self.tied = tied
        self.scale = scale
        self.repeat = repeat
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_tokens = batch_tokens
        self.epochs = epochs
        self.patience = patience
        self.lr_decay = lr_decay
        self.n_negatives = n_negatives
        self.negative_alpha = negative_alpha
        self.max_len = max_len
        self.use_event_types = use_event_types
        self.n_event_types = n_event_types
        self.use_time = use_time
        self.use_segments = use_segments
        self.n_segments = n_segments
        self.validation_fraction = validation_fraction
        self.max_validation_sessions = max_validation_sessions
        self.time_budget = time_budget
        self.search_space = search_space
        self.search_epochs = search_epochs
        self.search_fraction = search_fraction
        self.final_full_epochs = final_full_epochs
        self.refit = refit
        self.mix_rules = mix_rules
        self.rules_window = rules_window
        self.rules_weights = rules_weights
        self.seed = seed
        self.num_threads = num_threads
        self.deterministic = deterministic
        self.verbose = verbose

    _PARAMS: ClassVar[tuple[str, ...]] = (
        "cell",
        "embedding_dim",
        "hidden_size",
        "num_layers",
        "dropout",
        "readout_dropout",
        "readout",
        "tied",
        "scale",
        "repeat",
        "lr",
        "weight_decay",
        "batch_tokens",
        "epochs",
        "patience",
        "lr_decay",
        "n_negatives",
        "negative_alpha",
        "max_len",
        "use_event_types",
        "n_event_types",
        "use_time",
        "use_segments",
        "n_segments",
        "validation_fraction",
        "max_validation_sessions",
        "time_budget",
        "search_space",
        "search_epochs",
        "search_fraction",
        "final_full_epochs",
        "refit",
        "mix_rules",
        "rules_window",
        "rules_weights",
        "seed",
        "num_threads",
        "deterministic",
        "verbose",
    )
    _NET_PARAMS: ClassVar[tuple[str, ...]] = (
        "cell",
        "embedding_dim",
        "hidden_size",
        "num_layers",
        "dropout",
        "readout_dropout",
        "readout",
        "tied",
        "scale",
        "repeat",
    )

    def get_params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self._PARAMS}

    def _log(self, msg: str) -> None:
        if self.verbose:
            print(f"[{self.name}] {msg}", flush=True)

    # ------------------------------------------------------------------ data prep
    def _prepare(self, data: SessionData, train: bool):
        """Compact ids (+1, 0 = unknown), side information, chunked to ``max_len + 1`` for training."""
        seqs, events, tfeats, segs = [], [], [], []
        use_ev = self.use_event_types and data.event_types is not None
        use_tf = self.use_time and data.timestamps is not None
        use_sg = self.use_segments and data.segments is not None
        if self.use_event_types and data.event_types is None:
            raise ValueError("use_event_types=True but the data has no event_types")
        if self.use_time and data.timestamps is None:
            raise ValueError("use_time=True but the data has no timestamps")
        if self.use_segments and data.segments is None:
            raise ValueError("use_segments=True but the data has no segments")
        chunk = self.max_len + 1
        for i, s in enumerate(data.sessions):
            c = self._compact[s] if len(s) else s
            ev = np.clip(data.event_types[i], 0, self.n_event_types - 1) if use_ev else None
            tf = time_features(data.timestamps[i]) if use_tf else None
            sg = int(np.clip(data.segments[i], 0, self.n_segments - 1)) + 1 if use_sg else 0
            # training: a session of length L yields L - 1 targets; split long ones into chunks
            starts = range(0, max(len(c) - 1, 1), self.max_len) if train else [max(len(c) - chunk, 0)]
            for a in starts:
                piece = c[a : a + chunk]
                if train and len(piece) < 2:
                    continue
                seqs.append(piece)
                events.append(ev[a : a + chunk] if ev is not None else None)
                tfeats.append(tf[a : a + chunk] if tf is not None else None)
                segs.append(sg)
        return _Batcher(
            seqs,
            events if use_ev else None,
            tfeats if use_tf else None,
            np.asarray(segs, dtype=np.int64) if use_sg else None,
        )

    def _build_net(self, params: dict[str, Any]) -> _SequenceNet:
        return _SequenceNet(
            n_vocab=self.n_vocab_,
            cell=params["cell"],
            embedding_dim=params["embedding_dim"],
            hidden_size=params["hidden_size"],
            num_layers=params["num_layers"],
            dropout=params["dropout"],
            readout_dropout=params["readout_dropout"],
            readout=params["readout"],
            tied=params["tied"],
            scale=params["scale"],
            n_event_types=self.n_event_types if self.use_event_types else 0,
            use_time=self.use_time,
            n_segments=self.n_segments if self.use_segments else 0,
            repeat=bool(params.get("repeat", False)),
        )

    # ------------------------------------------------------------------ training
    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        with torch_settings(self.num_threads, self.deterministic):
            return self._fit(data, validation)

    def _fit(self, data: SessionData, validation: SessionData | None) -> Self:
        t0 = time.perf_counter()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.n_items_ = int(data.n_items)
        if validation is None and self.validation_fraction > 0 and len(data) >= 20:
            cut = len(data) - max(1, round(len(data) * self.validation_fraction))
            train, validation = _split(data, cut), _split(data, cut, tail=True)
            carved = True
        else:
            train, carved = data, False
        # vocabulary: items of the training and the validation split; items seen only in
        # validation are learnt when training continues on it (``refit``) and are left out of
        # the rankings early stopping measures until then
        counts = _item_counts(train, self.n_items_)
        counts_all = counts + (_item_counts(validation, self.n_items_) if validation is not None else 0)
        self.active_items_ = np.flatnonzero(counts_all).astype(np.int64)
        self.n_vocab_ = len(self.active_items_)
        if counts.sum() == 0:
            raise ValueError("no training events")
        self._compact = np.zeros(self.n_items_, dtype=np.int64)
        self._compact[self.active_items_] = np.arange(1, self.n_vocab_ + 1)
        self.popularity_ = np.log1p(counts_all[self.active_items_]).astype(np.float32)
        train_counts = counts[self.active_items_]
        # vocabulary items the network has not learnt (validation-only ones until it continues on
        # them): their embeddings are still random, so they get no probability
        unseen = train_counts == 0
        self.untrained_ = unseen.copy() if unseen.any() else None  # continuing clears it in place

        tr = self._prepare(train, train=True)
        va = self._prepare_validation(validation) if validation is not None and len(validation) else None
        n_targets = int(sum(len(s) - 1 for s in tr.seqs))
        self._log(f"{len(tr.seqs)} training sequences, {n_targets} targets, {self.n_vocab_} items")

        base = {p: getattr(self, p) for p in self._NET_PARAMS} | {
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "n_negatives": self.n_negatives,
        }
        self.chosen_params_ = {}
        self.search_results_ = []
        deadline = None if self.time_budget is None else t0 + float(self.time_budget)
        if self.search_space and len(self.search_space) > 1 and va is not None:
            n_recent = max(1, int(len(tr.seqs) * self.search_fraction))
            sub = _Batcher(
                tr.seqs[-n_recent:],
                None if tr.events is None else tr.events[-n_recent:],
                None if tr.tfeats is None else tr.tfeats[-n_recent:],
                None if tr.segs is None else tr.segs[-n_recent:],
            )
            budget_each = None if deadline is None else 0.5 * (deadline - time.perf_counter()) / len(self.search_space)
            best = None
            for cand in self.search_space:
                params = base | dict(cand)
                torch.manual_seed(self.seed)
                net = self._build_net(params)
                stop = None if budget_each is None else time.perf_counter() + budget_each
                res = self._train(
                    net, params, sub, va, self.search_epochs, np.random.default_rng(self.seed), stop, train_counts
                )
                score = res["best"]["mrr"] + res["best"]["hr"] if res["best"] else -1.0
                self.search_results_.append({"params": dict(cand), **(res["best"] or {})})
                self._log(f"search {cand}: {res['best']}")
                if best is None or score > best[0]:
                    best = (score, dict(cand))
            self.chosen_params_ = best[1]
        params = base | self.chosen_params_
        torch.manual_seed(self.seed)
        net = self._build_net(params)
        res = self._train(net, params, tr, va, self.epochs, rng, deadline, train_counts)
        self.history_ = res["history"]
        self.best_epoch_ = res["best_epoch"]
        self.full_softmax_epochs_ = 0
        sampled = params["n_negatives"] > 0 and 4 * params["n_negatives"] < self.n_vocab_
        in_time = deadline is None or time.perf_counter() < deadline
        if sampled and self.final_full_epochs and va is not None and res["best"] is not None and in_time:
            lr = params["lr"] * self.lr_decay ** res["best_epoch"]
            full = self._train(
                net,
                params | {"n_negatives": 0, "lr": lr},
                tr,
                va,
                self.final_full_epochs,
                rng,
                deadline,
                train_counts,
                res["best"],
            )
            self.history_ += [{**row, "full_softmax": True} for row in full["history"]]
            self.full_softmax_epochs_ = full["best_epoch"]
            res["events"] += full["events"]
            res["seconds"] += full["seconds"]
        net.eval()
        self._net = net
        self._net_params = {p: params[p] for p in self._NET_PARAMS}
        # continuing: halfway (geometrically) between the first and the best epoch's learning rate
        self._train_params = {"lr": params["lr"] * self.lr_decay ** (max(self.best_epoch_, 0) / 2)} | {
            key: params[key] for key in ("weight_decay", "n_negatives")
        }
        self.rules_weight_, self.rules_ = 0.0, None
        self.rules_validation_ = []
        if self.mix_rules:
            if va is not None:
                active_rules = transition_rules(train.sessions, self.n_items_, self.rules_window)
                active_rules = active_rules[self.active_items_][:, self.active_items_].tocsr()
                self.rules_validation_ = self._evaluate_mixtures(net, va, active_rules, torch.from_numpy(unseen))
                best = max(self.rules_validation_, key=lambda r: (r["mrr"] + r["hr"], -r["weight"]))
                self.rules_weight_ = float(best["weight"])
                self._log(f"rules mixture on validation: {self.rules_validation_}")
            else:  # nothing to measure on: only an explicitly given single weight is used
                self.rules_weight_ = float(self.rules_weights[0]) if len(self.rules_weights) == 1 else 0.0
            if self.rules_weight_ > 0:
                self.rules_ = transition_rules(train.sessions, self.n_items_, self.rules_window)
        self.refit_targets_ = 0
        if self.refit and carved and len(validation):
            self._continue(validation, rng)
        # what validation chose, for the record (benchmarks report ``chosen_params_``)
        self.chosen_params_ = {
            **self.chosen_params_,
            "epochs_run": len(res["history"]),
            "best_epoch": self.best_epoch_,
            "full_softmax_epochs": self.full_softmax_epochs_,
            "rules_weight": self.rules_weight_,
            "refit_targets": self.refit_targets_,
        }
        self._cache_inference()
        self.train_seconds_ = time.perf_counter() - t0
        self.train_events_per_second_ = res["events"] / max(res["seconds"], 1e-9)
        self._log(f"trained in {self.train_seconds_:.1f}s, {self.train_events_per_second_:.0f} targets/s")
        return self

    def continue_training(self, data: SessionData, seed: int | None = None, lr: float | None = None) -> Self:
        """Learn from sessions ``fit`` did not train on, e.g. the validation split it stopped early
        on: one pass at learning rate ``lr`` (default: ``refit``'s; sequential rules, if mixed in,
        count them too). Items outside the vocabulary are ignored. Nothing here can be validated, so a
        caller that chooses anything on ``data`` does so before calling this."""
        self._check_fitted()
        with torch_settings(self.num_threads, self.deterministic):
            torch.manual_seed(self.seed if seed is None else seed)
            self._continue(data, np.random.default_rng(self.seed if seed is None else seed), lr)
            self._cache_inference()
        return self

    def _continue(self, data: SessionData, rng, lr: float | None = None) -> None:
        batches = self._prepare(data, train=True)
        if not batches.seqs:
            return
        net, params = self._net, self._train_params | ({} if lr is None else {"lr": lr})
        counts = np.expm1(self.popularity_.astype(np.float64))  # all events the model has seen
        opt = Adam(net.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
        _, n, _ = self._epoch(net, opt, batches, rng, None, int(params["n_negatives"]), counts)
        net.eval()
        self.refit_targets_ += n
        if self.untrained_ is not None:
            self.untrained_[np.concatenate([s[s > 0] for s in batches.seqs]) - 1] = False
            self.untrained_ = self.untrained_ if self.untrained_.any() else None
        self.chosen_params_["refit_targets"] = self.refit_targets_
        if self.rules_ is not None:
            self.rules_ = (self.rules_ + transition_rules(data.sessions, self.n_items_, self.rules_window)).tocsr()
        self._log(f"continued on {n} targets at lr {params['lr']:.2e}")

    def _prepare_validation(self, validation: SessionData):
        va = self._prepare(validation, train=True)
        if len(va.seqs) > self.max_validation_sessions:
            keep = np.random.default_rng(self.seed + 1).choice(
                len(va.seqs), self.max_validation_sessions, replace=False
            )
            keep.sort()
            va = _Batcher(
                [va.seqs[i] for i in keep],
                None if va.events is None else [va.events[i] for i in keep],
                None if va.tfeats is None else [va.tfeats[i] for i in keep],
                None if va.segs is None else va.segs[keep],
            )
        return va

    def _epoch(self, net, opt, tr: _Batcher, rng, deadline, n_neg: int, counts: np.ndarray) -> tuple[float, int, bool]:
        net.train()
        log_q = neg_p = None
        if n_neg > 0 and 4 * n_neg < self.n_vocab_:  # small catalogues: the full softmax is cheap
            p = counts.astype(np.float64) ** self.negative_alpha
            p /= p.sum()
            neg_p = torch.from_numpy(p)
            # log of each item's chance to be among the candidates (targets are there anyway: ~0)
            log_q = torch.from_numpy(np.log(-np.expm1(n_neg * np.log1p(-np.minimum(p, 1 - 1e-12))) + 1e-12)).float()
        lengths = np.array([len(s) for s in tr.seqs])
        total, n, timed_out = 0.0, 0, False
        for idx in _token_batches(lengths, self.batch_tokens, rng):
            x, lens, y, ev, tf, seg = tr.make(idx, drop_last=True)
            hs = net.encode(x, lens, ev, tf, seg)
            mask = torch.arange(x.shape[1])[None, :] < lens[:, None]
            keep = (y >= 0).reshape(-1)
            feats = net.features_all(hs, mask)
            r = net.readout_all(feats).reshape(-1, net.proj.out_features)[keep]
            target_cls = target = y.reshape(-1)[keep]
            if log_q is None:
                logits = net.query(r) @ net.item_matrix().T
            else:  # sampled softmax: batch targets + popularity-sampled negatives, logQ-corrected
                neg = torch.multinomial(neg_p, n_neg, replacement=True)
                cand = torch.unique(torch.cat([target, neg]))
                target = torch.searchsorted(cand, target)
                logits = net.query(r) @ net.item_rows(cand).T - log_q[cand]
            if net.repeat:  # -log((1 - g) p_explore(target) + g p_repeat(target))
                att, gate = net.repeat_all(x, hs, mask, feats)
                seen = _prefix_items(x, keep)
                p_rep = (att.reshape(-1, x.shape[1])[keep] * (seen == target_cls[:, None])).sum(1)
                g = gate.reshape(-1)[keep]
                log_explore = -F.cross_entropy(logits, target, reduction="none")
                log_repeat = torch.log(p_rep.clamp_min(1e-30))
                loss = -torch.logaddexp(F.logsigmoid(-g) + log_explore, F.logsigmoid(g) + log_repeat).mean()
            else:
                loss = F.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * int(keep.sum())
            n += int(keep.sum())
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                break
        return total / max(n, 1), n, timed_out

    @torch.inference_mode()
    def _evaluate(self, net, va: _Batcher, unseen: torch.Tensor | None = None, k: int = 20) -> dict[str, float]:
        """Validation HR/MRR@k; ``unseen`` (bool per vocabulary item) items get no probability."""
        net.eval()
        lengths = np.array([len(s) for s in va.seqs])
        hits, rr, n = 0.0, 0.0, 0
        items = net.item_matrix()
        for idx in _token_batches(lengths, 2048, None):
            x, lens, y, ev, tf, seg = va.make(idx, drop_last=True)
            p, sel = next_item_probs(net, items, x, lens, ev, tf, seg)
            if unseen is not None:
                p[:, unseen] = 0.0
            ranks = conservative_ranks(p, y.reshape(-1)[sel])
            hits += float((ranks <= k).sum())
            rr += float(torch.where(ranks <= k, 1.0 / ranks, torch.zeros_like(ranks)).sum())
            n += int(sel.sum())
        return {"hr": 100 * hits / max(n, 1), "mrr": 100 * rr / max(n, 1), "n": n}

    @torch.inference_mode()
    def _evaluate_mixtures(self, net, va: _Batcher, rules, unseen: torch.Tensor, k: int = 20) -> list[dict[str, float]]:
        """Validation HR/MRR@k of ``(1 - w) network + w rules`` for every ``w`` in ``rules_weights``."""
        net.eval()
        lengths = np.array([len(s) for s in va.seqs])
        weights = list(self.rules_weights)
        hits, rr, n = np.zeros(len(weights)), np.zeros(len(weights)), 0
        items = net.item_matrix()
        for idx in _token_batches(lengths, 1024, None):
            x, lens, y, ev, tf, seg = va.make(idx, drop_last=True)
            p, sel = next_item_probs(net, items, x, lens, ev, tf, seg)
            p[:, unseen] = 0.0
            last = x.reshape(-1)[sel].numpy() - 1  # compact class of the last item (-1: unknown)
            pr = np.zeros(p.shape, dtype=np.float32)
            ok = last >= 0
            if ok.any():
                pr[ok] = rules[last[ok]].toarray()
            pr = torch.from_numpy(pr / np.maximum(pr.sum(1, keepdims=True), 1e-12))
            target = y.reshape(-1)[sel]
            for j, wt in enumerate(weights):
                ranks = conservative_ranks((1 - wt) * p + wt * pr, target)
                hits[j] += float((ranks <= k).sum())
                rr[j] += float(torch.where(ranks <= k, 1.0 / ranks, torch.zeros_like(ranks)).sum())
            n += int(sel.sum())
        return [
            {"weight": float(wt), "hr": 100 * hits[j] / max(n, 1), "mrr": 100 * rr[j] / max(n, 1)}
            for j, wt in enumerate(weights)
        ]

    def _train(self, net, params, tr, va, epochs, rng, deadline, counts, init_best=None) -> dict[str, Any]:
        """Train with early stopping on ``va``; ``counts`` (per vocabulary item, in ``tr``) drive the
        negative sampling, and items without any are left out of the validation rankings."""
        opt = Adam(net.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
        unseen = torch.from_numpy(counts == 0) if (counts == 0).any() else None
        history, best, best_state, best_epoch, bad = [], init_best, None, 0, 0
        if init_best is not None:  # continue training: keep the current weights unless validation improves
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        events, seconds = 0, 0.0
        for epoch in range(1, epochs + 1):
            t = time.perf_counter()
            loss, n, timed_out = self._epoch(net, opt, tr, rng, deadline, int(params.get("n_negatives", 0)), counts)
            seconds += time.perf_counter() - t
            events += n
            opt.lr *= self.lr_decay
            row = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - t}
            if va is not None:
                row |= self._evaluate(net, va, unseen)
            history.append(row)
            self._log(str(row))
            if va is None:
                continue
            if best is None or row["mrr"] + row["hr"] > best["mrr"] + best["hr"]:
                best, best_epoch, bad = row, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad > self.patience:
                    break
            if timed_out:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        return {"history": history, "best": best, "best_epoch": best_epoch, "events": events, "seconds": seconds}

    # ------------------------------------------------------------------ inference
    def _cache_inference(self) -> None:
        with torch.inference_mode():
            self.item_matrix_ = self._net.item_matrix().detach().numpy().astype(np.float32, copy=True)
        self._items = torch.from_numpy(self.item_matrix_)
        self._all_active = self.n_vocab_ == self.n_items_

    def _encode_histories(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None):
        context = context or {}
        b = len(histories)
        seqs, events, tfeats = [], [], []
        for i, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64)
            ok = (h >= 0) & (h < self.n_items_)
            c = np.zeros(len(h), dtype=np.int64)
            c[ok] = self._compact[h[ok]]
            keep = c > 0
            seqs.append(c[keep][-self.max_len :])
            if self.use_event_types:
                evs = context.get("event_types")
                ev = np.zeros(len(h), dtype=np.int64) if evs is None else np.asarray(evs[i], dtype=np.int64)
                events.append(np.clip(ev[keep], 0, self.n_event_types - 1)[-self.max_len :] + 1)
            if self.use_time:
                tss = context.get("timestamps")
                if tss is None:
                    tfeats.append(np.zeros((int(keep.sum()), 4), dtype=np.int64)[-self.max_len :])
                else:
                    tfeats.append(time_features(np.asarray(tss[i], dtype=np.int64))[keep][-self.max_len :])
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        t = max(int(lens.max()) if b else 1, 1)
        x = np.zeros((b, t), dtype=np.int64)
        ev = np.zeros((b, t), dtype=np.int64) if self.use_event_types else None
        tf = np.zeros((b, t, 4), dtype=np.int64) if self.use_time else None
        for r, s in enumerate(seqs):
            x[r, : len(s)] = s
            if ev is not None:
                ev[r, : len(s)] = events[r]
            if tf is not None:
                tf[r, : len(s)] = tfeats[r]
        seg = None
        if self.use_segments:
            sg = context.get("segments")
            sg = np.zeros(b, dtype=np.int64) if sg is None else np.asarray(sg, dtype=np.int64).reshape(b)
            seg = torch.from_numpy(np.clip(sg, 0, self.n_segments - 1) + 1)
        to = torch.from_numpy
        return to(x), lens, None if ev is None else to(ev), None if tf is None else to(tf), seg

    def _compact_probs(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None) -> np.ndarray:
        """``(B, V)`` next-item probabilities over the active items; popularity for empty histories."""
        self._check_fitted()
        x, lens, ev, tf, seg = self._encode_histories(histories, context)
        with torch.inference_mode():
            lt = torch.from_numpy(lens.clip(min=1))
            p, _ = next_item_probs(self._net, self._items, x, lt, ev, tf, seg, last_only=True)
        p = p.numpy()
        if self.untrained_ is not None:  # no explore mass for them; a repeat of one in the history stays
            xs = x.numpy()
            in_history = np.zeros(p.shape, dtype=bool)
            rows, cols = np.nonzero(xs)
            in_history[rows, xs[rows, cols] - 1] = True
            p[self.untrained_[None, :] & ~in_history] = 0.0
        empty = lens == 0
        if empty.any():  # no known item in the history: fall back to popularity
            p[empty] = self.popularity_ / max(float(self.popularity_.sum()), 1e-12)
        return p

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        """Next-item probabilities of every item (items never seen in training: ``UNSEEN_SCORE``)."""
        b = len(histories)
        if b == 0:
            self._check_fitted()
            return np.zeros((0, self.n_items_), dtype=np.float32)
        compact = self._compact_probs(histories, context)
        if self.rules_ is not None and self.rules_weight_ > 0:
            return self._mix(compact, histories)
        if self._all_active:
            return compact
        out = np.full((b, self.n_items_), UNSEEN_SCORE, dtype=np.float32)
        out[:, self.active_items_] = compact
        return out

    def _mix(self, compact: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        """``(1 - w) * network + w * normalised rules of the last item``, over all items."""
        wt = np.float32(self.rules_weight_)
        out = np.zeros((len(histories), self.n_items_), dtype=np.float32)
        out[:, self.active_items_] = (1 - wt) * compact
        for i, h in enumerate(histories):
            if len(h) and 0 <= int(h[-1]) < self.n_items_:
                a, b = self.rules_.indptr[int(h[-1])], self.rules_.indptr[int(h[-1]) + 1]
                if b > a:
                    vals = self.rules_.data[a:b]
                    out[i, self.rules_.indices[a:b]] += wt * vals / vals.sum()
        return out

    def similar_items(self, item: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        c = int(self._compact[item]) if 0 <= item < self.n_items_ else 0
        if c == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        w = self.item_matrix_
        v = w[c - 1]
        sims = w @ v / (np.linalg.norm(w, axis=1) * np.linalg.norm(v) + 1e-12)
        sims[c - 1] = -np.inf
        from recommender.ml.base import top_k

        idx, val = top_k(sims.astype(np.float32), k)
        return self.active_items_[idx], val

    def _check_fitted(self) -> None:
        if not hasattr(self, "_net"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "params": self.get_params(),
            "n_items": self.n_items_,
            "net_params": self._net_params,
            "chosen_params": self.chosen_params_,
            "best_epoch": self.best_epoch_,
            "rules_weight": self.rules_weight_,
            "train_params": self._train_params,
        }

    def get_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        out = {f"net.{k}": v.detach().numpy().copy() for k, v in self._net.state_dict().items()}
        out["active_items"] = self.active_items_
        out["n_items"] = np.array([self.n_items_], dtype=np.int64)  # cross-checked against config.json
        out["popularity"] = self.popularity_
        if self.untrained_ is not None:
            out["untrained"] = self.untrained_.astype(np.uint8)
        if self.rules_ is not None:
            out["rules_indptr"] = self.rules_.indptr.astype(np.int64)
            out["rules_indices"] = self.rules_.indices.astype(np.int32)
            out["rules_data"] = self.rules_.data.astype(np.float32)
        return out

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        try:
            self.n_items_ = int(config["n_items"])
            net_params = dict(config["net_params"])
            self.active_items_ = np.asarray(tensors["active_items"], dtype=np.int64)
            self.popularity_ = np.asarray(tensors["popularity"], dtype=np.float32)
            self.n_vocab_ = len(self.active_items_)
            if int(np.asarray(tensors["n_items"]).reshape(-1)[0]) != self.n_items_:
                raise ValueError("n_items in config.json differs from the one stored with the weights")
            if self.n_vocab_ and (self.active_items_.min() < 0 or self.active_items_.max() >= self.n_items_):
                raise ValueError("active item index out of range")
            self._compact = np.zeros(self.n_items_, dtype=np.int64)
            self._compact[self.active_items_] = np.arange(1, self.n_vocab_ + 1)
            net = self._build_net(net_params)
            state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith("net.")}
            net.load_state_dict(state, strict=True)
            self.rules_weight_ = float(config.get("rules_weight", 0.0))
            default = {"lr": self.lr, "weight_decay": self.weight_decay, "n_negatives": self.n_negatives}
            self._train_params = default | dict(config.get("train_params", {}))
            self.refit_targets_ = 0
            untrained = tensors.get("untrained")
            self.untrained_ = None if untrained is None else np.asarray(untrained).astype(bool).reshape(-1)
            if self.untrained_ is not None and len(self.untrained_) != self.n_vocab_:
                raise ValueError("untrained mask does not fit the vocabulary")
            self.rules_ = None
            if "rules_indptr" in tensors:
                import scipy.sparse as sp

                indptr = np.asarray(tensors["rules_indptr"], dtype=np.int64)
                indices = np.asarray(tensors["rules_indices"], dtype=np.int64)
                if len(indptr) != self.n_items_ + 1 or (len(indices) and indices.max() >= self.n_items_):
                    raise ValueError("rules matrix does not fit n_items")
                self.rules_ = sp.csr_matrix(
                    (tensors["rules_data"], indices, indptr), shape=(self.n_items_, self.n_items_)
                )
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"saved {self.name} model does not match its configuration: {exc}") from exc
        net.eval()
        self._net, self._net_params = net, net_params
        self.chosen_params_ = config.get("chosen_params", {})
        self.best_epoch_ = config.get("best_epoch", 0)
        self._cache_inference()


class GRURecommender(SequenceRecommender):
    name: ClassVar[str] = "gru"
    default_cell: ClassVar[str] = "gru"


class LSTMRecommender(SequenceRecommender):
    name: ClassVar[str] = "lstm"
    default_cell: ClassVar[str] = "lstm"


def _item_counts(data: SessionData, n_items: int) -> np.ndarray:
    return np.bincount(
        np.concatenate([s for s in data.sessions if len(s)] or [np.zeros(0, np.int64)]), minlength=n_items
    )[:n_items]


def _split(data: SessionData, cut: int, tail: bool = False) -> SessionData:
    """First ``cut`` sequences (or the rest, ``tail``) in recency order: by last timestamp when
    the data has timestamps, else in the given order (SR-GNN files are in time order)."""
    order = np.arange(len(data))
    if data.timestamps is not None:
        last = np.asarray([t[-1] if len(t) else -np.inf for t in data.timestamps], dtype=np.float64)
        order = np.argsort(last, kind="stable")
    idx = np.sort(order[cut:] if tail else order[:cut])
    return SessionData(
        sessions=[data.sessions[i] for i in idx],
        n_items=data.n_items,
        event_types=None if data.event_types is None else [data.event_types[i] for i in idx],
        timestamps=None if data.timestamps is None else [data.timestamps[i] for i in idx],
        segments=None if data.segments is None else np.asarray(data.segments)[idx],
        meta={k: v for k, v in data.meta.items() if k != "keys"},
    )
