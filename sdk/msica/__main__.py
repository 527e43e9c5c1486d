"""``python -m msica``: the msica command."""

import sys

from msica.cli import main

sys.exit(main())
