"""``python -m aura_snn.cli``: the same as the ``aura-snn`` console script."""

import sys

from . import main

sys.exit(main())
