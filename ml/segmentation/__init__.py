"""Customer segments: k-means over purchase behaviour (`behaviour`, `kmeans`, `run`)."""
