"""The runs folder is the pipeline's alone: ids that fit and never collide with its own files, no write or delete
through a symbolic link, every skipped photo-folder entry listed with why, one run at a time (the lock), only
transient I/O errors retried, and the thread rule."""

import errno
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dinar_core.errors import RunsBusyError, UnsafeWorkspaceError
from tasks.discover import discover_persons
from tasks.lock import runs_lock
from tasks.runner import is_transient
from tasks.threads import apply_threads, choose_threads, decide_threads
from tasks.workspace import MAX_ID_BYTES, RESERVED_NAMES, Workspace, clean_temporaries, safe_id, unique_ids

ROOT = Path(__file__).resolve().parents[2]


# -- ids ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RESERVED_NAMES) + ["REPORT.HTML", "Manifest.JSON"])
def test_reserved_names_never_become_ids(name):
    assert safe_id(name).lower() not in RESERVED_NAMES
    assert all(i.lower() not in RESERVED_NAMES for i in unique_ids([name, name, "report_html"]))


def test_ids_are_cut_in_bytes_on_a_character_boundary():
    name = "é" * 126 + "x"  # 253 bytes of UTF-8: a legal file name, too long once ".png" and temporaries are added
    assert len(name.encode()) == 253
    out = safe_id(name)
    assert len(out.encode()) <= MAX_ID_BYTES and out == "é" * (MAX_ID_BYTES // 2)
    out3 = safe_id("写" * 100)  # 3-byte characters: 33 fit in 100 bytes, none is cut in half
    assert out3 == "写" * 33


def test_collision_suffixes_still_fit():
    ids = unique_ids(["写" * 100] * 12)
    assert len(set(i.lower() for i in ids)) == 12
    assert all(len(i.encode()) <= MAX_ID_BYTES for i in ids)
    assert ids[11].endswith("-12") and ids[11].encode().decode() == ids[11]


# -- no symlink is followed -----------------------------------------------------------------------------------------
def _outside(tmp_path) -> tuple[Path, list[Path]]:
    outside = tmp_path / "outside"
    outside.mkdir()
    files = [outside / f".keep.tmp-1.png", outside / "precious.png", outside / "notes.txt"]
    for f in files:
        f.write_bytes(b"mine")
    return outside, files


def test_clean_temporaries_does_not_follow_links(tmp_path):
    outside, files = _outside(tmp_path)
    runs = tmp_path / "runs"
    (runs / "p").mkdir(parents=True)
    (runs / "p" / "rgb").symlink_to(outside, target_is_directory=True)
    (runs / "q").symlink_to(outside, target_is_directory=True)
    assert clean_temporaries(runs / "p") == [] and clean_temporaries(runs / "q") == []
    assert all(f.read_bytes() == b"mine" for f in files)


def test_workspace_with_a_link_is_refused_and_stale_cleanup_deletes_nothing_outside(tmp_path):
    outside, files = _outside(tmp_path)
    ws = Workspace(tmp_path / "runs" / "p")
    ws.root.mkdir(parents=True)
    ws.check_safe()  # a plain folder is fine
    ws.rgb_dir.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeWorkspaceError, match="symbolic link"):
        ws.check_safe()
    with pytest.raises(UnsafeWorkspaceError):
        ws.remove_stale(ws.rgb_dir, "*.png", keep=set())
    linked = Workspace(tmp_path / "runs" / "q")
    linked.root.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeWorkspaceError, match="rm, not rm -r"):
        linked.remove_stale(linked.root, "*.png", keep=set())
    assert all(f.read_bytes() == b"mine" for f in files)


def test_remove_stale_keeps_what_it_is_told(tmp_path):
    ws = Workspace(tmp_path / "p")
    ws.rgb_dir.mkdir(parents=True)
    for n in ("a.png", "b.png", "c.txt"):
        (ws.rgb_dir / n).write_bytes(b"x")
    assert [p.name for p in ws.remove_stale(ws.rgb_dir, "*.png", keep={"a.png"})] == ["b.png"]
    assert sorted(p.name for p in ws.rgb_dir.iterdir()) == ["a.png", "c.txt"]


