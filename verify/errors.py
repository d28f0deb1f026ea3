"""Errors the engine reports to a user as one clear line (never a traceback)."""


class VerifyError(Exception):
    """Base class: a user-facing problem with input, a theorem, or a file."""


class TheoremError(VerifyError):
    """A theorem object or theorem file is malformed."""


class UsageError(VerifyError):
    """Bad command-line input: unknown id, nonsense option values."""


class NotVerified(VerifyError):
    """A request that needs a verified claim met one that did not verify (exit code 1)."""
