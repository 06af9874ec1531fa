"""`python -m shapeflow` is the `shapeflow` command."""

import sys

from shapeflow.cli import main

sys.exit(main())
