"""The local side of `python -m benchmark recommend`: what it builds and writes on this machine.

`archive` (the sample payload, from the same rows as the Locust traffic), `estimate` (the local
`capacity.json` to compare with) and `report` (CSV, Markdown, PNG, `autoscaling.json`). The AWS
side (model package, job, results, scaling recommendation) is `deploy.recommender`.
"""
