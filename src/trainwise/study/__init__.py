"""Studies: a grid of trials, executors that run them, a results store and a report."""
