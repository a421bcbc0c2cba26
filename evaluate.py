"""Evaluate a checkpoint: ``python evaluate.py ckpt=<.ckpt | run folder> [eval.mode=slide ...]`` (see conf/eval.yaml)."""
from segattn.cli.evaluate import main

if __name__ == "__main__":
    main()
