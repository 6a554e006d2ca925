"""Training the network: the optimiser, one epoch (full or sampled softmax, the repeat
mechanism's mixture loss), validation HR/MRR and early stopping."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from recommender.ml import progress
from recommender.ml.sequence.batching import Batcher, token_batches
from recommender.ml.sequence.network import SequenceNet, next_item_probs, prefix_items


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


def conservative_ranks(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 + #items scoring strictly higher + #other items scoring equal; target < 0 -> rank inf."""
    valid = targets >= 0
    t = targets.clamp(min=0)
    tgt = logits.gather(1, t[:, None])
    higher = (logits > tgt).sum(1)
    equal = (logits == tgt).sum(1) - 1
    ranks = (1 + higher + equal).float()
    return torch.where(valid, ranks, torch.full_like(ranks, float("inf")))


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


class EpochResult(NamedTuple):
    """Mean loss over the epoch's targets, how many targets it learnt from, and whether it
    stopped early at the deadline."""

    loss: float
    targets: int
    timed_out: bool


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` did: one row per epoch (loss, seconds, validation HR/MRR@20
    in percent), the best row and its epoch (0: none, no validation), targets learnt, and the
    seconds spent in epochs."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    best_epoch: int = 0
    events: int = 0
    seconds: float = 0.0


@dataclass
class Trainer:
    """Trains a :class:`SequenceNet` over ``n_vocab`` items: batches of about ``batch_tokens``
    targets, a sampled softmax over ``n_negatives`` items drawn by popularity**``negative_alpha``
    (logQ-corrected) when the catalogue has more than ``4 * n_negatives`` items, the learning
    rate times ``lr_decay`` after each epoch, and early stopping after ``patience`` epochs
    without a better validation HR@20 + MRR@20."""

    n_vocab: int
    batch_tokens: int
    negative_alpha: float
    lr_decay: float
    patience: int
    log: Callable[[str], None] = print

    def epoch(
        self, net: SequenceNet, opt: Adam, tr: Batcher, rng, deadline: float | None, n_neg: int, counts: np.ndarray
    ) -> EpochResult:
        """One pass over ``tr`` (until ``deadline``); ``counts`` per vocabulary item drive the negatives."""
        net.train()
        log_q = neg_p = None
        if n_neg > 0 and 4 * n_neg < self.n_vocab:  # small catalogues: the full softmax is cheap
            p = counts.astype(np.float64) ** self.negative_alpha
            p /= p.sum()
            neg_p = torch.from_numpy(p)
            # log of each item's chance to be among the candidates (targets are there anyway: ~0)
            log_q = torch.from_numpy(np.log(-np.expm1(n_neg * np.log1p(-np.minimum(p, 1 - 1e-12))) + 1e-12)).float()
        lengths = np.array([len(s) for s in tr.seqs])
        total, n, timed_out = 0.0, 0, False
        for idx in token_batches(lengths, self.batch_tokens, rng):
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
                seen = prefix_items(x, keep)
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
        return EpochResult(total / max(n, 1), n, timed_out)

    @torch.inference_mode()
    def evaluate(
        self, net: SequenceNet, va: Batcher, unseen: torch.Tensor | None = None, k: int = 20
    ) -> dict[str, float]:
        """Validation HR/MRR@k in percent; ``unseen`` (bool per vocabulary item) items get no probability."""
        net.eval()
        lengths = np.array([len(s) for s in va.seqs])
        hits, rr, n = 0.0, 0.0, 0
        items = net.item_matrix()
        for idx in token_batches(lengths, 2048, None):
            x, lens, y, ev, tf, seg = va.make(idx, drop_last=True)
            p, sel = next_item_probs(net, items, x, lens, ev, tf, seg)
            if unseen is not None:
                p[:, unseen] = 0.0
            ranks = conservative_ranks(p, y.reshape(-1)[sel])
            hits += float((ranks <= k).sum())
            rr += float(torch.where(ranks <= k, 1.0 / ranks, torch.zeros_like(ranks)).sum())
            n += int(sel.sum())
        return {"hr": 100 * hits / max(n, 1), "mrr": 100 * rr / max(n, 1), "n": n}

    def train(
        self,
        net: SequenceNet,
        params: dict[str, Any],
        tr: Batcher,
        va: Batcher | None,
        epochs: int,
        rng,
        deadline: float | None,
        counts: np.ndarray,
        init_best: dict[str, Any] | None = None,
    ) -> TrainResult:
        """Train with early stopping on ``va``; ``counts`` (per vocabulary item, in ``tr``) drive the
        negative sampling, and items without any are left out of the validation rankings. With
        ``init_best`` (continuing), the current weights stay unless validation beats that row."""
        opt = Adam(net.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
        unseen = torch.from_numpy(counts == 0) if (counts == 0).any() else None
        res, best_state, bad = TrainResult(best=init_best), None, 0
        if init_best is not None:
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        for epoch in range(1, epochs + 1):
            t = time.perf_counter()
            loss, n, timed_out = self.epoch(net, opt, tr, rng, deadline, int(params.get("n_negatives", 0)), counts)
            res.seconds += time.perf_counter() - t
            res.events += n
            opt.lr *= self.lr_decay
            row = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - t}
            if va is not None:
                row |= self.evaluate(net, va, unseen)
            res.history.append(row)
            self.log(str(row))
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            progress.report(stage="epoch", epoch=epoch, epochs=epochs, cell=params.get("cell"), seconds_left=left)
            if va is None:
                continue
            if res.best is None or row["mrr"] + row["hr"] > res.best["mrr"] + res.best["hr"]:
                res.best, res.best_epoch, bad = row, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad > self.patience:
                    break
            if timed_out:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        return res
