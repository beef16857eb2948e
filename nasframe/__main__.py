"""``python -m nasframe`` runs the ``nasframe`` command."""

from nasframe.cli import main

main()
