"""`handviz bench`: latency of the cascade and throughput of the live pipeline, measured in one run."""
