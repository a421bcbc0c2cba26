"""``python scripts/predict.py KEY=VALUE ...``: the same as ``segattn-predict`` (see conf/predict.yaml)."""
from segattn.cli.predict import main

if __name__ == "__main__":
    main()
