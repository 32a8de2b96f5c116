"""The one exception type a user sees: raised at the boundary, printed as one line."""


class UserInputError(ValueError):
    """Bad input from a user (file, name, index, weights); the message says what to do."""
