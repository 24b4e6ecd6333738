"""SageMaker Inference Recommender, through the one gateway and the one validation module.

`package` (model package group and version), `metadata` (the models Inference Recommender
knows), `job` (request, submission, the wait, steps), `results` (rows and ordering), `scaling`
(the scaling recommendation request and its answer as an `AutoscaleSuggestion`) and `instant`
(describe_model's deployment recommendation). `python -m benchmark recommend` drives them.
"""
