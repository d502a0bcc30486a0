"""``python -m mpcov``: the command line."""

import sys

from mpcov.cli import main

sys.exit(main())
