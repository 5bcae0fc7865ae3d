"""``python -m spheres.cli``: the same as the ``spheres`` command."""

import sys

from spheres.cli import main

sys.exit(main())
