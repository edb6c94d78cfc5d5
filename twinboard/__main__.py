"""`python -m twinboard`: the same as the `twinboard` command."""
import sys

from twinboard.cli import main

if __name__ == "__main__":
    sys.exit(main())
