"""What the attention blocks of a model do while it trains: their gates (``gates``), how far and how
spread out they look on real images (``reach``), and the mean activation of SE/CBAM gates (``gating``).
``measure`` runs them all on a fixed batch."""
