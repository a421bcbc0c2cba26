"""Train a segmentation model: ``python train.py head=ccnet backbone=resnet50 data=cityscapes data.root=...``."""
from segattn.cli.train import main

if __name__ == "__main__":
    main()
