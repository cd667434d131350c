"""procdsl: curricula for procedural pretraining, as files."""

__version__ = "0.1.0"
