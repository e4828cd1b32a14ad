"""The grader's side of the trust boundary: student code runs only through this package.

    extract.py       the model classes and what they need, sliced out of the notebook
    isolation.py     bubblewrap / namespace / none: the walls, what the child sees, its uid
    detect.py        which kind works here, probed with the real interpreter
    state.py         the grader's private folders, out of every child's reach
    process.py       one child process: limits, per-phase deadlines, capped output, cleanup
    cgroup.py        a memory cgroup per child, where the grader may make one
    gpu.py           a CUDA child's GPU: device nodes, driver libraries, its GPU memory
    proctree.py      the watchdog's view of a child: process tree, memory, disk
    files.py         reading what a child wrote as if an attacker wrote it
    capture.py       a child's stdout and stderr, head and tail
    model_child.py   the grader's own child program (grader/child) on one model
    models_run.py    the facts of the models_run check

What runs on the other side is grader/child, copied whole into every child.
"""
