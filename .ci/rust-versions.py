"""Fails when a package the workspace's crates depend on (normal and build
dependencies, every feature on) declares a rust-version above the crate's own:
the crate's rust-version would then be false for some feature set.

Reads `cargo metadata` of the manifest directory given (default: the current
one), so it checks the Cargo.lock found there. Declarations only: it compiles
nothing, so it needs no second toolchain.
"""

import json
import subprocess
import sys


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
            cwd=directory,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    failed = False
    for member in metadata["workspace_members"]:
        ours = packages[member].get("rust_version")
        name = packages[member]["name"]
        if not ours:
            print(f"{name} declares no rust-version")
            failed = True
            continue
        reached, stack = set(), [member]
        while stack:
            current = stack.pop()
            if current in reached:
                continue
            reached.add(current)
            for dep in nodes[current]["deps"]:
                if any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"]):
                    stack.append(dep["pkg"])
        above = sorted(
            f"{packages[id]['name']} {packages[id]['version']} needs rustc {packages[id]['rust_version']}"
            for id in reached
            if packages[id].get("rust_version") and version(packages[id]["rust_version"]) > version(ours)
        )
        if above:
            failed = True
            print(f"{name} declares rust-version {ours}, but with every feature on it builds:")
            for line in above:
                print(f"  {line}")
        else:
            print(f"{name}: {len(reached) - 1} packages resolved with every feature on, none above rust-version {ours}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
