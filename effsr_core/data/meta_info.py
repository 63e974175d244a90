"""Write BasicSR meta_info files for the real datasets from the user's own copy (PyPI's BasicSR ships none).

    python -m effsr_core.data.meta_info folders datasets/REDS/train_sharp datasets/REDS/meta_info_REDS_GT.txt
    python -m effsr_core.data.meta_info folders datasets/REDS/train_sharp datasets/REDS/meta_info_REDS4_test_GT.txt \
        --clips 000 011 015 020
    python -m effsr_core.data.meta_info vimeo datasets/vimeo90k/sep_trainlist.txt \
        datasets/vimeo90k/meta_info_Vimeo90K_train_GT.txt

Lines are ``<clip> <frames> (h,w,c)`` (REDS, Vid4, UDM10 folders) or ``<seq> 7 (256,448,3)`` (Vimeo-90K lists).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable, Sequence

from effsr_core.images import IMAGE_SUFFIXES

VIMEO_SEPTUPLET = (7, (256, 448, 3))
#: BasicSR's REDS datasets draw frames 0-99 of every clip (``reds_dataset.py``: "each clip has 100 frames").
REDS_CLIP_FRAMES = 100


def meta_line(name: str, frames: int, shape: Sequence[int]) -> str:
    """One meta_info line: ``<name> <frames> (h,w,c)``."""
    return f'{name} {frames} ({",".join(str(size) for size in shape)})\n'


def image_shape(path: str | Path) -> tuple[int, int, int]:
    """(h, w, c) of an image file."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(f'{path}: not a readable image.')
    return image.shape if image.ndim == 3 else (*image.shape, 1)


def read_meta_info(path: str | Path) -> dict[str, tuple[int | None, tuple[int, ...] | None]]:
    """``{name: (frames or None, (h, w, c) or None)}`` of a BasicSR meta_info file: ``<clip> <frames> (h,w,c)``
    (video), ``<name> (h,w,c) <compression>`` (LMDB) or ``<name>`` lines."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        frames = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        shape = next((tuple(int(v) for v in part.strip('()').split(',') if v) for part in parts[1:]
                      if part.startswith('(')), None)
        entries[parts[0]] = (frames, shape)
    return entries


def folder_lines(gt_root: str | Path, clips: Iterable[str] | None = None) -> list[str]:
    """One line per clip folder of ``gt_root`` (all of them, or ``clips``), reading the first frame's shape."""
    root = Path(gt_root)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if clips is None else list(clips)
    lines = []
    for name in names:
        frames = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not frames:
            raise FileNotFoundError(f'{root / name}: no frames ({", ".join(IMAGE_SUFFIXES)}).')
        lines.append(meta_line(name, len(frames), image_shape(frames[0])))
    return lines


def vimeo_lines(list_file: str | Path) -> list[str]:
    """Lines for Vimeo-90K septuplets listed in its ``sep_trainlist.txt`` / ``sep_testlist.txt``."""
    frames, shape = VIMEO_SEPTUPLET
    return [meta_line(seq, frames, shape) for seq in Path(list_file).read_text().split()]


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per kind of source."""
    parser = argparse.ArgumentParser(
        prog='python -m effsr_core.data.meta_info', description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='example:\n  python -m effsr_core.data.meta_info folders datasets/REDS/train_sharp '
               'datasets/REDS/meta_info_REDS_GT.txt\n')
    sub = parser.add_subparsers(dest='kind', required=True, metavar='{folders,vimeo}',
                                help='folders: one line per clip folder; vimeo: from a Vimeo-90K list file')
    folders = sub.add_parser('folders', help='one line per clip folder (REDS, Vid4, UDM10...)')
    folders.add_argument('gt_root', help='folder of GT clip folders, e.g. datasets/REDS/train_sharp')
    folders.add_argument('output', help='meta_info file to write')
    folders.add_argument('--clips', nargs='+', help='only these clips (e.g. REDS4: 000 011 015 020)')
    vimeo = sub.add_parser('vimeo', help='from a Vimeo-90K sep_trainlist.txt / sep_testlist.txt')
    vimeo.add_argument('list_file', help='sep_trainlist.txt or sep_testlist.txt')
    vimeo.add_argument('output', help='meta_info file to write')
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    lines = folder_lines(args.gt_root, args.clips) if args.kind == 'folders' else vimeo_lines(args.list_file)
    Path(args.output).write_text(''.join(lines))
    print(f'wrote {len(lines)} lines to {args.output}')


if __name__ == '__main__':
    main()