# -- every skipped entry is listed with why -----------------------------------------------------------------------
def test_discovery_lists_every_skipped_entry_with_a_reason(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"x")
    (photos / ".hidden.png").write_bytes(b"x")
    (photos / "notes.md").write_text("x")
    os.mkfifo(photos / "pipe.png")
    (photos / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (photos / "linked.png").symlink_to(photos / "a.png")  # a link to a photo is a photo
    (photos / "empty").mkdir()
    (photos / "bob").mkdir()
    (photos / "bob" / "front.png").write_bytes(b"x")
    (photos / "bob" / ".DS_Store").write_bytes(b"x")
    (photos / "bob" / "more").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(photos / "sock.png"))
    try:
        found = discover_persons(photos)
    finally:
        sock.close()
    assert [p.person for p in found.persons] == ["a", "bob", "linked"]
    reasons = {i.path.name: i.reason for i in found.ignored}
    assert reasons == {".hidden.png": "hidden file", "notes.md": "not a photo (.md file)",
                       "pipe.png": "a fifo, not a photo file", "gone.png": "dangling link",
                       "empty": "folder without photos", ".DS_Store": "hidden file",
                       "more": "folder inside a person's folder (not searched)",
                       "sock.png": "a socket, not a photo file"}
    assert found.ignored[0].as_dict().keys() == {"path", "reason"}


# -- the lock -------------------------------------------------------------------------------------------------------
def test_a_second_holder_waits_then_gets_the_lock(tmp_path):
    order = []
    with runs_lock(tmp_path, timeout=0):
        t = threading.Thread(target=lambda: (runs_lock(tmp_path, timeout=30).__enter__(), order.append("second")))
        t.start()
        t.join(0.5)
        order.append("first done")
    t.join(30)
    assert order == ["first done", "second"]


def test_the_lock_refuses_naming_the_holder(tmp_path):
    code = ("import sys, time; from tasks.lock import runs_lock\n"
            "with runs_lock(sys.argv[1], what='dinar-process-folder'):\n    print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunsBusyError) as err:
            with runs_lock(tmp_path, timeout=0.3):
                pass
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "dinar-process-folder" in msg
        assert "runtime.lock_timeout" in msg
    finally:
        proc.kill()
        proc.wait()
    with runs_lock(tmp_path, timeout=5):  # released when its holder died, however it died
        pass


def test_a_linked_lock_file_is_not_followed(tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("mine")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / ".dinar.lock").symlink_to(target)
    with pytest.raises(RunsBusyError, match="symbolic link"):
        with runs_lock(tmp_path / "runs"):
            pass
    assert target.read_text() == "mine"


# -- retries --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENAMETOOLONG, errno.EACCES, errno.ENOENT, errno.EISDIR, errno.EROFS,
                                  errno.ENOSPC, errno.ENOTDIR, None])
def test_deterministic_os_errors_are_not_transient(code):
    exc = OSError(code, os.strerror(code)) if code else OSError("could not write x.png")
    assert not is_transient(exc)


@pytest.mark.parametrize("code", [errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.EINTR, errno.EBUSY])
def test_io_hiccups_are_transient(code):
    assert is_transient(OSError(code, os.strerror(code)))


def test_bad_input_and_bugs_are_not_transient():
    from dinar_core.errors import InvalidImageError

    assert not is_transient(InvalidImageError("x.png is not an image"))
    assert not is_transient(ValueError("bug")) and is_transient(TimeoutError())


# -- the thread rule ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cpus, workers, others, expected", [
    (2, 1, 0.0, 2),   # idle: the whole share
    (2, 1, 1.0, 1),   # beside one busy process: one thread
    (2, 1, 2.0, 1),   # beside two: still one, never zero
    (8, 2, 0.0, 4),   # two workers share the CPUs
    (8, 2, 6.0, 2),   # what the others leave free
    (8, 1, 0.4, 8),   # a little background noise does not count
    (1, 4, 0.0, 1),
])
def test_choose_threads(cpus, workers, others, expected):
    assert choose_threads(cpus, workers, others) == expected


def test_fixed_setting_and_affinity(monkeypatch):
    import torch

    assert decide_threads(3).threads == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    auto = decide_threads("auto", workers=1)
    assert auto.cpus == 1 and auto.threads == 1 and auto.as_dict()["setting"] == "auto"
    before = torch.get_num_threads()
    try:
        assert apply_threads(1).threads == 1 and torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)
