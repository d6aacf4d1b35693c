"""Small shared conventions: logging, progress bars, seeds, run directories."""
