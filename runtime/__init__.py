"""TorchTitan integration: the only part of procdsl that imports torch or torchtitan."""
