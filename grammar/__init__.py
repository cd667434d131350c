"""The .curr grammar, shipped as package data (see procdsl.parse)."""
