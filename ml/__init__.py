"""The Python side of the predictive analytics warehouse: warehouse I/O and models."""
