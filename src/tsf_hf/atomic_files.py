"""Writing a file atomically: under a temporary name beside it, renamed into place only when complete."""

import os
import secrets
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Calls `write` on a new binary file beside `path` and renames that file to `path` (replacing a file there) once
    `write` returns, so that `path` never holds a partial file; the temporary file is removed when `write` fails."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as file:  # unlike tempfile.mkstemp's 0o600, the user's umask sets the permissions
            write(file)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
