"""Unpacking downloaded archives without letting them write outside their folder.

Every member of a zip or tar archive is checked before anything is written:
an absolute path, a ``..`` component, a link whose target lies outside the
folder, or a device or other special file makes the whole archive refused
(a "zip slip" or "tar slip" attack would otherwise overwrite arbitrary files).
"""

from __future__ import annotations

import posixpath
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from divekit.errors import DataError


def _check_path(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path, or a refusal if it would land outside the target folder."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if path.is_absolute() or (len(normalised) > 1 and normalised[1] == ":"):
        raise DataError(f"{archive}: refusing member {name!r}, an absolute path; the archive is unsafe")
    if ".." in path.parts:
        raise DataError(f"{archive}: refusing member {name!r}, which climbs out with '..'; the archive is unsafe")
    return path


def _check_link(archive: Path, name: PurePosixPath, target: str, *, from_root: bool = False) -> None:
    """Refuse a link that points outside the folder.

    A symbolic link's target is relative to the link's own directory; a tar
    hard link's, to the archive's root (``from_root``).
    """
    base = "" if from_root else str(name.parent)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise DataError(f"{archive}: refusing link {str(name)!r} -> {target!r}, which points outside the folder")


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    members = []
    for info in zf.infolist():
        path = _check_path(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            _check_link(archive, path, zf.read(info).decode("utf-8", "replace"))
        members.append((info, path))
    return members


def _extract_zip(archive: Path, folder: Path) -> list[Path]:
    written = []
    with zipfile.ZipFile(archive) as zf:
        for info, path in _zip_members(archive, zf):
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                continue  # links are not needed by any data set: skipped, never followed
            target = folder.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            written.append(target)
    return written


def _extract_tar(archive: Path, folder: Path) -> list[Path]:
    written = []
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            path = _check_path(archive, member.name)
            if member.issym() or member.islnk():
                _check_link(archive, path, member.linkname, from_root=member.islnk())
            elif not (member.isfile() or member.isdir()):
                raise DataError(f"{archive}: refusing member {member.name!r}, a device or special file")
        for member in members:
            if not member.isfile():
                continue
            target = folder.joinpath(*_check_path(archive, member.name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with tf.extractfile(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            written.append(target)
    return written


def safe_extract(archive: str | Path, folder: str | Path) -> list[Path]:
    """Unpack a zip or tar archive into ``folder`` after checking every member; return the files written.

    Only regular files are written (links are checked, then skipped).

    Raises:
        DataError: the archive is unreadable or a member would escape ``folder``.
    """
    archive, folder = Path(archive), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, folder)
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, folder)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{archive}: cannot unpack the archive ({err}); delete it and download it again") from err
    raise DataError(f"{archive}: not a zip or tar archive; delete it and download it again")
