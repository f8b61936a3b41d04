"""The model a run trains: a speech SSL backbone (`backbones.py`, per-family adaptations in
`families.py`) split at layer boundaries with pooling and a head (`ser.py`), the frozen prefix
as CUDA graphs (`graphs.py`), and FLOP counting (`flops.py`)."""
