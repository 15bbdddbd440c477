"""Scoring checkpoints and what is built on it: score fusion, --explain, --stream, the paper's NTU table."""
