"""Your own images: ImageFolder directories and zips, every layout and every odd image kind."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import class_image, png_bytes, write_folder, zip_folder
from tlcore.data import load_dataset
from tlcore.data.images import ImageRejected, decode_image
from tlcore.errors import TLCoreError


@pytest.mark.parametrize("as_zip", [False, True])
def test_flat_class_folders_are_split_here(tmp_path, as_zip):
    root = write_folder(tmp_path / "pets", {"cat": 20, "dog": 20, "eel": 10})
    path = zip_folder(root, tmp_path / "pets.zip") if as_zip else root
    d = load_dataset(str(path), seed=0)
    assert d.name == "pets" and d.classes == ["cat", "dog", "eel"]
    assert sum(len(s) for s in d.splits.values()) == 50
    assert d.class_counts("test") == [4, 4, 2]  # stratified 20%
    assert d.channels == 3 and d.size == 16
    again = load_dataset(str(path), seed=0)
    assert torch.equal(d.test.images, again.test.images)


def test_train_val_test_folders_are_the_splits(tmp_path):
    root = write_folder(tmp_path / "set", {"train/a": 6, "train/b": 6, "val/a": 2, "val/b": 2, "test/a": 3, "test/b": 3})
    d = load_dataset(str(root))
    assert d.describe()["splits"] == {"train": 12, "val": 4, "test": 6}


def test_a_lone_val_folder_is_held_out_as_test(tmp_path):
    # hymenoptera-style train/ + val/: val is never used to choose the model, so it is the test
    root = write_folder(tmp_path / "set", {"train/a": 10, "train/b": 10, "val/a": 4, "val/b": 4})
    d = load_dataset(str(root), val_fraction=0.1)
    assert len(d.test) == 8 and len(d.val) == 2 and len(d.train) == 18
    # ... and the Data tab says so in words (it surprised users as a bare "test 8").
    assert d.describe()["split_note"].startswith("Your val/ folder is the **test split**")
    assert "validation (to pick the best epoch) is 10% of train/" in d.split_note


@pytest.mark.parametrize("layout,note", [
    ({"train/a": 6, "train/b": 6, "val/a": 2, "val/b": 2, "test/a": 3, "test/b": 3},
     "Your val/ folder is the validation split and test/ the test split."),
    ({"train/a": 6, "train/b": 6, "test/a": 3, "test/b": 3}, "Your test/ folder is the **test split**"),
    ({"a": 10, "b": 10}, "No val/ or test/ folder: the test split is 20% of the images"),
])
def test_the_split_note_says_which_folder_became_which_split(tmp_path, layout, note):
    assert load_dataset(str(write_folder(tmp_path / "set", layout))).split_note.startswith(note)


def test_one_wrapping_folder_inside_a_zip_is_ignored(tmp_path):
    inner = write_folder(tmp_path / "wrap" / "mydata", {"train/a": 4, "train/b": 4, "test/a": 2, "test/b": 2})
    z = zip_folder(tmp_path / "wrap", tmp_path / "mydata.zip")  # names start with wrap/mydata/...
    d = load_dataset(str(z))
    assert d.classes == ["a", "b"] and len(d.test) == 4
    assert inner.exists()


def test_grayscale_folders_become_one_channel(tmp_path):
    root = write_folder(tmp_path / "g", {"x": 6, "y": 6}, rgb=False)
    assert load_dataset(str(root)).channels == 1


def test_image_size_option_and_auto_size(tmp_path):
    root = write_folder(tmp_path / "s", {"x": 5, "y": 5}, size=40)
    assert load_dataset(str(root)).size == 40
    assert load_dataset(str(root), image_size=24).size == 24
    with pytest.raises(TLCoreError, match="image_size"):
        load_dataset(str(root), image_size=3)


def _odd_images() -> dict[str, bytes]:
    rgb = class_image(0, 20)
    out = {
        "rgba.png": png_bytes(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])),
        "la.png": _save(Image.fromarray(rgb).convert("LA"), "PNG"),
        "g16.png": png_bytes(rgb[..., 0].astype(np.uint16) * 257),
        "cmyk.jpg": _save(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "pal.png": _save(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0),
        "bw.bmp": _save(Image.fromarray(rgb).convert("1"), "BMP"),
        "tiny.gif": _animated(rgb),
        "photo.webp": _save(Image.fromarray(rgb), "WEBP"),
        "photo.tiff": _save(Image.fromarray(rgb), "TIFF"),
    }
    return out


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _animated(rgb: np.ndarray) -> bytes:
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


@pytest.mark.parametrize("name,data", list(_odd_images().items()))
def test_every_image_mode_decodes_to_8bit(name, data):
    arr, _ = decode_image(data, 16)
    assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8


def test_16bit_gray_keeps_its_contrast():
    ramp = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 200)  # 0..51000: convert("L") would clip
    arr, gray = decode_image(png_bytes(ramp), 16)
    assert gray and arr[..., 0].min() == 0 and arr[..., 0].max() == 255 and len(np.unique(arr)) > 200


def test_odd_and_broken_files_are_skipped_and_counted(tmp_path):
    root = write_folder(tmp_path / "mix", {"a": 4, "b": 4})
    for name, data in _odd_images().items():
        (root / "a" / name).write_bytes(data)
    (root / "a" / "notes.txt").write_text("hello")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    (root / "b" / "cut.png").write_bytes(png_bytes(noise)[:6000])
    (root / "b" / "inner.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (root / "stray.png").write_bytes(png_bytes(class_image(1, 16)))
    d = load_dataset(str(root))
    assert sum(len(s) for s in d.splits.values()) == 8 + len(_odd_images())
    assert d.skipped == {"not images": 1, "nested archives (not opened)": 1, "outside a class folder": 1,
                         "not a readable image": 1, "corrupt or truncated": 1}


def test_decompression_bomb_images_are_refused_without_decoding(tmp_path):
    # A 1-bit PNG of 20,000 x 20,000 pixels is about 50 KB on disk and 1.2 GB as RGB.
    bomb = _save(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    assert len(bomb) < 200_000
    with pytest.raises(ImageRejected, match="pixel limit"):
        decode_image(bomb, 32)
    root = write_folder(tmp_path / "b", {"a": 3, "b": 3})
    (root / "a" / "bomb.png").write_bytes(bomb)
    assert load_dataset(str(root)).skipped == {"over the pixel limit (decompression bomb)": 1}


@pytest.mark.parametrize("layout,match", [
    ({"only": 5}, "at least 2"),
    ({"train/a": 3, "train/b": 3, "test/a": 1, "test/c": 1}, "classes that train/ lacks: c"),
])
def test_unusable_class_layouts_are_refused(tmp_path, layout, match):
    root = write_folder(tmp_path / "bad", layout)
    with pytest.raises(TLCoreError, match=match):
        load_dataset(str(root))


def test_a_folder_without_images_says_what_it_expected(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "x.txt").write_text("x")
    with pytest.raises(TLCoreError, match=r"No images in class folders.*1 not images.*<class>/<image>"):
        load_dataset(str(tmp_path / "empty"))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_links_in_a_folder_are_not_followed(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(class_image(0, 16)))
    root = write_folder(tmp_path / "l", {"a": 3, "b": 3})
    (root / "a" / "link.png").symlink_to(secret)
    assert load_dataset(str(root)).skipped == {"unreadable, too large or a link": 1}
