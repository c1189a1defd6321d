"""The ``reconcile`` command: composition root of backpack-reconcile (CLI, config, demo)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("backpack-reconcile")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

#: Exit codes of every command (README, "Exit codes").
EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_DIFFERENCE = 0, 1, 2, 3
