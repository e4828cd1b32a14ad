"""Everything that runs inside the sandbox, next to the student's code.

The sandbox copies this folder whole into each child (under bubblewrap the child sees nothing of
the grader's own files), so every module here imports only the standard library, numpy, torch
and this package; tests/test_layout.py holds it to that. What crosses the trust boundary is
defined here once, and the grader imports it from here:

    protocol.py   the request, the report, the phases, the files; History and EpochRecord
    config.py     TrainConfig, the fixed training configuration
    __main__.py   the entry script; main.py the child's program; explain.py errors in words
    seal.py       what student code must not replace in this process
    runtime.py    device flags and what a model can do (logits_of: the logits of a forward)
    train.py      the fixed-config trainer (also trains the reference networks in the grader)

This __init__ imports nothing, so `grader.child.protocol` and `grader.child.config` stay free of
torch for the static `grader check` path.
"""
