"""Report cells are the mean ± sample standard deviation over a group's seeds, from stored rows."""

import numpy as np

from trainwise.study.report import table


def row(regimen, budget, seed, test_acc, wall_time, status="done"):
    metrics = dict(test_acc=test_acc, best_test_acc=test_acc, wall_time=wall_time, steps=10,
                   samples_forwarded=320, samples_backpropagated=320, time_to_target=None)
    return dict(regimen=regimen, budget=budget, seed=seed, status=status, metrics=metrics)


def test_cells_are_mean_and_sample_std_over_seeds():
    accs = {0: 0.812, 1: 0.845, 2: 0.790}
    rows = [row("uniform/none", 0.3, s, a, 10.0 + s) for s, a in accs.items()]
    rows += [row("uniform/none", 1.0, 0, 0.9, 20.0), row("uniform/none", 0.3, 3, 0.1, 1.0, status="failed")]
    header, body = table(rows)
    cells = {(b[0], b[1]): dict(zip(header, b)) for b in body}  # keyed by (regimen, budget "0.3")
    cell = cells[("uniform/none", "0.3")]
    a = np.array(list(accs.values())) * 100
    assert cell["seeds"] == "3"  # the failed row is not counted
    assert cell["test acc % (final)"] == f"{a.mean():.2f} ± {a.std(ddof=1):.2f}"
    w = np.array([10.0, 11.0, 12.0])
    assert cell["wall time s"] == f"{w.mean():.1f} ± {w.std(ddof=1):.1f}"
    assert cells[("uniform/none", "1")]["test acc % (final)"] == "90.00 ± 0.00"  # one seed
