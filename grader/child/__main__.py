"""Start the child: `python -I -B -u child.py IN_DIR`, with this package copied to IN_DIR/grader/child.

The sandbox copies this file in as its entry script. Isolated mode (-I) leaves the script's folder
off sys.path, so IN_DIR goes first: the copied package, not any installed grader, is what runs.
"""

import sys

if __name__ == "__main__":
    in_dir = sys.argv[1]
    sys.path.insert(0, in_dir)
    import grader.child.main as child

    if not child.__file__.startswith(in_dir.rstrip("/") + "/"):
        sys.exit(f"the child imported {child.__file__} instead of the copy in {in_dir}")
    child.main(in_dir)
