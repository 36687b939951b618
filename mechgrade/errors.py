"""Domain errors. Library code raises these; only the CLI turns them into messages."""


class MechgradeError(Exception):
    """Base class: ``str(err)`` is one sentence a user can act on."""


class ModelUnavailable(MechgradeError):
    """A model spec names weights that cannot be loaded here (not cached, no network, bad path)."""


class UnknownLesson(MechgradeError):
    """No lesson with this id is installed."""


class SpecError(MechgradeError):
    """A lesson spec file is malformed."""


class WorkspaceError(MechgradeError):
    """A student workspace is missing, or would be overwritten."""


class ReferenceUnavailable(MechgradeError):
    """A student bundle has no reference solutions; instructor-only features need them."""


class WorkerUnavailable(MechgradeError):
    """The student worker could not start (its model, its user, its interpreter): no case can run."""


class AuthoringError(MechgradeError):
    """``mechgrade new`` cannot write what was asked (a bad name, a folder in the way)."""
