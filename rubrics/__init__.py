"""Rubrics shipped with the grader (TOML); cifar10.toml is the default."""
