"""The one reader of `.env`, for Django (volspike/env.py) and for the shell scripts alike.

Standard library only, so that `python3 volspike/dotenv.py` works before the venv exists.
The real environment always wins: a variable set in the shell is never replaced by `.env`.

Syntax (a subset every common reader agrees on):
  KEY=value                 unquoted: surrounding spaces dropped; ` #` starts a comment
  KEY='value'               single quotes: taken literally (no escapes, `#` and `$` kept)
  KEY="value"               double quotes: \\" \\\\ \\n \\t \\$ escapes; `#` and `$` kept
  export KEY=value          `export ` is allowed and ignored
  # comment / blank lines   ignored
No variable expansion and no multi-line values: a `.env` line means the same to every consumer.

Command line (used by scripts/*.sh):
  python3 volspike/dotenv.py [--file PATH]      prints `export KEY='value'` lines for the keys
                                                of the file that the environment does not set
The file is $VOLSPIKE_ENV_FILE when set, else `.env` at the project's root.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOUBLE_QUOTED_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "$": "$"}


class DotenvError(ValueError):
    """A line of the file that does not follow the syntax; names the file, the line and why."""


def env_file_path() -> Path:
    return Path(os.environ.get("VOLSPIKE_ENV_FILE") or ROOT / ".env")


def _quoted(rest: str, quote: str, where: str) -> tuple[str, str]:
    """The value inside quotes starting at rest[0], and what follows the closing quote."""
    chars: list[str] = []
    index = 1
    while index < len(rest):
        char = rest[index]
        if quote == '"' and char == "\\" and index + 1 < len(rest):
            escaped = rest[index + 1]
            chars.append(_DOUBLE_QUOTED_ESCAPES.get(escaped, "\\" + escaped))
            index += 2
            continue
        if char == quote:
            return "".join(chars), rest[index + 1 :]
        chars.append(char)
        index += 1
    raise DotenvError(f"{where}: the {quote} quote is never closed (values are one line)")


def parse_line(line: str, where: str = "line") -> tuple[str, str] | None:
    """(key, value) of one line, or None for a blank or comment line."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped.startswith("export "):
        stripped = stripped[len("export ") :].lstrip()
    key, sep, rest = stripped.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise DotenvError(f"{where}: expected KEY=value, got {line.strip()!r}")
    rest = rest.lstrip()
    if rest[:1] in ("'", '"'):
        value, after = _quoted(rest, rest[0], where)
        after = after.strip()
        if after and not after.startswith("#"):
            raise DotenvError(f"{where}: unexpected {after!r} after the quoted value of {key}")
        return key, value
    # Unquoted: a comment starts at a '#' that follows whitespace (so URL fragments survive).
    value = re.split(r"\s#", rest, maxsplit=1)[0].strip()
    return key, value


def parse(text: str, source: str = ".env") -> dict[str, str]:
    """Every KEY=value of the text, the last one winning for a repeated key."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if (pair := parse_line(line, f"{source}:{number}")) is not None:
            values[pair[0]] = pair[1]
    return values


def read(path: Path | None = None) -> dict[str, str]:
    """The values of the file ({} when it does not exist)."""
    path = path or env_file_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse(text, str(path))


def missing_from(environ: Mapping[str, str], path: Path | None = None) -> dict[str, str]:
    """The file's values whose keys the environment does not set (the environment wins)."""
    return {key: value for key, value in read(path).items() if key not in environ}


def load(environ: MutableMapping[str, str] | None = None, path: Path | None = None) -> None:
    """Add the file's values to the environment, never replacing one that is set."""
    environ = os.environ if environ is None else environ
    environ.update(missing_from(environ, path))


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--file", type=Path, help="the .env file (default: $VOLSPIKE_ENV_FILE or .env)"
    )
    args = parser.parse_args(argv)
    try:
        exports = missing_from(os.environ, args.file)
    except DotenvError as error:
        sys.stderr.write(f"[env] {error}\n")
        return 2
    sys.stdout.write("".join(f"export {k}={_shell_quote(v)}\n" for k, v in exports.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
