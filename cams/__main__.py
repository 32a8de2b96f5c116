import sys

from cams.cli import main

sys.exit(main())
