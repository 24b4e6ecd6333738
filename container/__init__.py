"""The `serve` entrypoint SageMaker runs, and its worker and logging configuration."""
