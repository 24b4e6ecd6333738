"""The errors the `model` package raises on bad input.

Every error is a `ModelError`; its message names the file at fault and says what to do about it.
A command-line front end prints the message and exits 1; a caller that wants to tell the cases
apart catches the subclass.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every error `model` raises because of its input (never because of a bug)."""


# A serving artifact (manifest.json, model.so, model.tl, verification.npz) is broken.


class ArtifactError(ModelError):
    """A serving artifact is missing, malformed or does not match its manifest."""


class ManifestError(ArtifactError):
    """`manifest.json` is missing, is not valid JSON, or does not follow format version 1."""


class IntegrityError(ArtifactError):
    """A file listed in the manifest is missing, escapes the artifact or has another sha256."""


class VerificationDataError(ArtifactError):
    """`verification.npz` is unreadable or its arrays have the wrong dtype or shape."""


# A source model (what SageMaker training or a user wrote) cannot be imported.


class SourceError(ModelError):
    """A source model cannot be imported."""


class UnsupportedFormatError(SourceError):
    """A file is none of the XGBoost model formats this package reads."""


class UnsafePickleError(SourceError):
    """A pickle refers to something other than the state of an `xgboost.core.Booster`."""


class UnsafeArchiveError(SourceError):
    """A tar archive holds a member that could write outside the target or is not a regular file."""


class UnsupportedModelError(SourceError):
    """The model loads but cannot be served (for example it has more than one output per row)."""


# Building the serving artifact failed.


class BuildError(ModelError):
    """Compiling or checking the serving artifact failed."""


class CompileError(BuildError):
    """The C toolchain is missing or failed to compile the generated code."""


class ParityError(BuildError):
    """Two predictors of the same model disagree by more than the tolerance."""
