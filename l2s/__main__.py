"""``python -m l2s`` (and ``torchrun -m l2s train ...``): the l2s command line."""

from l2s.cli import main

if __name__ == "__main__":
    main(prog_name="l2s")
