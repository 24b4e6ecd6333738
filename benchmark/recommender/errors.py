"""Errors of the recommend command: each one carries a message that says what to fix."""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class: the command prints the message and exits 1."""


class InvalidInputError(RecommenderError, ValueError):
    """An option or file that SageMaker would reject, caught before any call (exit 2)."""


class JobFailedError(RecommenderError):
    """The Inference Recommender job ended FAILED, STOPPED or DELETED."""


class JobTimeoutError(RecommenderError):
    """The job was still running when the wait ran out."""
