"""The report's gradient-variance figure: drawn from the trials' measurements, absent without them."""

from __future__ import annotations

from trainwise.gradstats.report import series, variance_plots


def rec(step, var):
    return {"step": step, "kind": "gradient_variance", "draws": 4, "var": var, "nvar": 0.5, "var_uniform": 2 * var,
            "nvar_uniform": 0.6, "var_uniform_2b": var, "nvar_uniform_2b": 0.4, "seconds": 0.1}


def test_series_average_the_seeds_per_step():
    ms = [{"gradient_variance": [rec(10, 1.0), rec(20, 3.0)]}, {"gradient_variance": [rec(10, 2.0)]}]
    s = series(ms)
    assert list(s) == [10, 20] and s[10]["var"] == 1.5 and s[20]["var_uniform"] == 6.0


def test_a_figure_only_when_trials_carry_measurements():
    groups = {("gc", 1.0): [{"gradient_variance": [rec(10, 1.0), rec(20, 0.5)]}], ("uniform", 1.0): [{}]}
    png = variance_plots(groups)["gradient_variance"]
    assert png.startswith(b"\x89PNG")
    assert variance_plots({("uniform", 1.0): [{"test_acc": 0.5}]}) == {}
