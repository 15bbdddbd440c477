"""`python -m mans.reproduce`: the paper's NTU table in one command (`mans.evaluation.reproduce`)."""

import sys

from mans.evaluation.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
