"""Dataset adapters, one module per corpus layout.

An adapter reads a corpus' label files into a `Listing` (rows of path, raw labels, the corpus' own
split tag, speaker) without touching audio; `validate.assemble` then checks every row (labels,
duplicates, the audio file itself), maps labels to [-1, 1] and assigns train/val/test.
`bench.data.datasets` holds the registry of adapters by name.
"""
