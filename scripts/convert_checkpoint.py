"""Convert a released checkpoint: ``python scripts/convert_checkpoint.py SRC DST [--format ...] [--dataset ...]``."""
from segattn.cli.convert import main

if __name__ == "__main__":
    main()
