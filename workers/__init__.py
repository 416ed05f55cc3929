"""Celery workers: the export → train → write-back → activate pipeline and the policy loop."""
