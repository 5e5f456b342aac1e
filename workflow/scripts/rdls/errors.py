"""The one error type that rdls raises for input a user can fix."""


class InputError(ValueError):
    """Bad input: the message names the file, the row or key, the column and the fix."""
