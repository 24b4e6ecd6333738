"""SageMaker Inference Recommender: register the model, run a job, report the answer.

`benchmark.recommend` is the command-line front end; the modules here each hold one noun:
`validation` (the rules botocore does not check), `archive` (the sample payload), `metadata`
(the models Inference Recommender knows), `registry` (model package group and version), `job`
(request, submit, wait, steps), `results` (rows and ordering), `scaling` (autoscaling
suggestion), `instant` (describe_model's deployment recommendation), `estimate` (the local
Locust capacity file), `report` (CSV, Markdown, PNG) and `calls` (printing a dry run's calls).
"""
