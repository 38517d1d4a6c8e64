"""``python -m diffugts`` runs the command line (used by the Slicer module under PythonSlicer)."""

import sys

from .cli import main

sys.exit(main())
