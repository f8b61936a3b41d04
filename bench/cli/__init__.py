"""The commands, and nothing else: each module turns arguments into configs, calls the library
and prints. `args.py` is what they share (the run flags, strategy lists, seeds, consoles); no
module outside this package imports one of them."""
