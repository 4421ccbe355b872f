"""One of the K training processes of multi-split training (Zhang et al., arXiv:2007.01016).

A ``SplitWorker`` owns one (train, validation) split of the gross training set and one
ordinary trainwise run on it: ``advance(until)`` is ``train.train(..., resume=True,
until=until)``, so the training loop is the one every regimen uses and the run's whole
state (weights, optimizer, sampler, random streams) lives in its checkpoint between
rounds. Between rounds the worker scores parameters on its validation split, considers
offers (``transfer.py``) and keeps its best-validation snapshot, the run's candidate for
the final output.

Every argument and result is plain data (bytes for parameters), so the same class runs
in-process, in a spawned process, or as a Ray actor.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import load_dataset, split_validation
from ..evaluate import evaluate
from ..io import atomic_torch_save
from ..models import build_model
from ..config import DatasetConfig, TrialConfig
from ..train import CHECKPOINT, load_checkpoint, train
from .transfer import Score, average, better, choose, pack, unpack


def split_data(dataset: dict, val_fraction: float, split_seed: int):
    """The gross training set (after any ``limit_per_class``) cut into one stratified
    (train, validation) pair by ``split_seed``; the test set is untouched."""
    gross = load_dataset(DatasetConfig(**{**dataset, "val_fraction": 0.0}))
    return split_validation(gross, val_fraction, split_seed)


class SplitWorker:
    def __init__(self, trial: dict, run_dir: str, val_fraction: float, split_seed: int, threads: int):
        torch.set_num_threads(threads)
        self.cfg = TrialConfig(**trial)
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data = split_data(self.cfg.dataset.model_dump(), val_fraction, split_seed)
        mean, std = self.data.channel_stats()
        self.model = build_model(self.cfg.model.name, self.data.input_shape, self.data.num_classes, mean, std,
                                 **self.cfg.model.settings)
        self.best: tuple[Score, bytes] | None = None
        self.current: Score | None = None  # the checkpoint's own score, from advance(), until it changes
        self.val_forwards = 0
        self.result: dict | None = None

    # ---- facts
    def info(self) -> dict:
        b = self.cfg.make_budget(self.data.n_train)
        return dict(total_steps=b.total_steps, n_train=self.data.n_train, n_val=len(self.data.y_val),
                    epochs=self.cfg.train.epochs)

    def _ckpt(self) -> dict:
        return load_checkpoint(self.run_dir / CHECKPOINT, self.cfg.config_hash())

    def _score(self, state) -> Score:
        self.model.load_state_dict(state)
        loss, acc = evaluate(self.model, self.data.x_val, self.data.y_val, self.cfg.train.eval_batch_size)
        self.val_forwards += len(self.data.y_val)
        return acc, loss

    def _keep_if_best(self, score: Score, state) -> None:
        if self.best is None or better(score, self.best[0]):
            self.best = (score, pack(state))

    # ---- one round
    def advance(self, until: int | None) -> dict:
        """Train on to step ``until`` (None: the budget's end), then score on own validation."""
        r = train(self.cfg, self.run_dir, resume=True, progress=False, data=self.data, until=until)
        if r["steps"] >= r["total_steps"]:
            self.result = r
        state = self._ckpt()["model"]
        score = self.current = self._score(state)
        self._keep_if_best(score, state)
        return dict(step=r["steps"], val_acc=score[0], val_loss=score[1])

    def params(self) -> bytes:
        return pack(self._ckpt()["model"])

    def consider(self, rule: str, alpha: float, *offers: bytes) -> list[dict]:
        """Score each offer (or its average with our parameters) on our validation split; adopt
        the best one only if it beats our current parameters. Returns one record per offer."""
        ck = self._ckpt()
        own = ck["model"]
        own_score = self.current or self._score(own)
        cands = [unpack(b) for b in offers]
        if rule == "soft":
            cands = [average(own, c, alpha) for c in cands]
        scores = [self._score(c) for c in cands]
        pick = choose(own_score, scores)
        if pick is not None:
            ck["model"], self.current = cands[pick], scores[pick]
            atomic_torch_save(ck, self.run_dir / CHECKPOINT)
            self._keep_if_best(scores[pick], cands[pick])
        return [dict(own_val_acc=own_score[0], own_val_loss=own_score[1], offer_val_acc=s[0],
                     offer_val_loss=s[1], improves=better(s, own_score), adopted=i == pick)
                for i, s in enumerate(scores)]

    # ---- the end
    def candidate(self) -> bytes:
        """This process's best-validation snapshot (over every round and adoption)."""
        assert self.best is not None, "advance() first"
        return self.best[1]

    def candidate_score(self) -> list[float]:
        return list(self.best[0])

    def score_all(self, *blobs: bytes) -> list[list[float]]:
        """(val acc, val loss) of each given parameter set on this worker's validation split."""
        return [list(self._score(unpack(b))) for b in blobs]

    def test(self, blob: bytes) -> dict:
        """Test-set loss and accuracy of the given parameters, and (to tell under- from overfitting)
        their loss and accuracy on this worker's training split, without augmentation."""
        self.model.load_state_dict(unpack(blob))
        bs = self.cfg.train.eval_batch_size
        loss, acc = evaluate(self.model, self.data.x_test, self.data.y_test, bs)
        train_loss, train_acc = evaluate(self.model, self.data.x_train, self.data.y_train, bs)
        return dict(test_loss=loss, test_acc=acc, train_loss=train_loss, train_acc=train_acc)

    def final(self) -> dict:
        return dict(result=self.result, val_forwards=self.val_forwards)


__all__ = ["SplitWorker", "split_data"]
