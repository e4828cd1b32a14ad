"""An autograder for CIFAR-10 CNN assignments.

The pipeline, one module per stage (see README.md):
notebook -> analysis -> checks -> (extract -> sandbox -> train) -> rubric scoring -> report.
"""

__version__ = "0.1.0"
