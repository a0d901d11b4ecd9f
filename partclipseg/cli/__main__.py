"""``python -m partclipseg.cli``."""
import sys

from . import main

sys.exit(main())
