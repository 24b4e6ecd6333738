"""The SageMaker-compatible inference server: /ping and /invocations on the compiled predictor."""
