"""Start the Fast3R Studio desktop app: ``python main.py [INPUT] [--model ...] [--size 512|224]``."""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
