"""The in-memory dataset every trainwise run works on.

Images are float32 tensors in [0, 1] with shape (N, C, H, W) (flat features use
(N, D)); labels are int64 class indices. Normalisation is the model wrapper's job
(``trainwise.models.wrapper``), so attacks and augmentations work in [0, 1] space.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


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

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training inputs (for the model's normaliser)."""
        x = self.x_train
        if x.dim() == 4:
            dims = (0, 2, 3)
        else:
            dims = (0,)
        mean = x.mean(dim=dims)
        std = x.std(dim=dims).clamp_min(1e-6)
        return mean, std

    def to(self, device: torch.device | str) -> "TensorData":
        def mv(t):
            return None if t is None else t.to(device)

        return replace(
            self,
            x_train=mv(self.x_train),
            y_train=mv(self.y_train),
            x_test=mv(self.x_test),
            y_test=mv(self.y_test),
            x_val=mv(self.x_val),
            y_val=mv(self.y_val),
        )


def limit_per_class(data: TensorData, n_per_class: int, seed: int) -> TensorData:
    """Keep at most ``n_per_class`` training samples of each class (stratified, seeded)."""
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in range(data.num_classes):
        idx = (data.y_train == c).nonzero().flatten()
        perm = idx[torch.randperm(len(idx), generator=g)]
        keep.append(perm[:n_per_class])
    keep = torch.cat(keep).sort().values
    return replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def split_validation(data: TensorData, val_fraction: float, seed: int) -> TensorData:
    """Carve a stratified validation split out of the training set (never out of the test set)."""
    if val_fraction <= 0:
        return data
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
        x_train=data.x_train[train_idx],
        y_train=data.y_train[train_idx],
        x_val=data.x_train[val_idx],
        y_val=data.y_train[val_idx],
    )
