"""``divekit models``, ``env`` and ``data list|show``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from divekit.errors import ConfigError
from divekit.choices import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    m = subparsers.add_parser("models", help="list the registered models")
    m.add_argument("--task", choices=TASKS, help="only models of this task")
    m.set_defaults(handler=run_models)

    t = subparsers.add_parser("tasks", help="list the tasks and their options (--OPTION flags or task.options.KEY)")
    t.set_defaults(handler=run_tasks)

    e = subparsers.add_parser("env", help="describe this machine: versions, devices, threads")
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=run_env)

    b = subparsers.add_parser("bench", help="measure which speed options pay off for a model on this machine")
    b.add_argument("model")
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument("--input-size", help="C,H,W for image models; T (time steps) for language and seq2seq models")
    b.add_argument("--options", default=",".join(("fp32", "bf16", "channels-last", "compile")),
                   help="comma-separated subset of fp32,bf16,channels-last,compile")  # fmt: skip
    b.add_argument("--device", default="auto")
    b.add_argument("--seconds", type=float, default=3.0, help="timing length per option and mode")
    b.add_argument("--threads", type=int, help="CPU threads (default: idle cores)")
    b.set_defaults(handler=run_bench)

    d = subparsers.add_parser("data", help="list data sets or look at one")
    sub = d.add_subparsers(dest="data_command", metavar="{list,show,download}")
    sub.add_parser("list", help="list the registered data sets").set_defaults(handler=run_data_list)
    s = sub.add_parser("show", help="write a PNG grid of sample images with their labels")
    s.add_argument("name")
    s.add_argument("--out", help="PNG file (default: <name>-samples.png)")
    s.add_argument("--count", type=int, default=16, help="how many images")
    s.add_argument("--split", choices=("train", "test"), default="train")
    s.add_argument("--data-dir")
    s.add_argument("--download", action="store_true")
    s.add_argument("--mirror")
    s.add_argument("--augment", help="show ONE image and augmented versions of it, e.g. flip,crop,color")
    s.add_argument("--index", type=int, default=0, help="with --augment: which image of the split")
    s.add_argument("--resize", type=int, help="with --augment: output side (default: the image's own)")
    s.add_argument("--seed", type=int, default=0, help="with --augment: seed of the random augmentations")
    s.set_defaults(handler=run_data_show)
    g = sub.add_parser("download", help="fetch a data set's files (checksums verified) into its folder")
    g.add_argument("name")
    g.add_argument("--data-dir", help="where to put the files (default: the per-user cache)")
    g.add_argument("--mirror", help="base URL replacing the official mirrors")
    g.set_defaults(handler=run_data_download)
    d.set_defaults(handler=lambda args: d.print_help())


def run_models(args: argparse.Namespace) -> int:
    from divekit.models import get_model_entry, list_models

    names = list_models(args.task)
    if not names:
        raise ConfigError(f"no models for the {args.task} task")
    width = max(len(n) for n in names)
    for name in names:
        entry = get_model_entry(name)
        size = "x".join(map(str, entry.input_size)) if entry.input_size else "-"
        print(f"{name:<{width}}  {entry.task:<14}  {size:<10}  {entry.description}")
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    from divekit.tasks import TASK_REGISTRY

    for name in TASK_REGISTRY.names():
        entry = TASK_REGISTRY.get(name)
        print(f"{name:<14}  {entry.description}")
        print(f"{'':<14}  options: {', '.join(entry.option_names())}")
    return 0


def run_env(args: argparse.Namespace) -> int:
    from divekit.device import environment_report

    report = environment_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    width = max(map(len, report))
    for key, value in report.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key:<{width}}  {shown if shown not in ('', None) else '-'}")
    return 0


def run_data_list(args: argparse.Namespace) -> int:
    from divekit.data import get_dataset_entry, list_datasets

    names = list_datasets()
    width = max(map(len, names))
    for name in names:
        entry = get_dataset_entry(name)
        where = "embedded" if entry.embedded else "files"
        print(f"{name:<{width}}  {entry.task:<16}  {where:<8}  {entry.description}")
    return 0


def run_data_download(args: argparse.Namespace) -> int:
    from divekit.data import get_dataset_entry, load_dataset

    if get_dataset_entry(args.name).embedded:
        print(f"{args.name} is embedded in divekit: nothing to download")
        return 0
    data = load_dataset(args.name, data_dir=args.data_dir, download=True, mirror=args.mirror)
    print(f"{args.name}: ready ({type(data).__name__})")
    return 0


def run_data_show(args: argparse.Namespace) -> int:
    from divekit.data import load_dataset
    from divekit.data.image_folder import ImageFolder, folder_images
    from divekit.plot import image_grid

    if args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")
    data = load_dataset(args.name, data_dir=args.data_dir, download=args.download, mirror=args.mirror)
    if isinstance(data, ImageFolder):  # files on disk: decoded (through the folder's cache) to be shown
        data = folder_images(data, size=args.resize or 64)
    if getattr(data, "task", None) != "classification":
        raise ConfigError(f"{args.name} is not an image data set; `data show` draws images")
    split = getattr(data, args.split)
    if args.augment is not None:
        images, titles = augmented_versions(split, args)
        label = data.class_names[int(split.labels[args.index])]
        titles[0] = f"{label} (original)"
        out = Path(args.out or f"{args.name}-augmented.png")
    else:
        n = min(args.count, len(split))
        images, titles = split.images[:n], [data.class_names[int(c)] for c in split.labels[:n]]
        out = Path(args.out or f"{args.name}-samples.png")
    image_grid(images.numpy(), titles, out)
    print(out)
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from divekit.bench import format_table, run_bench as bench
    from divekit.device import configure_threads, resolve_device

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    configure_threads(args.threads)
    device = resolve_device(args.device)
    size = parse_size(args.input_size) if args.input_size else None
    options = tuple(o.strip() for o in args.options.split(",") if o.strip())
    rows, peaks, work = bench(args.model, batch_size=args.batch_size, input_size=size, options=options,
                              device=device, seconds=args.seconds)  # fmt: skip
    print(format_table(args.model, rows, peaks, work, batch_size=args.batch_size, device=device))
    return 0


def parse_size(text: str) -> tuple[int, ...]:
    """``"1,28,28"`` -> ``(1, 28, 28)``, refusing anything else with a clear message."""
    try:
        size = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        size = ()
    if not size or any(s < 1 for s in size):
        raise ConfigError(f"--input-size must be positive integers separated by commas, e.g. 3,224,224; got {text!r}")
    return size


def augmented_versions(split, args: argparse.Namespace):
    """Image ``args.index`` resized, then ``args.count - 1`` augmented versions of it, as uint8."""
    import torch
    from torch.nn import functional as F

    from divekit.data.augment import BatchAugment

    if not 0 <= args.index < len(split):
        raise ConfigError(f"--index must be between 0 and {len(split) - 1}, got {args.index}")
    image = split.images[args.index : args.index + 1].float() / 255  # (1, C, H, W)
    size = args.resize or image.shape[-1]
    augment = BatchAugment(args.augment.split(","), size=size)
    copies = image.expand(max(args.count - 1, 1), -1, -1, -1)
    augmented = augment(copies, generator=torch.Generator().manual_seed(args.seed))
    original = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False,
                             antialias=size < image.shape[-1])  # fmt: skip
    both = torch.cat([original, augmented]).clamp(0, 1).mul(255).round().to(torch.uint8)
    return both, ["original"] + [f"augmented {i}" for i in range(1, len(both))]
