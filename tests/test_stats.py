"""Paired arm − baseline comparisons over seeds: the t interval, the detectable difference, which
arms are paired, and the rows of paired.json / report.md computed from stored results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainwise.multisplit import MultiSplitConfig
from trainwise.multisplit.run import comparisons, summary_markdown
from trainwise.stats import detectable, paired

T_975_2DF = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom (tables)


def _hand(diffs):
    n, mean = len(diffs), sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return mean, sd, T_975_2DF * sd / math.sqrt(n)


def test_paired_interval_matches_a_hand_computation():
    p = paired([0.80, 0.82, 0.85], [0.79, 0.80, 0.81])
    mean, sd, half = _hand([0.01, 0.02, 0.04])
    assert p["diffs"] == pytest.approx([0.01, 0.02, 0.04]) and p["n"] == 3
    assert (p["mean"], p["sd"]) == (pytest.approx(mean), pytest.approx(sd))
    assert (p["lo"], p["hi"]) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert paired([0.5], [0.4])["lo"] is None  # one seed: no interval


def test_detectable_difference_has_80_percent_power():
    d = detectable(0.01, 3)
    diffs = np.random.default_rng(0).normal(d, 0.01, size=(200_000, 3))  # 3 seeds, true difference d
    t = diffs.mean(1) / (diffs.std(1, ddof=1) / math.sqrt(3))
    assert np.mean(np.abs(t) > T_975_2DF) == pytest.approx(0.8, abs=0.01)
    assert detectable(0.02, 3) == pytest.approx(2 * d)
    assert detectable(0.01, 10) < d / 3  # more seeds resolve smaller differences


ARMS = [{"name": "conv", "k": 1, "transfer": "none"},
        {"name": "ind", "k": 4, "transfer": "none"},
        {"name": "tr", "k": 4, "transfer": "greedy"},
        {"name": "ind-shared", "k": 4, "transfer": "none", "init": "shared"},
        {"name": "tr-shared", "k": 4, "transfer": "soft", "init": "shared"}]


def test_each_transfer_arm_is_paired_with_the_matching_no_transfer_arm():
    cfg = MultiSplitConfig(seeds=[0, 1, 2], arms=ARMS)
    assert cfg.paired_arms() == [("tr", "ind"), ("tr-shared", "ind-shared")]
    assert MultiSplitConfig(arms=ARMS, pairs=[("ind", "conv")]).paired_arms() == [("ind", "conv")]
    with pytest.raises(ValueError, match=r"pairs: unknown arm\(s\) \['x'\]"):
        MultiSplitConfig(arms=ARMS, pairs=[("x", "conv")])


def test_paired_rows_and_report_come_from_the_stored_results():
    cfg = MultiSplitConfig(seeds=[0, 1, 2], arms=ARMS[1:3])
    fields = ("test_acc", "mean_process_test_acc", "mean_process_final_test_acc", "mean_process_val_acc",
              "train_acc", "val_own_acc", "val_mean_acc")
    rows = [dict({f: acc + 0.001 * i for i, f in enumerate(fields)}, arm=arm, seed=s, adopted=0, offers=0,
                 total_steps=100, wall_time=1.0)
            for arm, accs in (("tr", [0.80, 0.82, 0.85]), ("ind", [0.79, 0.80, 0.81]))
            for s, acc in enumerate(accs)]
    got = comparisons(cfg, rows)
    assert [(c["arm"], c["baseline"], c["metric"]) for c in got] == [
        ("tr", "ind", m) for m in ("test_acc", "mean_process_test_acc", "mean_process_final_test_acc",
                                   "mean_process_val_acc")]
    mean, sd, half = _hand([0.01, 0.02, 0.04])
    for c in got:
        assert c["seeds"] == [0, 1, 2]
        assert (c["lo"], c["hi"]) == (pytest.approx(mean - half), pytest.approx(mean + half))
        assert c["detectable"] == pytest.approx(detectable(sd, 3))
    report = summary_markdown(cfg, rows)
    assert "| tr − ind | output model, test | 3 | +1.00, +2.00, +4.00 | +2.33 | 1.53 | [-1.46, +6.13] |" in report
