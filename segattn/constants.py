"""Constants shared by the data pipeline, the models, the losses and the metrics (pixel values 0..255 unless noted)."""

IGNORE_INDEX = 255  # label of pixels that no loss or metric counts

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, fraction of 255: what the data pipeline subtracts
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)  # official CCNet: BGR pixels minus these, no std
