"""Options several commands share: one flag vocabulary, and the fixed choices as Enums (so --help
lists them and shell completion offers them; tests/test_commands.py checks they match the library's
tables)."""

import inspect
import typing
from enum import Enum
from pathlib import Path

import typer

from ..hashing import inputs
from ..hashing.autoencoder.registry import BOTTLENECKS


class Method(str, Enum):
    ae = "ae"
    itq = "itq"
    pcah = "pcah"
    lsh = "lsh"
    auto = "auto"  # ae and itq both, keeping the better on the validation split


# the autoencoder's bottlenecks, as registered (the registry imports no torch)
BottleneckName = Enum("BottleneckName", [(name, name) for name in BOTTLENECKS], type=str)


class Split(str, Enum):
    train = "train"
    test = "test"


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def _devices(incomplete: str) -> list[str]:
    return [d for d in ("auto", "cpu", "cuda", "mps") if d.startswith(incomplete)]


DataRoot = typer.Option(None, "--data-root", help="Data root (default: $SEMHASH_DATA, else ~/.cache/semhash/data).")
Device = typer.Option(
    "auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.", autocompletion=_devices
)
# The data a command reads its items from: a named data set, or a path of one registered input
# kind (`--images FOLDER`, `--features FILE`, ...: see with_sources).
DatasetOpt = typer.Option(
    None, "--dataset", help="A named data set (mnist, fashion-mnist, cifar10, digits, 20newsgroups)."
)
LabelsOpt = typer.Option(None, "--labels", help="Labels (.npy) for --features.")
# --limit means the same everywhere: use the first N items of the input (items to train on or to
# index; queries to search or encode).
Limit = typer.Option(None, "--limit", help="Use the first N items of the input.")


def split_option(default: Split) -> Split:
    return typer.Option(default, "--split", help="Split of a named data set.")


def with_sources(command):
    """Give a command one option per registered input kind naming a path of its items
    (`--images FOLDER`, `--features FILE`, ...), which it takes as **sources: {kind name: path}."""
    options = {k.name: (k.source_flag, k.source_help, Path | None) for k in inputs.kinds()}
    return _with_kind_options(command, "sources", options)


def with_queries(command):
    """Give a command one query option per registered input kind (`--image`, repeatable; `--vector`;
    ...), and a second one for kinds that read queries from a file too (`--texts FILE`), which it
    takes as **queries: {the kind's Python keyword: what was given} (hand them to kind_queries)."""
    options = {k.keyword: (k.flag, k.help, list[str] | None if k.repeat else Path | None) for k in inputs.kinds()}
    for k in inputs.kinds():
        if k.file_flag:
            options[f"{k.keyword}{FILE_SUFFIX}"] = (k.file_flag, k.file_help, list[Path] | None)
    return _with_kind_options(command, "queries", options)


FILE_SUFFIX = "_file"  # the parameter of a kind's query-file option: '<keyword>_file'


def kind_queries(queries: dict) -> dict:
    """with_queries' options as the library takes them: each kind's query files (Paths) joined to
    its queries, under its keyword ({"texts": ["some words", Path("q.jsonl")]})."""
    out = {k: v for k, v in queries.items() if not k.endswith(FILE_SUFFIX)}
    for key, files in queries.items():
        if key.endswith(FILE_SUFFIX) and files:
            keyword = key.removesuffix(FILE_SUFFIX)
            out[keyword] = [*(out.get(keyword) or []), *files]
    return out


def _with_kind_options(command, gathered: str, options: dict):
    """typer reads a command's options from its signature: add one keyword-only parameter per
    entry of options ({key: (flag, help, type)}) to it. The command takes them as **gathered, so
    typer's call passes their values straight in (no wrapper stands between the two)."""
    hints = typing.get_type_hints(command)  # resolved where the command is written
    params = inspect.signature(command).parameters.values()
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params if p.kind is not p.VAR_KEYWORD]
    for key, (flag, help_, kind) in options.items():
        option = typer.Option(None, flag, help=help_)
        params.append(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind))
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def one_source(dataset: str | None, sources: dict) -> str:
    """The one data source among --dataset and the input kinds' path options."""
    from ..hashing.errors import SemhashError

    given = {key: v for key, v in sources.items() if v is not None}
    if (dataset is not None) + len(given) != 1:
        flags = ", ".join(k.source_flag for k in inputs.kinds())
        raise SemhashError(f"give exactly one of --dataset, {flags}")
    if dataset is not None:
        return dataset
    ((name, path),) = given.items()
    if str(path) != "-" and not Path(path).exists():
        raise SemhashError(f"{path}: no such file or folder")
    if inputs.for_path(Path(path)) is not inputs.get(name):
        raise SemhashError(f"{path}: not {inputs.get(name).source_help[0].lower()}{inputs.get(name).source_help[1:]}")
    return str(path)
