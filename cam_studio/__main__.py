"""``python -m cam_studio COMMAND``: every command line of the project (``cam_studio.commands``)."""

import sys

from cam_studio.commands import main

if __name__ == "__main__":
    sys.exit(main())
