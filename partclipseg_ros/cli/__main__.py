"""``python -m partclipseg_ros.cli``."""
import sys

from . import main

sys.exit(main())
