"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class TrainwiseError(Exception):
    """Bad input (config, data, checkpoint, directory): the message names the problem and the fix."""


class ConfigError(TrainwiseError):
    pass


class DataError(TrainwiseError):
    pass


class CheckpointError(TrainwiseError):
    pass


class DivergedError(TrainwiseError):
    """The loss became NaN or inf; the last good checkpoint is kept."""
