import io
import stat
import tarfile
import zipfile

import pytest

from divekit.data.archive import safe_extract
from divekit.errors import DataError


def _zip(path, members, links=()):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path, files=(), symlinks=(), hardlinks=(), devices=()):
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files:
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text))
        for kind, entries in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in entries:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                tf.addfile(info)
        for name in devices:
            info = tarfile.TarInfo(name)
            info.type = tarfile.CHRTYPE
            tf.addfile(info)
    return path


def test_zip_files_are_unpacked_and_safe_links_skipped(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"fra-eng/fra.txt": "go.\tva !\n", "top.txt": "x"}, links=[("fra-eng/l", "fra.txt")])
    written = safe_extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["fra-eng/fra.txt", "top.txt"]
    assert (tmp_path / "out" / "fra-eng" / "fra.txt").read_text() == "go.\tva !\n"
    assert not (tmp_path / "out" / "fra-eng" / "l").exists()


@pytest.mark.parametrize("members, links, message", [
    ({"../evil.txt": "x"}, (), "climbs out"),
    ({"a/../../evil.txt": "x"}, (), "climbs out"),
    ({"/etc/evil.txt": "x"}, (), "absolute"),
    ({"C:/evil.txt": "x"}, (), "absolute"),
    ({"ok.txt": "x"}, [("link", "../../etc/passwd")], "points outside"),
    ({"ok.txt": "x"}, [("link", "/etc/passwd")], "points outside"),
])  # fmt: skip
def test_zip_members_escaping_the_folder_refuse_the_whole_archive(tmp_path, members, links, message):
    archive = _zip(tmp_path / "bad.zip", {"first.txt": "x", **members}, links)
    with pytest.raises(DataError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


def test_tar_files_are_unpacked(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", files=[("d/fra.txt", b"hi.\tsalut !\n")], symlinks=[("d/l", "fra.txt")],
                   hardlinks=[("d/h", "d/fra.txt")])  # fmt: skip
    written = safe_extract(archive, tmp_path / "out")
    assert [p.name for p in written] == ["fra.txt"]


@pytest.mark.parametrize("kwargs, message", [
    ({"files": [("../x", b"1")]}, "climbs out"),
    ({"symlinks": [("d/l", "../../x")]}, "points outside"),
    ({"symlinks": [("l", "/etc/passwd")]}, "points outside"),
    ({"hardlinks": [("d/h", "../x")]}, "points outside"),
    ({"devices": ["dev"]}, "special file"),
])  # fmt: skip
def test_tar_members_escaping_the_folder_are_refused(tmp_path, kwargs, message):
    archive = _tar(tmp_path / "bad.tar.gz", **kwargs)
    with pytest.raises(DataError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="not a zip or tar archive"):
        safe_extract(tmp_path / "x.zip", tmp_path / "out")
