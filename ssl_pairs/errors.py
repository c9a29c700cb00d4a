"""The one exception type for bad user input.

Everything a user can get wrong (paths, names, sizes, data contents) raises
:class:`UserError` with one sentence that says what is wrong and how to fix it.
``main.py`` prints that sentence without a traceback; anything else that escapes
is a bug and keeps its traceback.
"""


class UserError(ValueError):
  """Bad input from the user: a one-sentence message, no traceback needed."""


def unknown_name_error(kind: str, name: str, valid) -> UserError:
  """Error for a name that is not in a registry, listing the valid names."""
  return UserError(f'Unknown {kind} {name!r}; choose one of: '
                   f'{", ".join(sorted(valid))}.')
