"""From a corpus on disk to batches: dataset adapters (`adapters/`, one per layout), audio
decoding and cropping, the synthetic corpus, length-bucketed batching and the loader."""
