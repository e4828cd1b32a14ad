"""A Gradescope autograder: build the zip (build.py), prepare its image (prepare.py), grade each
submission (run.py); config.py is what the zip carries and where Gradescope puts things.
The results.json itself is a rendering of the GradeResult: grader/report/gradescope.py."""
