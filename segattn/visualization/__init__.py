"""Pictures: attention maps from the real forward pass (``capture``, ``maps``), matplotlib drawing
(``draw``, ``grids``), training curves (``curves``) and run comparisons (``compare``)."""
