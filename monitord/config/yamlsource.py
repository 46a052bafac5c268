"""Read YAML and CSV into plain data while remembering where each value came from.

Every value gets a location `(file, line)` keyed by its path of keys and list
indexes, so that a validation error deep in the model can be reported as
`monitord.yaml:42: customers[3].sites[0].gateway: …`. Includes are spliced in
here, keeping the location of the included file:

    devices:
      - include: fleet.csv          # list item: replaced by the file's items
      - {name: extra-box, ...}
    templates: {include: templates/*.yaml}   # whole list from files (glob)
"""

from __future__ import annotations

import csv
import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
Location = tuple[str, int]

MAX_INCLUDE_DEPTH = 8


class SourceError(Exception):
    """A problem reading a source file, already located."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


@dataclass
class Sources:
    """Plain data plus the location of every path in it."""

    locations: dict[Path_, Location] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def locate(self, path: Path_) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            loc = self.locations.get(path[:cut])
            if loc is not None:
                return loc
        return (str(self.files[0]) if self.files else "<config>", 0)


def format_path(path: Path_) -> str:
    """`('customers', 3, 'sites', 0, 'gateway')` → `customers[3].sites[0].gateway`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Walker:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self._scalars = yaml.SafeLoader("")

    def load_file(self, file: Path, path: Path_, depth: int) -> list[Any] | dict[str, Any]:
        if depth > MAX_INCLUDE_DEPTH:
            raise SourceError(str(file), 0, "includes nested too deeply (a cycle?)")
        self.sources.files.append(file)
        if file.suffix.lower() == ".csv":
            return self._load_csv(file, path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SourceError(str(file), 0, f"cannot read: {exc.strerror}") from exc
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 0
            raise SourceError(str(file), line, f"invalid YAML: {exc.problem}") from exc
        if node is None:
            return {}
        value = self._node(node, file, path, depth)
        if not isinstance(value, list | dict):
            raise SourceError(str(file), 1, "expected a mapping or a list at the top level")
        return value

    def _node(self, node: yaml.Node, file: Path, path: Path_, depth: int) -> Any:
        self.sources.locations.setdefault(path, (str(file), node.start_mark.line + 1))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, file, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node.value, file, path, depth)
        # A scalar: PyYAML's resolver picks int/float/bool/null/str as usual.
        return self._scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, file: Path, path: Path_, depth: int) -> Any:
        keys = [k for k, _ in node.value]
        if len(keys) == 1 and isinstance(keys[0], yaml.ScalarNode) and keys[0].value == "include":
            return self._include(node.value[0][1], file, path, 0, depth)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in out:
                raise SourceError(str(file), line, f"{format_path((*path, key))}: duplicate key")
            self.sources.locations[(*path, key)] = (str(file), line)
            out[key] = self._node(value_node, file, (*path, key), depth)
        return out

    def _sequence(self, items: list[yaml.Node], file: Path, path: Path_, depth: int) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if (
                isinstance(item, yaml.MappingNode)
                and len(item.value) == 1
                and item.value[0][0].value == "include"
            ):
                out.extend(self._include(item.value[0][1], file, path, len(out), depth))
                continue
            out.append(self._node(item, file, (*path, len(out)), depth))
        return out

    def _include(
        self, spec: yaml.Node, file: Path, path: Path_, start: int, depth: int
    ) -> list[Any]:
        line = spec.start_mark.line + 1
        patterns = (
            [spec.value]
            if isinstance(spec, yaml.ScalarNode)
            else [n.value for n in spec.value if isinstance(n, yaml.ScalarNode)]
        )
        out: list[Any] = []
        for pattern in patterns:
            full = str(file.parent / str(pattern))
            matches = sorted(glob.glob(full))
            if not matches:
                raise SourceError(str(file), line, f"include {pattern!r}: no such file")
            for match in matches:
                value = self._include_one(Path(match), path, start + len(out), depth)
                out.extend(value)
        return out

    def _include_one(self, file: Path, path: Path_, start: int, depth: int) -> list[Any]:
        # Load under a scratch path, then move its locations to the final indexes.
        scratch = Sources()
        walker = _Walker(scratch)
        value = walker.load_file(file, (), depth + 1)
        self.sources.files.extend(scratch.files)
        items = value if isinstance(value, list) else [value]
        for sub_path, loc in scratch.locations.items():
            if not sub_path:
                continue
            first = sub_path[0]
            if isinstance(value, list) and isinstance(first, int):
                self.sources.locations[(*path, start + first, *sub_path[1:])] = loc
            elif isinstance(value, dict):
                self.sources.locations[(*path, start, *sub_path)] = loc
        if isinstance(value, dict):
            self.sources.locations.setdefault((*path, start), (str(file), 1))
        return items

    def _load_csv(self, file: Path, path: Path_) -> list[Any]:
        try:
            with file.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                rows: list[Any] = []
                for row in reader:
                    index = len(rows)
                    self.sources.locations[(*path, index)] = (str(file), reader.line_num)
                    clean = {
                        k.strip().lower(): v.strip()
                        for k, v in row.items()
                        if k is not None and v is not None and v.strip() != ""
                    }
                    for key in clean:
                        self.sources.locations[(*path, index, key)] = (str(file), reader.line_num)
                    rows.append(clean)
                return rows
        except OSError as exc:
            raise SourceError(str(file), 0, f"cannot read: {exc.strerror}") from exc
        except csv.Error as exc:
            raise SourceError(str(file), 0, f"invalid CSV: {exc}") from exc


def read_sources(file: Path) -> tuple[dict[str, Any], Sources]:
    """Read `file` (YAML) with its includes; return the data and its locations.

    Raises SourceError for unreadable files, YAML syntax errors, duplicate keys
    and missing includes.
    """
    sources = Sources()
    data = _Walker(sources).load_file(file, (), 0)
    if not isinstance(data, dict):
        raise SourceError(str(file), 1, "expected a mapping at the top level")
    return data, sources
