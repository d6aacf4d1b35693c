"""The end-to-end CPU demo (``videor1 demo``): see ``videor1.demo.pipeline``."""
