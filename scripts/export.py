"""``python scripts/export.py KEY=VALUE ...``: the same as ``segattn-export`` (see conf/export.yaml)."""
from segattn.cli.export import main

if __name__ == "__main__":
    main()
