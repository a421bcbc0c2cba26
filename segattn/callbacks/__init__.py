"""Lightning callbacks of a training run, each instantiated from ``conf/callbacks/``."""
