"""`python -m monitord.lab`: run the lab in the foreground."""

import sys

from monitord.lab.main import main

sys.exit(main())
