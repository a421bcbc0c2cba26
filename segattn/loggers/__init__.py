"""Loggers of a training run beyond Lightning's own (each instantiated from ``conf/logger/``)."""
