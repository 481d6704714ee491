"""``python -m cityos`` = the ``cityos`` command."""

from cityos.ops.cli import main

main()
