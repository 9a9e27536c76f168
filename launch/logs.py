"""Logging set-up for the launch scripts (not part of the library: library functions only
report through absl logging or a log_fn they are given)."""
import logging as std_logging

from absl import logging


class _DropModules(std_logging.Filter):

  def __init__(self, fragments):
    super().__init__()
    self.fragments = fragments

  def filter(self, record: std_logging.LogRecord) -> bool:
    return not any(f in record.pathname for f in self.fragments) or record.levelno >= std_logging.WARNING


def setup(verbosity: str = 'info', quiet=('orbax',)) -> None:
  """absl logging at ``verbosity``, with INFO chatter from ``quiet`` packages dropped."""
  logging.set_verbosity(verbosity)
  std_logging.getLogger('absl').addFilter(_DropModules(tuple(quiet)))
  logging.get_absl_handler().addFilter(_DropModules(tuple(quiet)))
