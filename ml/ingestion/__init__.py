"""Getting data into the warehouse: the simulator (`ml.ingestion.simulator`) lands the raw
business tables and their ground truth, the CSV loader (`ml.ingestion.csv`) lands a file of
your own."""
