"""Shared fixtures: small, fast configs on the embedded and synthetic data."""

from __future__ import annotations

import os

import pytest
import torch

from helpers import trial_dict

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def make_trial():
    return trial_dict
