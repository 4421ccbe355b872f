"""The dataset every trainwise run works on.

Inputs are either uint8 images (N, C, H, W) whose value / 255 is the model's [0, 1] input (4x
less memory than float32; the built-in Fashion-MNIST and CIFAR), or float32 tensors: images in
[0, 1] (N, C, H, W) or flat features (N, D). Every reader converts what it reads with
``as_float`` (a gathered batch, an evaluation chunk), never the whole set; the inputs may also be
memory-mapped files (``storage.py``, ``dataset.storage``). Labels are int64 class indices.
Normalisation is the model wrapper's job (``trainwise.models.wrapper``), so attacks and
augmentations work in [0, 1] space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from . import storage

STATS_CHUNK = 1 << 22  # input values per chunk of channel_stats on uint8 inputs


def as_float(x: torch.Tensor) -> torch.Tensor:
    """The model's input for stored inputs ``x``: uint8 -> float32 / 255 (exactly the values the
    loaders produced before inputs were stored as uint8); floating point unchanged; other integer
    types as float32."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if x.is_floating_point():
        return x
    return x.to(torch.float32)


def _uint8_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (4-D) or per-feature (2-D) mean and std of ``as_float(x)``, from exact per-value
    counts, read in chunks: float64 sums of the float32 values, rounded once to float32 (what
    torch's std gives, and the correctly rounded mean)."""
    n = x.shape[0]
    flat = x.reshape(n, x.shape[1], -1) if x.dim() > 2 else x.reshape(n, -1, 1)
    c, per = flat.shape[1], flat.shape[2]
    counts = torch.zeros(c * 256, dtype=torch.int64, device=x.device)
    offsets = (torch.arange(c, device=x.device) * 256).view(1, c, 1)
    step = max(1, STATS_CHUNK // max(c * per, 1))
    for i in range(0, n, step):
        chunk = flat[i : i + step]
        counts += torch.bincount((chunk.long() + offsets).flatten(), minlength=c * 256)
        storage.note_read(x, chunk.numel())
    counts = counts.view(c, 256).double()
    values = as_float(torch.arange(256, dtype=torch.uint8, device=x.device)).double()
    total = counts.sum(1)
    mean = (counts * values).sum(1) / total
    var = (counts * (values - mean[:, None]) ** 2).sum(1) / (total - 1)
    return mean.float(), var.sqrt().float()


@dataclass
class TensorData:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    classes: list[str] | None = None  # class names, index = label
    # paired data (retrieval, data/paired.py): the two views' shapes; each row holds view A's values
    # then view B's, flattened, and y is the pair's group (pairs of a group are each other's positives)
    views: tuple[tuple[int, ...], ...] | None = None

    @property
    def input_shape(self) -> tuple:
        """A sample's shape, or for paired data the views' shapes (what a model factory gets)."""
        return self.views if self.views is not None else tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training inputs in [0, 1] (for the model's normaliser);
        never a float copy of the whole set. Either storage (memory, mmap) gives the same values."""
        x = self.x_train
        if self.views is not None:
            return _view_channel_stats(self)
        if x.dtype == torch.uint8:
            mean, std = _uint8_stats(x)
            return mean, std.clamp_min(1e-6)
        x = as_float(x)  # float: reduced in place, as always
        dims = (0, 2, 3) if x.dim() == 4 else (0,)
        mean = x.mean(dim=dims)
        std = x.std(dim=dims).clamp_min(1e-6)
        storage.note_read(self.x_train, storage.RESIDENT_CAP)  # a whole pass: release a mapping's pages
        return mean, std

    def to(self, device: torch.device | str) -> "TensorData":
        """The data on ``device``; memory-mapped inputs stay mapped on the CPU (batches are gathered
        from them and moved), inputs in RAM move whole (uint8: a quarter of float32's size)."""

        def mv(t):
            return t if t is None or storage.is_mapped(t) else t.to(device)

        return replace(
            self,
            x_train=mv(self.x_train),
            y_train=self.y_train.to(device),
            x_test=mv(self.x_test),
            y_test=self.y_test.to(device),
            x_val=mv(self.x_val),
            y_val=None if self.y_val is None else self.y_val.to(device),
        )


def _view_channel_stats(data: "TensorData") -> tuple[torch.Tensor, torch.Tensor]:
    """Paired rows: each value normalised with its view channel's mean and std (per feature for
    flat views), pooled from the per-feature statistics, so a constant pixel is not divided by ~0."""
    mean_f, std_f = replace(data, views=None).channel_stats()
    means, stds, at = [], [], 0
    for shape in data.views:
        size = math.prod(shape)
        m, v = mean_f[at : at + size], std_f[at : at + size] ** 2
        at += size
        if len(shape) == 1:  # flat features: per feature
            means.append(m), stds.append(v.sqrt())
            continue
        m, v = m.reshape(shape[0], -1), v.reshape(shape[0], -1)
        cm = m.mean(1, keepdim=True)
        cs = (v + (m - cm) ** 2).mean(1, keepdim=True).sqrt()  # pooled over the channel's positions
        means.append(cm.expand_as(m).flatten()), stds.append(cs.expand_as(m).flatten())
    return torch.cat(means), torch.cat(stds).clamp_min(1e-6)


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[idx]``; rows of a memory-mapped ``x`` go to a mapped file, not into RAM."""
    return storage.take_rows(x, idx) if storage.is_mapped(x) else x[idx]


def limit_per_class(data: TensorData, n_per_class: int, seed: int) -> TensorData:
    """Keep at most ``n_per_class`` training samples of each class (stratified, seeded)."""
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in range(data.num_classes):
        idx = (data.y_train == c).nonzero().flatten()
        perm = idx[torch.randperm(len(idx), generator=g)]
        keep.append(perm[:n_per_class])
    keep = torch.cat(keep).sort().values
    return replace(data, x_train=_rows(data.x_train, keep), y_train=data.y_train[keep])


def split_validation(data: TensorData, val_fraction: float, seed: int) -> TensorData:
    """Carve a stratified validation split out of the training set (never out of the test set);
    paired data: whole groups (``split_groups``)."""
    if val_fraction <= 0:
        return data
    if data.views is not None:
        return split_groups(data, val_fraction, seed)
    g = torch.Generator().manual_seed(seed)
    val_idx, train_idx = [], []
    for c in range(data.num_classes):
        idx = (data.y_train == c).nonzero().flatten()
        perm = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(val_fraction * len(idx)))
        val_idx.append(perm[:k])
        train_idx.append(perm[k:])
    val_idx = torch.cat(val_idx).sort().values
    train_idx = torch.cat(train_idx).sort().values
    return replace(
        data,
        x_train=_rows(data.x_train, train_idx),
        y_train=data.y_train[train_idx],
        x_val=_rows(data.x_train, val_idx),
        y_val=data.y_train[val_idx],
    )


def split_groups(data: TensorData, val_fraction: float, seed: int) -> TensorData:
    """A validation split of whole groups (a group's pairs stay together), seeded."""
    uniq, inv = torch.unique(data.y_train, return_inverse=True)
    g = torch.Generator().manual_seed(seed)
    k = int(round(val_fraction * len(uniq)))
    held = torch.zeros(len(uniq), dtype=torch.bool)
    held[torch.randperm(len(uniq), generator=g)[:k]] = True
    val_idx, train_idx = held[inv].nonzero().flatten(), (~held[inv]).nonzero().flatten()
    return replace(data, x_train=_rows(data.x_train, train_idx), y_train=data.y_train[train_idx],
                   x_val=_rows(data.x_train, val_idx), y_val=data.y_train[val_idx])
