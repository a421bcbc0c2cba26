# GPU image: docker build -t segattn . && docker run --gpus all --shm-size 8g \
#   -v /data/cityscapes:/data/cityscapes -v $PWD/outputs:/app/outputs segattn head=ccnet data=cityscapes data.root=/data/cityscapes
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
ENV NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY segattn ./segattn
COPY conf ./conf
COPY scripts ./scripts
COPY train.py evaluate.py ./
RUN pip install --no-cache-dir -e .
VOLUME ["/data", "/app/outputs"]
ENTRYPOINT ["python", "train.py"]
