"""Where a conversion writes: checks of the target folder, and writing it atomically.

A folder is written under a temporary name beside the target (same filesystem) and renamed into place only when
complete, so an interrupted or failed conversion never leaves a partial target. Replacing an existing folder moves it
aside first and deletes it only once the new one is in place. Leftovers of an interrupted run carry the target's
name and a marker (`.<name>.tsf_hf-incomplete-<pid>-*`, `.<name>.tsf_hf-replaced-<pid>-*`); the next write to the
same target deletes incomplete ones and puts a replaced folder back if its successor never arrived.
"""

import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


_INCOMPLETE = "tsf_hf-incomplete"
_REPLACED = "tsf_hf-replaced"


def check_output_dir(
    output_dir: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), overwrite: bool = False
) -> Path:
    """Refuses an output folder that would lose work: an empty name, a path that is a file, a non-empty folder
    (unless `overwrite`: it is then replaced as a whole), or a folder that is, contains or lies inside one of the
    conversion's local `inputs` (compared after resolving symlinks and relative spellings). Returns it as a `Path`."""
    if str(output_dir).strip() == "":
        raise ValueError("output_dir must name a folder, got an empty path")
    path = Path(output_dir)
    resolved = Path(os.path.realpath(path))
    for source in inputs:
        if source is None or not Path(source).exists():
            continue  # a Hub repo id or no input: nothing local to protect
        source_resolved = Path(os.path.realpath(source))
        if resolved == source_resolved or resolved.is_relative_to(source_resolved):
            raise ValueError(f"output_dir {path} is or lies inside the input {source}: choose a folder outside it")
        if source_resolved.is_relative_to(resolved):
            raise ValueError(f"output_dir {path} holds the input {source}: choose a folder that does not contain it")
    if path.exists() and not path.is_dir():
        raise ValueError(f"output_dir {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ValueError(
            f"output_dir {path} exists and is not empty; pass overwrite=True (--overwrite) to replace the whole folder"
        )
    return path


@contextmanager
def atomic_output_dir(output_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yields a new temporary folder beside `output_dir` to write into; when the block completes, the folder is
    flushed to disk and renamed to `output_dir` (replacing an existing folder only with `overwrite`). When the block
    raises, the temporary folder (and any parent folder created for it) is removed and the error propagates."""
    target = Path(os.path.realpath(output_dir))
    created_parents = [parent for parent in target.parents if not parent.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    temporary = _sibling(target, _INCOMPLETE)
    temporary.mkdir()  # unlike tempfile.mkdtemp's 0o700, the folder gets the permissions the user's umask gives
    try:
        yield temporary
        _flush_tree(temporary)
        _move_into_place(temporary, target, overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        for parent in created_parents:  # innermost first; stops at the first one something else has filled
            try:
                parent.rmdir()
            except OSError:
                break
        raise


def _sibling(target: Path, marker: str) -> Path:
    """A fresh name beside `target` that says whose (`marker`, this process) it is."""
    return target.parent / f".{target.name}.{marker}-{os.getpid()}-{secrets.token_hex(6)}"


def clean_leftovers(target: str | os.PathLike) -> None:
    """Removes what interrupted writes of `target` left beside it (skipping those of processes still running):
    incomplete folders are deleted; a folder moved aside for replacement goes back to `target` when its replacement
    never arrived, and is deleted otherwise."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    for leftover in sorted(target.parent.iterdir()):
        marker, pid = _parse_leftover(leftover.name, target.name)
        if marker is None or _is_running(pid):
            continue
        if marker == _REPLACED and not target.exists():
            os.rename(leftover, target)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _parse_leftover(name: str, target_name: str) -> tuple[str | None, int]:
    """`(marker, pid)` of a leftover's name `.<target>.<marker>-<pid>-<random>`, or `(None, 0)`."""
    for marker in (_INCOMPLETE, _REPLACED):
        prefix = f".{target_name}.{marker}-"
        if name.startswith(prefix):
            pid = name[len(prefix) :].split("-", 1)[0]
            if pid.isdigit():
                return marker, int(pid)
    return None, 0


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _flush_tree(folder: Path) -> None:
    """fsyncs every file of `folder`, then the folder, so that a rename after it never publishes unwritten data."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as file:
                os.fsync(file.fileno())
    _fsync_directory(folder)


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _move_into_place(temporary: Path, target: Path, overwrite: bool) -> None:
    """Renames the complete `temporary` folder to `target`. An existing non-empty `target` (only with `overwrite`) is
    first moved aside under a recognisable name and deleted once the new folder is in place, so that a crash at any
    point leaves the old folder or the new one."""
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise FileExistsError(f"output_dir {target} was filled while the conversion ran; nothing was replaced")
        aside = _sibling(target, _REPLACED)
        os.rename(target, aside)
        os.rename(temporary, target)
        _fsync_directory(target.parent)
        shutil.rmtree(aside)
        return
    if target.is_dir():
        target.rmdir()
    os.rename(temporary, target)
    _fsync_directory(target.parent)
