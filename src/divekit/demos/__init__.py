"""Small end-to-end demonstrations of the notes that are not training runs (attention pooling on a toy problem)."""
