"""Training data: the synthetic render->MediaPipe engine, shards on disk, dataset loaders."""
