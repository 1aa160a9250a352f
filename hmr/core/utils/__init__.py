"""Small shared utilities: atomic outputs, restricted unpickling, logging helpers."""
