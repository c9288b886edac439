#!/usr/bin/env python3
"""Checks a compose file beyond its schema:
- every service runs a pinned image: an `image:` with an explicit tag (or digest) that is not
  `latest`, so the stack starts the same way next year;
- every bind-mounted host path and every build context (with its Dockerfile) exists, relative
  to the compose file as docker compose resolves them.

Usage: check_compose.py COMPOSE_FILE
"""

import os
import re
import sys

import yaml

from verdict import verdict


def problems_of(compose):
    problems = []
    services = compose.get("services") or {}
    if not services:
        problems.append("no services")
    for name, service in services.items():
        image = (service or {}).get("image")
        if not image:
            problems.append(f"service {name}: no image (a build-only service has no pinned tag)")
            continue
        if "${" in image:
            problems.append(f"service {name}: image {image} depends on the environment")
            continue
        if "@sha256:" in image:
            continue
        # The tag follows the last colon after the last slash (a registry may carry a port).
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            problems.append(f"service {name}: image {image} has no tag")
            continue
        tag = last.rsplit(":", 1)[1]
        if tag == "latest" or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
            problems.append(f"service {name}: image {image} is not pinned to a version")
    return problems


def missing_paths(compose, base):
    problems = []
    for name, service in (compose.get("services") or {}).items():
        service = service or {}
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else (volume or {}).get("source", "")
            # Only relative or absolute paths are bind mounts; a bare word is a named volume.
            if source.startswith((".", "/")) and not os.path.exists(os.path.join(base, source)):
                problems.append(f"service {name}: mounted path {source} does not exist")
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if isinstance(build, dict):
            context = os.path.join(base, build.get("context", "."))
            dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
            if not os.path.isdir(context):
                problems.append(f"service {name}: build context {build.get('context')} does not exist")
            elif not os.path.isfile(dockerfile):
                problems.append(f"service {name}: {dockerfile} does not exist")
    return problems


def main(args):
    if len(args) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as handle:
        compose = yaml.safe_load(handle) or {}
    problems = problems_of(compose) + missing_paths(compose, os.path.dirname(os.path.abspath(args[0])))
    return verdict(args[0], problems, f"compose ok: {len(compose.get('services') or {})} services in {args[0]}, images pinned, paths exist")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
