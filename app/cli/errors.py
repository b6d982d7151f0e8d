"""The CLI's failures. Each is one line to show (saying what to do about it), the API's list of
problems when there is one, and the exit code the command ends with: 1 a failure (the
server, the database, a file, a run), 2 a usage error (arguments or environment variables),
130 interrupted (Ctrl-C, as a shell counts it)."""


class CliError(Exception):
    """A command that could not do its job: ``message`` (one line), ``details`` (the API's
    problems, each ``{"field", "message"}``, or None)."""

    exit_code = 1

    def __init__(self, message: str, details=None):
        super().__init__(message)
        self.message = message
        self.details = details


class UsageError(CliError):
    """Wrong arguments or a wrong environment variable: nothing was tried."""

    exit_code = 2


class Interrupted(CliError):
    """Ctrl-C while the command waited; ``message`` says what goes on without it."""

    exit_code = 130
