"""Zips are untrusted: every known attack is refused and nothing is written anywhere."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import PNG, encrypted_zip, ok_members, symlink_member, write_zip, zip_bomb
from tlcore.data import load_dataset
from tlcore.data.folder import load_image_folder
from tlcore.data.safezip import ZipLimits
from tlcore.errors import TLCoreError

ATTACKS = {
    "zip slip": (lambda p: write_zip(p, ok_members() + [("a/../../evil.png", PNG)]), "leaves its folder"),
    "zip slip backslash": (lambda p: write_zip(p, ok_members() + [("a\\..\\..\\evil.png", PNG)]), "leaves its folder"),
    "absolute path": (lambda p: write_zip(p, ok_members() + [("/tmp/evil.png", PNG)]), "absolute path"),
    "windows drive": (lambda p: write_zip(p, ok_members() + [("C:/evil.png", PNG)]), "absolute path"),
    "symlink": (lambda p: write_zip(p, ok_members() + [symlink_member("a/link.png", "/etc/passwd")]), "a link"),
    "ratio bomb": (zip_bomb, "zip bomb"),
    "encrypted": (encrypted_zip, "encrypted"),
    "not a zip": (lambda p: (p.write_bytes(b"this is text, not a zip"), p)[1], "not a valid zip"),
    "truncated": (lambda p: (p.write_bytes(write_zip(p, ok_members()).read_bytes()[:300]), p)[1], "not a valid zip"),
    "empty file": (lambda p: (p.write_bytes(b""), p)[1], "not a valid zip"),
}


def _snapshot(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_zip_attacks_are_refused_and_nothing_is_written(tmp_path, attack, monkeypatch):
    make, match = ATTACKS[attack]
    upload = tmp_path / "upload"
    upload.mkdir()
    path = make(upload / "data.zip")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path)
    with pytest.raises(TLCoreError, match=match):
        load_dataset(str(path))
    assert _snapshot(tmp_path) == before
    assert not Path("/tmp/evil.png").exists()


def test_too_many_files_is_refused(tmp_path):
    path = write_zip(tmp_path / "many.zip", ok_members() + [(f"a/x{i}.png", PNG) for i in range(20)])
    with pytest.raises(TLCoreError, match="26 files is over the limit of 10"):
        load_image_folder(path, limits=ZipLimits(max_files=10))


def test_too_many_bytes_expanded_is_refused(tmp_path):
    path = write_zip(tmp_path / "big.zip", ok_members())
    with pytest.raises(TLCoreError, match="expands to more than"):
        load_image_folder(path, limits=ZipLimits(max_total_bytes=1000))


def test_one_oversized_member_is_refused(tmp_path):
    path = write_zip(tmp_path / "big.zip", ok_members() + [("a/big.png", os.urandom(5000))])
    with pytest.raises(TLCoreError, match="over the .* limit for one file"):
        load_image_folder(path, limits=ZipLimits(max_member_bytes=4000))


def test_a_member_with_a_bad_crc_is_skipped_not_fatal(tmp_path):
    path = write_zip(tmp_path / "crc.zip", ok_members() + [("a/zz.png", PNG)])
    data = bytearray(path.read_bytes())
    i = data.rfind(PNG[20:60])  # corrupt the last member's stored bytes
    data[i + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    d = load_dataset(str(path))
    assert d.skipped == {"unreadable, too large or a link": 1}
    assert sum(len(s) for s in d.splits.values()) == 6


def test_the_honest_zip_still_loads(tmp_path):
    d = load_dataset(str(write_zip(tmp_path / "fine.zip", ok_members())))
    assert d.classes == ["a", "b"] and sum(len(s) for s in d.splits.values()) == 6
