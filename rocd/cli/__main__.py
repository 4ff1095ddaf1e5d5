import sys

from rocd.cli import main

sys.exit(main())
