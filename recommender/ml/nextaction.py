"""Next-action prediction: will a shopper's next event be a view, a basket addition or a purchase?

A small recurrent classifier over a user's event stream. Inputs per event: its
type, time features (hour of day, log2 gap since the previous event) and, when
item ids are given, whether the item / category was already seen by this user.
The encoder is causal, so one pass over a sequence predicts the type of every
next event. Classes are rare (most events are views), so the loss is weighted
by inverse square-root class frequency and per-class score offsets are tuned on
a validation split (the last events in time) to maximise macro-F1; accuracy
alone is not a result when "always view" is right ~90% of the time.

``benchmarks/next_action_taobao.py`` measures it on Taobao UserBehavior.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recommender.ml import progress
from recommender.ml.base import HasParams, ModelFileError, read_model_files, write_model_files
from recommender.ml.evaluation import macro_f1, per_class_f1
from recommender.ml.intent import MODEL_NAME, N_GAP, N_HOUR
from recommender.ml.intent import features as _features
from recommender.ml.sequence.training import Adam, torch_settings


class _Net(nn.Module):
    def __init__(self, n_classes: int, hidden: int, cell: str, dropout: float) -> None:
        super().__init__()
        d = hidden
        self.embs = nn.ModuleList(
            [
                nn.Embedding(n_classes + 1, d, padding_idx=0),
                nn.Embedding(N_HOUR + 1, d, padding_idx=0),
                nn.Embedding(N_GAP + 1, d, padding_idx=0),
                nn.Embedding(3, d, padding_idx=0),
                nn.Embedding(3, d, padding_idx=0),
            ]
        )
        self.rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](d, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:  # f (B, T, 5) -> logits (B, T, C)
        e = sum(emb(f[:, :, k]) for k, emb in enumerate(self.embs))
        return self.out(self.drop(self.rnn(self.drop(e))[0]))


class NextActionModel(HasParams):
    """Predicts the type of the next event (``0 .. n_classes - 1``) from the events so far."""

    name = MODEL_NAME

    def __init__(
        self,
        n_classes: int = 3,
        hidden_size: int = 32,
        cell: str = "gru",
        dropout: float = 0.1,
        lr: float = 5e-3,
        epochs: int = 30,
        batch_size: int = 32,
        max_len: int = 200,
        class_weight_power: float = 0.5,
        tune_offsets: bool = True,
        validation_fraction: float = 0.15,
        patience: int = 5,
        seed: int = 0,
        num_threads: int | None = None,
        time_budget: float | None = None,
        select_by: str = "macro_f1",
    ) -> None:
        self.n_classes = n_classes
        self.hidden_size = hidden_size
        self.cell = cell
        self.dropout = dropout
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_len = max_len
        self.class_weight_power = class_weight_power
        self.tune_offsets = tune_offsets
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.num_threads = num_threads
        self.time_budget = time_budget
        self.select_by = select_by

    # -- data ---------------------------------------------------------------
    def _windows(self, types, times, items, cats, first_target=None, targets=None):
        """(features (L, 5), targets (L,), with -1 where there is nothing to predict) per window.

        ``targets[i]`` gives sequence ``i``'s targets (``-1``: none); without them each event's
        target is the next event's type."""
        out = []
        for i, ty in enumerate(types):
            ty = np.asarray(ty, dtype=np.int64)
            f = _features(
                ty,
                None if times is None else times[i],
                None if items is None else items[i],
                None if cats is None else cats[i],
            )
            if targets is not None:
                y = np.asarray(targets[i], dtype=np.int64).copy()
            else:
                y = np.full(len(ty), -1, dtype=np.int64)
                y[:-1] = ty[1:]
            if first_target is not None:  # only targets at positions >= first_target[i] count
                y[: max(int(first_target[i]) - 1, 0)] = -1
            for a in range(0, max(len(ty), 1), self.max_len):
                if (y[a : a + self.max_len] >= 0).any():
                    out.append((f[a : a + self.max_len], y[a : a + self.max_len]))
        return out

    @staticmethod
    def _pad(windows):
        t = max(len(f) for f, _ in windows)
        x = np.zeros((len(windows), t, 5), dtype=np.int64)
        y = np.full((len(windows), t), -1, dtype=np.int64)
        for r, (f, yy) in enumerate(windows):
            x[r, : len(f)] = f
            y[r, : len(yy)] = yy
        return torch.from_numpy(x), torch.from_numpy(y)

    # -- training -----------------------------------------------------------
    def fit(self, types, times=None, items=None, cats=None, targets=None) -> Self:
        """``types[i]``: event types of user/session ``i`` in time order; the rest align with them.
        ``targets[i]``: each event's class (``-1``: none); by default the next event's type."""
        with torch_settings(self.num_threads, True):
            torch.manual_seed(self.seed)
            # validation: the last events of each sequence (time order), as targets only
            n_val = [round(len(t) * self.validation_fraction) if len(t) >= 4 else 0 for t in types]
            cut = [len(t) - v for t, v in zip(types, n_val, strict=True)]

            def head(a):
                return None if a is None else [np.asarray(s)[:c] for s, c in zip(a, cut, strict=True)]

            train = self._windows(head(types), head(times), head(items), head(cats), targets=head(targets))
            val = self._windows(types, times, items, cats, first_target=cut, targets=targets) if sum(n_val) else []
            if not train:
                raise ValueError("no event has a known next action to learn from")
            ys = np.concatenate([y[y >= 0] for _, y in train])
            freq = np.bincount(ys, minlength=self.n_classes).astype(np.float64) + 1.0
            w = (freq.sum() / freq) ** self.class_weight_power
            self.majority_class_ = int(np.argmax(freq))
            self._net = _Net(self.n_classes, self.hidden_size, self.cell, self.dropout)
            self._train(train, val, torch.tensor(w / w.mean(), dtype=torch.float32))
            self.offsets_ = np.zeros(self.n_classes, dtype=np.float32)
            if val and self.tune_offsets:
                probs, yv = self._predict_windows(val)
                self.offsets_ = _tune_offsets(np.log(probs + 1e-9), yv, self.n_classes)
        return self

    def _train(self, train, val, weight: torch.Tensor) -> None:
        """Epochs until ``epochs``, ``patience`` epochs without a better validation score, or the
        ``time_budget`` (seconds; it stops an epoch midway); the best epoch's weights are kept. The score
        is macro-F1 of the most probable class, or the log loss with ``select_by="log_loss"``."""
        rng = np.random.default_rng(self.seed)
        opt = Adam(self._net.parameters(), lr=self.lr)
        best, best_state, bad = -np.inf, None, 0
        self.history_ = []
        started = time.monotonic()
        for epoch in range(1, self.epochs + 1):
            self._net.train()
            order = rng.permutation(len(train))
            for s in range(0, len(order), self.batch_size):
                if self.time_budget is not None and time.monotonic() - started > self.time_budget:
                    break  # the budget ends the epoch too: a fit never runs an epoch past it
                x, y = self._pad([train[i] for i in order[s : s + self.batch_size]])
                logits = self._net(x)
                loss = F.cross_entropy(logits.reshape(-1, self.n_classes), y.reshape(-1), weight, ignore_index=-1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            out_of_time = self.time_budget is not None and time.monotonic() - started > self.time_budget
            progress.report(stage="epoch", epoch=epoch, epochs=self.epochs, cell=self.cell)
            if val:
                probs, yv = self._predict_windows(val)
                if self.select_by == "log_loss":
                    score = float(np.log(probs[np.arange(len(yv)), yv] + 1e-9).mean())
                else:
                    score = macro_f1(yv, probs.argmax(1))
                self.history_.append({"epoch": epoch, f"val_{self.select_by}": score})
                if score > best:
                    best, bad = score, 0
                    best_state = {k: v.detach().clone() for k, v in self._net.state_dict().items()}
                else:
                    bad += 1
            if out_of_time or bad > self.patience:
                break
        if best_state is not None:
            self._net.load_state_dict(best_state)
        self._net.eval()

    @torch.inference_mode()
    def _predict_windows(self, windows) -> tuple[np.ndarray, np.ndarray]:
        self._net.eval()
        ps, ys = [np.zeros((0, self.n_classes), dtype=np.float32)], [np.zeros(0, dtype=np.int64)]
        for s in range(0, len(windows), 256):
            x, y = self._pad(windows[s : s + 256])
            p = torch.softmax(self._net(x), -1)
            keep = y >= 0
            ps.append(p[keep].numpy())
            ys.append(y[keep].numpy())
        return np.concatenate(ps), np.concatenate(ys)

    # -- prediction -----------------------------------------------------------
    def predict_proba(self, types, times=None, items=None, cats=None) -> np.ndarray:
        """Probabilities of the next event type after each whole sequence: ``(len(types), n_classes)``."""
        out = np.zeros((len(types), self.n_classes), dtype=np.float32)
        with torch.inference_mode():
            for i, ty in enumerate(types):
                ty = np.asarray(ty, dtype=np.int64)[-self.max_len :]
                n = len(ty)

                def tail(a, i=i, n=n):
                    return None if a is None else np.asarray(a[i])[-n:] if n else np.asarray(a[i])[:0]

                if n == 0:
                    out[i] = 1.0 / self.n_classes
                    continue
                f = torch.from_numpy(_features(ty, tail(times), tail(items), tail(cats)))[None]
                out[i] = torch.softmax(self._net(f)[0, -1], -1).numpy()
        return out

    def predict(self, types, times=None, items=None, cats=None) -> np.ndarray:
        p = self.predict_proba(types, times, items, cats)
        return (np.log(p + 1e-9) + self.offsets_).argmax(1)

    def predict_targets(
        self, types, times=None, items=None, cats=None, targets=None, first_target=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(n, n_classes)`` before each known target, and the targets ``(n,)``."""
        return self._predict_windows(self._windows(types, times, items, cats, first_target, targets))

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """The class predicted from each row of probabilities (with the offsets tuned for macro-F1)."""
        return (np.log(probs + 1e-9) + self.offsets_).argmax(1)

    def evaluate(self, types, times=None, items=None, cats=None, first_target=None, targets=None) -> dict[str, Any]:
        """Accuracy and macro-F1 over every next event (positions >= ``first_target`` when given),
        against always predicting the majority class of the *training* targets."""
        probs, y = self.predict_targets(types, times, items, cats, targets, first_target)
        pred = self.decide(probs)
        maj = np.full_like(y, int(self.majority_class_))
        return {
            "n": len(y),
            "accuracy": float((pred == y).mean()),
            "macro_f1": macro_f1(y, pred),
            "per_class_f1": per_class_f1(y, pred, range(self.n_classes)),
            "argmax_accuracy": float((probs.argmax(1) == y).mean()),
            "argmax_macro_f1": macro_f1(y, probs.argmax(1)),
            "majority_accuracy": float((maj == y).mean()),
            "majority_macro_f1": macro_f1(y, maj),
            "class_counts": np.bincount(y, minlength=self.n_classes).tolist(),
            "confusion": _confusion(y, pred, self.n_classes).tolist(),
        }

    n_items_ = 0  # it ranks no products (a version's files name none)
    majority_class_ = 0  # set by fit (views, on every event stream we know)

    # -- persistence -----------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        tensors = {f"net.{k}": v.detach().numpy().copy() for k, v in self._net.state_dict().items()}
        tensors["offsets"] = self.offsets_.astype(np.float32)
        config = {"params": self.get_params(), "majority_class": int(self.majority_class_)}
        return write_model_files(directory, self.name, config, tensors)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        config, tensors = read_model_files(directory, cls.name)
        try:
            m = cls(**config["params"])
            m._net = _Net(m.n_classes, m.hidden_size, m.cell, m.dropout)
            m._net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("net.")})
            m.offsets_ = np.asarray(tensors["offsets"], dtype=np.float32)
            m.majority_class_ = int(config.get("majority_class", 0))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{directory}: saved next-action model is inconsistent: {exc}") from exc
        m._net.eval()
        return m


def _confusion(y: np.ndarray, p: np.ndarray, c: int) -> np.ndarray:
    return np.bincount(y * c + p, minlength=c * c).reshape(c, c)


def _tune_offsets(logp: np.ndarray, y: np.ndarray, c: int) -> np.ndarray:
    """Per-class additive log-probability offsets maximising macro-F1 (coordinate search)."""
    off = np.zeros(c, dtype=np.float32)
    grid = np.linspace(-3, 3, 25, dtype=np.float32)
    best = macro_f1(y, (logp + off).argmax(1))
    for _ in range(2):
        for k in range(1, c):
            for g in grid:
                trial = off.copy()
                trial[k] = g
                f1 = macro_f1(y, (logp + trial).argmax(1))
                if f1 > best + 1e-9:
                    best, off = f1, trial
    return off
