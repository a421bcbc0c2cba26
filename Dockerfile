# GPU image: the tested versions (docker/tested-versions.txt: torch 2.14.1 + CUDA 13.0 wheels, which bring
# their own CUDA runtime), segattn installed as a package (its configs inside), `segattn-train` as entry point.
#   docker build -t segattn .
#   docker run --gpus all --shm-size 8g -v /data/cityscapes:/data/cityscapes -v $PWD/outputs:/app/outputs \
#       segattn head=ccnet data=cityscapes data.root=/data/cityscapes
#   docker run --gpus all --shm-size 8g ... --entrypoint torchrun segattn --nproc_per_node=4 train.py ...
FROM python:3.11-slim
ENV NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY docker/tested-versions.txt ./docker/
RUN pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu130
COPY pyproject.toml setup.py README.md ./
COPY segattn ./segattn
COPY conf ./conf
# the check runs outside /app, so that it imports the installed package, not the sources beside it
RUN pip install -c docker/tested-versions.txt . && cd / && python -c "from segattn.cli.config import CONFIG_DIR; \
    assert (CONFIG_DIR / 'train.yaml').is_file() and 'site-packages' in str(CONFIG_DIR), CONFIG_DIR"
COPY scripts ./scripts
COPY train.py evaluate.py ./
VOLUME ["/data", "/app/outputs"]
ENTRYPOINT ["segattn-train"]
