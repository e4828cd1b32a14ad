"""Training in the grader's hands: the data the sandbox may see, the student's classes retrained
in the sandbox and scored by the parent, and the reference networks.

    runs.py         ModelRun, the record of one model's training
    context.py      TrainingContext: the data, the references and the isolation, prepared once per batch
    retrain.py      the student's classes: models_run, a training child each, the parent's metrics
    references.py   the rubric's reference networks, trained once and cached
"""
