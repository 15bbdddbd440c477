"""`python -m mans.stream --print-frames FILE ...`: raw recordings as frame lines (`mans.evaluation.stream`)."""

import sys

from mans.evaluation.stream import main

if __name__ == "__main__":
    sys.exit(main())
