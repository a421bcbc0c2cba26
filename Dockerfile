# GPU image: CUDA runtime with PyTorch, segattn installed, `python train.py` as entry point.
#   docker build -t segattn .
#   docker run --gpus all --shm-size 8g -v /data/cityscapes:/data/cityscapes -v $PWD/outputs:/app/outputs \
#       segattn head=ccnet data=cityscapes data.root=/data/cityscapes
#   docker run --gpus all --shm-size 8g ... --entrypoint torchrun segattn --nproc_per_node=4 train.py trainer=ddp ...
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
ENV NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Editable install: the package finds its Hydra configs in /app/conf.
COPY pyproject.toml README.md ./
COPY segattn ./segattn
RUN pip install -e .
COPY conf ./conf
COPY scripts ./scripts
COPY train.py evaluate.py ./
VOLUME ["/data", "/app/outputs"]
ENTRYPOINT ["python", "train.py"]
