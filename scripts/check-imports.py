#!/usr/bin/env python3
"""Checks that every module a target imports is declared in Package.swift as that target's dependency, and that
no declared product goes unimported, so that no target leans on what another dependency happens to bring along.

    python3 scripts/check-imports.py      # exit 1 and one line per problem
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules of the toolchain, never declared.
TOOLCHAIN = {"Foundation", "FoundationEssentials", "Glibc", "Musl", "Darwin", "Synchronization", "Dispatch", "Testing", "XCTest",
             "_Concurrency", "PackageDescription"}


def targets(manifest):
    """(name, declared modules, source folder) of every target in the manifest."""
    pattern = re.compile(r'\.(target|executableTarget|testTarget)\(\s*name:\s*"([^"]+)",\s*dependencies:\s*\[(.*?)\]\s*,'
                         r'\s*(?:path:\s*"([^"]+)",)?', re.S)
    for match in pattern.finditer(manifest):
        kind, name, dependencies, path = match.groups()
        declared = set(re.findall(r'name:\s*"([A-Za-z0-9_]+)"', dependencies))
        declared |= set(re.findall(r'(?<!package: )"([A-Za-z0-9_]+)"', re.sub(r'\.product\([^)]*\)', '', dependencies)))
        yield name, declared, path or os.path.join("Tests" if kind == "testTarget" else "Sources", name)


def imports(folder):
    found = set()
    for path in glob.glob(os.path.join(ROOT, folder, "**", "*.swift"), recursive=True):
        with open(path, encoding="utf-8") as source:
            for line in source:
                match = re.match(r'\s*(?:@testable\s+|@_exported\s+|(?:public|internal|package)\s+)?import\s+'
                                 r'(?:struct\s+|enum\s+|class\s+|func\s+|protocol\s+)?([A-Za-z0-9_]+)', line)
                if match:
                    found.add(match.group(1))
    return found


def main():
    with open(os.path.join(ROOT, "Package.swift"), encoding="utf-8") as file:
        manifest = file.read()
    problems = []
    for name, declared, folder in targets(manifest):
        if not glob.glob(os.path.join(ROOT, folder, "**", "*.swift"), recursive=True):
            continue  # a C target: its dependencies are for linking, nothing to import
        used = imports(folder) - TOOLCHAIN - {name}
        for module in sorted(used - declared):
            problems.append(f"{name}: imports {module}, which Package.swift does not declare for it")
        for module in sorted(declared - used):
            problems.append(f"{name}: declares {module}, which none of its files imports")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
