"""The network: item (+ event-type, time, segment) embeddings -> GRU / LSTM -> NARM-style
attention readout -> projection into the item-embedding space, scored against the tied item
embeddings (scaled cosine, as in NISER), with an optional RepeatNet-style repeat mechanism;
and :func:`next_item_probs`, the next-item distribution after every prefix of a batch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

N_HOURS, N_WEEKDAYS, N_MONTHS, N_GAPS = 24, 7, 12, 20


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


def prefix_items(x: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """Compact class (-1: padding or unknown) of every position of the history, one row for each
    selected prefix: ``(N, T)`` rows of ``x - 1`` repeated for the prefixes of the same history."""
    b, t = x.shape
    return x[:, None, :].expand(b, t, t).reshape(-1, t)[sel] - 1


def next_item_probs(net: SequenceNet, items, x, lens, ev=None, tf=None, seg=None, last_only: bool = False):
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
        seen = prefix_items(x, sel)
        att = att.reshape(-1, t)[sel] * (seen >= 0)
        g = torch.sigmoid(gate.reshape(-1)[sel])[:, None]
        p = p.mul_(1 - g).scatter_add_(1, seen.clamp(min=0), g * att)
    return p, sel


def _last_probs(net: SequenceNet, items, x, hs, mask, lens) -> torch.Tensor:
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


class SequenceNet(nn.Module):
    """The recurrent network over padded batches of compact item ids (0 = padding)."""

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
