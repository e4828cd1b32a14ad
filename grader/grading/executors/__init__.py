"""Who grades a batch: `LocalExecutor` (this machine, executors/local.py) or `RayExecutor` (a Ray
cluster, executors/ray.py, which alone imports Ray). Both implement executors/base.Executor."""
