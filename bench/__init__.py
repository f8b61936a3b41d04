"""serbench: how efficiently can speech transformers be finetuned for dimensional SER?"""

__version__ = "0.1.0"
