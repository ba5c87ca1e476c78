"""Where commands write: output paths are checked before any work, and only a command's own earlier output
is ever replaced (with --overwrite); new files and folders get the user's umask."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import NLBInputError, input_error


def current_umask() -> int:
    """The process umask (read by setting and restoring it: os has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode open() would give a new file: 0o666 less the umask (mkstemp's files are 0o600)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode mkdir would give a new folder: 0o777 less the umask (mkdtemp's folders are 0o700)."""
    return 0o777 & ~current_umask()


def check_parent(path: str | os.PathLike, flag: str) -> None:
    """One-line error unless `path`'s folder exists or can be made, and is writable."""
    path = Path(path).absolute()
    anc = path.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise input_error(str(path), f"{flag}: {anc} is a file, not a folder", "a path inside a writable folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise input_error(str(path), f"{flag}: folder {anc} is not writable", "a path inside a writable folder")


def check_folder_out(path: str | os.PathLike, flag: str) -> None:
    """One-line error unless `path` can be a folder to write into (its parent writable, not itself a file)."""
    check_parent(path, flag)
    if Path(path).exists() and not Path(path).is_dir():
        raise input_error(str(path), f"{flag}: is a file", "a folder")


def check_file_out(path: str | os.PathLike, flag: str) -> None:
    """One-line error unless `path` can be written as a file (its folder writable, not itself a folder)."""
    check_parent(path, flag)
    if Path(path).is_dir():
        raise input_error(str(path), f"{flag}: is a folder", "a file name")


def claim_output(path: str | os.PathLike, flag: str, what: str, is_ours: Callable[[Path], bool],
                 overwrite: bool, folder: bool = True) -> bool:
    """Check an output path before any work; True when it holds a previous `what` that will be replaced.

    A new path (or an empty folder) is always fine. Anything else is replaced only when `is_ours` recognises
    it as this command's own earlier output and --overwrite was given; otherwise a one-line error, nothing touched.
    """
    path = Path(path)
    check_parent(path, flag)
    if not path.exists() and not path.is_symlink():
        return False
    kind = "folder" if folder else "file"
    if folder and not path.is_dir():
        raise input_error(str(path), f"{flag}: is a file", f"a new or empty folder for the {what}")
    if not folder and path.is_dir():
        raise input_error(str(path), f"{flag}: is a folder", f"a file name for the {what}")
    if folder and not any(path.iterdir()):
        return False
    if not is_ours(path):
        raise input_error(str(path), f"{flag}: not a previous {what}; nothing touched",
                          f"a new {kind}, an empty folder, or a previous {what} with --overwrite"
                          if folder else f"a new {kind}, or a previous {what} with --overwrite")
    if not overwrite:
        raise input_error(str(path), f"{flag}: holds a previous {what}", "--overwrite to replace it, or a new path")
    return True


_MADE_PARENTS: dict[Path, list[Path]] = {}  # temp folder -> the parent folders make_temp_dir created for it


def make_temp_dir(dest: str | os.PathLike) -> Path:
    """A new temporary folder beside `dest` (parents made if needed) with the umask's mode, to be renamed onto
    `dest` when complete (or removed by `discard_temp_dir`); a one-line error naming `dest` if it cannot be made."""
    dest = Path(dest)
    missing = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        _remove_empty(missing)
        raise NLBInputError(f"{dest}: cannot create a folder there ({exc.strerror or exc})") from None
    os.chmod(work, dir_mode())  # mkdtemp made it 0700: colleagues and CI artifacts could not read the run
    _MADE_PARENTS[work] = missing
    return work


def discard_temp_dir(work: Path) -> None:
    """Remove a failed command's temp folder and the parents `make_temp_dir` made for it that are still empty:
    a command never leaves behind (or deletes) anything but what it created."""
    shutil.rmtree(work, ignore_errors=True)
    _remove_empty(_MADE_PARENTS.pop(work, []))


def _remove_empty(folders: list[Path]) -> None:
    """rmdir each folder, deepest first, while it is empty (something else may have written there since); one
    that was never made (mkdir failed below it) is passed over."""
    for folder in folders:  # listed deepest first
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def replace_folder(work: Path, dest: Path, replacing: bool) -> None:
    """Rename the finished folder `work` onto `dest`; a previous output there (checked by the caller) is removed
    only after the new one is in place."""
    if not replacing:
        os.replace(work, dest)  # onto a missing or empty folder
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
        os.replace(dest, old / dest.name)
        os.replace(work, dest)
        shutil.rmtree(old)
    _MADE_PARENTS.pop(work, None)  # the parents now hold the output: nothing to clean up any more
