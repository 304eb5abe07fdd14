"""Sources (where orders come from) and targets (where orders go), one folder each."""
