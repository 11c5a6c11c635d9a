"""atomic_output(): the destination only ever holds a complete file."""

from __future__ import annotations

import os

import pytest

from vidcolor.durable import replacing, temporaries_of, temporary_beside, write_atomic
from vidcolor.errors import EncodingError, UsageError
from vidcolor.media.atomic import atomic_output, same_file, stale_partials


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_success_renames_onto_destination(tmp_path):
    dst = tmp_path / "out.mp4"
    with atomic_output(dst, overwrite=False) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".")
        assert not dst.exists()
        tmp.write_bytes(b"complete film")
    assert dst.read_bytes() == b"complete film"
    assert _leftovers(tmp_path) == ["out.mp4"]
    umask = os.umask(0)
    os.umask(umask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~umask  # not the 0600 of a temporary file


def test_temporary_names_are_unique(tmp_path):
    dst = tmp_path / "out.mkv"
    with atomic_output(dst, overwrite=False) as a, atomic_output(dst, overwrite=True) as b:
        assert a != b
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert dst.read_bytes() == b"a"  # the outer block finished last


@pytest.mark.parametrize("exc", [RuntimeError("encoder died"), KeyboardInterrupt()])
def test_exception_leaves_nothing(tmp_path, exc):
    dst = tmp_path / "out.mp4"
    with pytest.raises(type(exc)):
        with atomic_output(dst, overwrite=False) as tmp:
            tmp.write_bytes(b"half a film")
            raise exc
    assert _leftovers(tmp_path) == []


def test_an_interrupt_right_after_the_file_is_made_leaves_nothing(tmp_path, monkeypatch):
    """A Ctrl-C or SIGTERM that lands as the temporary file is created, before the block starts
    (seen on a loaded machine: the test of a signal to the CLI found it left behind)."""
    import vidcolor.media.atomic as atomic

    real_close = os.close

    def interrupted(fd: int) -> None:
        real_close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "close", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(tmp_path / "out.mp4", overwrite=False):
            pytest.fail("the block must not start")
    assert _leftovers(tmp_path) == []


def test_failure_keeps_previous_destination(tmp_path):
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(dst, overwrite=True) as tmp:
            tmp.write_bytes(b"new but broken")
            raise RuntimeError("boom")
    assert dst.read_bytes() == b"old" and _leftovers(tmp_path) == ["out.mp4"]


def test_existing_destination_needs_overwrite(tmp_path):
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"old")
    with pytest.raises(UsageError, match="--overwrite"):
        with atomic_output(dst, overwrite=False):
            pass
    assert dst.read_bytes() == b"old" and _leftovers(tmp_path) == ["out.mp4"]
    with atomic_output(dst, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert dst.read_bytes() == b"new"


def test_missing_or_unwritable_folder(tmp_path):
    with pytest.raises(EncodingError, match="folder"):
        with atomic_output(tmp_path / "nope" / "out.mp4", overwrite=False):
            pass
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions are not enforced
            pytest.skip("cannot make a read-only folder here")
        with pytest.raises(EncodingError, match="writable"):
            with atomic_output(ro / "out.mp4", overwrite=False):
                pass
    finally:
        ro.chmod(0o700)


def test_nothing_written_is_an_error(tmp_path):
    dst = tmp_path / "out.mp4"
    with pytest.raises(EncodingError):
        with atomic_output(dst, overwrite=False):
            pass
    assert _leftovers(tmp_path) == []


def test_same_file(tmp_path):
    a = tmp_path / "a.mp4"
    a.write_bytes(b"x")
    (tmp_path / "link.mp4").symlink_to(a)
    os.link(a, tmp_path / "hard.mp4")
    assert same_file(a, tmp_path / "link.mp4")
    assert same_file(a, tmp_path / "hard.mp4")
    assert same_file(a, tmp_path / "sub" / ".." / "a.mp4")
    assert not same_file(a, tmp_path / "b.mp4")


def test_stale_partials_are_those_of_their_destination_only(tmp_path):
    """What a killed writer leaves is found by its destination's name, and nothing else is."""
    left = {}
    for dst in (tmp_path / "a.mp4", tmp_path / "a.b.mp4"):
        with pytest.raises(KeyboardInterrupt), atomic_output(dst, overwrite=False) as tmp:
            os.link(tmp, tmp_path / "hold")  # a SIGKILLed writer would leave its temporary file
            raise KeyboardInterrupt
        os.replace(tmp_path / "hold", tmp)
        left[dst] = tmp
    (tmp_path / ".a.mkv.partial.mp4").write_bytes(b"")  # not a name atomic_output makes for a.mp4
    for dst, tmp in left.items():
        assert stale_partials(dst) == [tmp]


# ------------------------------------------------------ durable.py: small files and checkpoints


def test_write_atomic_replaces_whole_with_the_mode_asked(tmp_path):
    dst = tmp_path / "deep" / "token"
    write_atomic(dst, "secret", mode=0o600)
    assert dst.read_text() == "secret" and dst.stat().st_mode & 0o777 == 0o600
    write_atomic(dst, b"new", durable=True)
    umask = os.umask(0)
    os.umask(umask)
    assert dst.read_bytes() == b"new" and dst.stat().st_mode & 0o777 == 0o666 & ~umask
    assert _leftovers(dst.parent) == ["token"]


def test_replacing_keeps_the_old_file_when_the_block_fails(tmp_path):
    dst = tmp_path / "model.pt"
    dst.write_bytes(b"old weights")
    with pytest.raises(KeyboardInterrupt), replacing(dst, durable=True) as tmp:
        assert tmp.name.endswith(".tmp") and tmp.name.startswith(".model.pt.")
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert dst.read_bytes() == b"old weights" and _leftovers(tmp_path) == ["model.pt"]


def test_temporary_beside_removes_what_the_block_did_not_move(tmp_path):
    with temporary_beside(tmp_path / "clip.mp4", keep_suffix=True) as tmp:
        assert tmp.exists() and tmp.suffix == ".mp4" and tmp.stat().st_mode & 0o777 == 0o600
        assert temporaries_of(tmp_path / "clip.mp4", keep_suffix=True) == [tmp]
        assert temporaries_of(tmp_path / "clip.mp4") == []  # the other naming
        for other in ("cl.mp4", "clip.mkv"):
            assert temporaries_of(tmp_path / other, keep_suffix=True) == []
    assert _leftovers(tmp_path) == []
    with temporary_beside(tmp_path / "a.json") as tmp:
        os.replace(tmp, tmp_path / "a.json")  # moved by the block: nothing to remove
    assert _leftovers(tmp_path) == ["a.json"]
